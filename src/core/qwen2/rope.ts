/**
 * Qwen2's rotary position embedding tables, as transformers computes them in f32:
 * inv_freq[i] = 1 / θ^(2i/D), angle = fround(pos · inv_freq[i]); rotate_half pairs element i with
 * i + D/2. One table for every forward pass (CPU and WebGPU upload the same numbers).
 */
export function ropeInvFreq(headDim: number, theta: number): Float32Array {
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(theta, (2 * i) / headDim);
  return inv;
}

/** cos/sin of positions [0, positions), `[positions × D/2]` row-major. */
export function ropeTables(headDim: number, theta: number, positions: number): { cos: Float32Array; sin: Float32Array } {
  const inv = ropeInvFreq(headDim, theta);
  const half = inv.length;
  const cos = new Float32Array(positions * half);
  const sin = new Float32Array(positions * half);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const a = Math.fround(p * inv[i]);
      cos[p * half + i] = Math.cos(a);
      sin[p * half + i] = Math.sin(a);
    }
  }
  return { cos, sin };
}
