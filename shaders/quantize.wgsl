// Fake-quant: q = clamp(round_half_even(w·inv[r]), qmin, qmax); v = step[r]·q; optionally v
// rounded to the nearest f16 (ties to even) with integer ops on its bits (never
// pack2x16float, whose rounding WGSL leaves to the implementation). Codes are counted in a
// workgroup histogram (atomics) and added to the global one.
struct Params {
  n: u32,
  cols: u32,
  row_off: u32,
  f16: u32,
  qmin: f32,
  qmax: f32,
  bins: u32,      // qmax − qmin + 1 ≤ 256
  rows_total: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> data: array<f32>;
@group(0) @binding(2) var<storage, read> aux: array<f32>; // [row_step (rows_total) | row_inv (rows_total)]
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> counts: array<atomic<u32>>;

const PER_WG: u32 = 1024u;
var<workgroup> local_counts: array<atomic<u32>, 256>;

// Same as roundF32ToF16Value in src/backends/cpu/kernels.ts.
fn round_f16(x: f32) -> f32 {
  let bits = bitcast<u32>(x);
  let sign = bits & 0x80000000u;
  let a = bits & 0x7fffffffu;
  if (a >= 0x7f800000u) { return x; }
  if (a >= 0x477ff000u) { return bitcast<f32>(sign | 0x7f800000u); }
  if (a < 0x38800000u) {
    // quantum 2^-24: |x|·2^24 < 1024 is exact, round half even, scale back exactly
    let r = round(abs(x) * 16777216.0) * 5.9604644775390625e-8;
    return bitcast<f32>(sign | bitcast<u32>(r));
  }
  let lsb = (a >> 13u) & 1u;
  let rounded = (a + 0x0fffu + lsb) & 0xffffe000u;
  return bitcast<f32>(sign | rounded);
}

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = wid.y * nwg.x + wid.x;
  let total = (p.n + PER_WG - 1u) / PER_WG;
  if (g >= total) { return; }
  for (var b = lid; b < p.bins; b += 128u) { atomicStore(&local_counts[b], 0u); }
  workgroupBarrier();
  let base = g * PER_WG;
  let end = min(base + PER_WG, p.n);
  for (var i = base + lid; i < end; i += 128u) {
    let r = p.row_off + i / p.cols;
    let q = clamp(round(data[i] * aux[p.rows_total + r]), p.qmin, p.qmax);
    var v = aux[r] * q;
    if (p.f16 != 0u) { v = round_f16(v); }
    out[i] = v;
    atomicAdd(&local_counts[u32(q - p.qmin)], 1u);
  }
  workgroupBarrier();
  for (var b = lid; b < p.bins; b += 128u) {
    let c = atomicLoad(&local_counts[b]);
    if (c != 0u) { atomicAdd(&counts[b], c); }
  }
}
