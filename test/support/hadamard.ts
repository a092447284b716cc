/** Test helpers (not part of the API): exact integer check of H·Hᵀ = n·I. */
export function isHadamard(h: Int8Array, n: number): boolean {
  if (h.length !== n * n) return false;
  for (let i = 0; i < n * n; i++) if (h[i] !== 1 && h[i] !== -1) return false;
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let dot = 0;
      for (let c = 0; c < n; c++) dot += h[i * n + c] * h[j * n + c];
      if (dot !== (i === j ? n : 0)) return false;
    }
  }
  return true;
}
