// Histogram over [−range, range]: i = floor((x + range)·inv) clamped to [0, bins − 1]
// (NaN → 0), inv = fround(bins / (2·range)) computed on the host. Workgroup bins (atomics),
// then added to the global bins.
struct Params {
  n: u32,
  bins: u32,     // ≤ 1024
  range: f32,
  inv: f32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> data: array<f32>;
@group(0) @binding(2) var<storage, read_write> counts: array<atomic<u32>>;

const PER_WG: u32 = 2048u;
var<workgroup> local_counts: array<atomic<u32>, 1024>;

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = wid.y * nwg.x + wid.x;
  let total = (p.n + PER_WG - 1u) / PER_WG;
  if (g >= total) { return; }
  for (var b = lid; b < p.bins; b += 128u) { atomicStore(&local_counts[b], 0u); }
  workgroupBarrier();
  let last = f32(p.bins - 1u);
  let base = g * PER_WG;
  let end = min(base + PER_WG, p.n);
  for (var i = base + lid; i < end; i += 128u) {
    let f = floor((data[i] + p.range) * p.inv);
    var b = 0u;
    if (f >= 0.0) {
      if (f > last) { b = p.bins - 1u; } else { b = u32(f); }
    }
    atomicAdd(&local_counts[b], 1u);
  }
  workgroupBarrier();
  for (var b = lid; b < p.bins; b += 128u) {
    let c = atomicLoad(&local_counts[b]);
    if (c != 0u) { atomicAdd(&counts[b], c); }
  }
}
