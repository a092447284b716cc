// out[r] = x[r] / sqrt(mean(x[r]²) + eps) · γ, one workgroup per row (no mean-centring: Qwen2).
struct Params {
  rows: u32,
  dim: u32,
  eps: f32,
  x_base: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

var<workgroup> red: array<f32, 128>;

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = wid.y * nwg.x + wid.x;
  if (r >= p.rows) { return; }
  let xo = p.x_base + r * p.dim;
  var ss = 0.0;
  for (var i = lid; i < p.dim; i += 128u) {
    let v = x[xo + i];
    ss += v * v;
  }
  red[lid] = ss;
  for (var s = 64u; s > 0u; s = s >> 1u) {
    workgroupBarrier();
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
  }
  workgroupBarrier();
  // 1/sqrt rather than inverseSqrt: the latter may be a low-precision approximation.
  let inv = 1.0 / sqrt(red[0] / f32(p.dim) + p.eps);
  let oo = r * p.dim;
  for (var i = lid; i < p.dim; i += 128u) {
    out[oo + i] = (x[xo + i] * inv) * gamma[i];
  }
}
