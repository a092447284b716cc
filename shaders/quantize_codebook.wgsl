// Fake-quant onto a sorted codebook C (K ≤ 256 entries): x = w·inv[r]; k = the number of
// thresholds t_i = fround((C_i + C_{i+1}) / 2) below x (binary search; a value on a threshold
// goes to the lower entry); v = step[r]·C_k, optionally rounded to the nearest f16 (ties to even)
// with integer ops on its bits. Entry indices are counted in a workgroup histogram (atomics)
// and added to the global one. Same order as quantizeToCodebookF32 (src/backends/cpu/kernels.ts).
struct Params {
  n: u32,
  cols: u32,
  row_off: u32,
  f16: u32,
  k: u32,          // entries, 2…256
  rows_total: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> data: array<f32>;
// [row_step (rows_total) | row_inv (rows_total) | entries (k) | thresholds (k − 1)]
@group(0) @binding(2) var<storage, read> aux: array<f32>;
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
  for (var b = lid; b < p.k; b += 128u) { atomicStore(&local_counts[b], 0u); }
  workgroupBarrier();
  let entries = 2u * p.rows_total;
  let thresholds = entries + p.k;
  let base = g * PER_WG;
  let end = min(base + PER_WG, p.n);
  for (var i = base + lid; i < end; i += 128u) {
    let r = p.row_off + i / p.cols;
    let x = data[i] * aux[p.rows_total + r];
    var lo = 0u;
    var hi = p.k - 1u;
    loop {
      if (lo >= hi) { break; }
      let mid = (lo + hi) >> 1u;
      if (x > aux[thresholds + mid]) { lo = mid + 1u; } else { hi = mid; }
    }
    var v = aux[r] * aux[entries + lo];
    if (p.f16 != 0u) { v = round_f16(v); }
    out[i] = v;
    atomicAdd(&local_counts[lo], 1u);
  }
  workgroupBarrier();
  for (var b = lid; b < p.k; b += 128u) {
    let c = atomicLoad(&local_counts[b]);
    if (c != 0u) { atomicAdd(&counts[b], c); }
  }
}
