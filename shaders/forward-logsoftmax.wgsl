// In place: z[r] ← z[r] − logsumexp(z[r]), one workgroup per row (max-shifted for range).
struct Params {
  rows: u32,
  cols: u32,
  _p0: u32,
  _p1: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> z: array<f32>;

var<workgroup> red: array<f32, 128>;

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = wid.y * nwg.x + wid.x;
  if (r >= p.rows) { return; }
  let o = r * p.cols;
  var m = -3.0e38;
  for (var i = lid; i < p.cols; i += 128u) { m = max(m, z[o + i]); }
  red[lid] = m;
  for (var s = 64u; s > 0u; s = s >> 1u) {
    workgroupBarrier();
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
  }
  workgroupBarrier();
  let mx = red[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var i = lid; i < p.cols; i += 128u) { sum += exp(z[o + i] - mx); }
  red[lid] = sum;
  for (var s = 64u; s > 0u; s = s >> 1u) {
    workgroupBarrier();
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
  }
  workgroupBarrier();
  let lse = mx + log(red[0]);
  for (var i = lid; i < p.cols; i += 128u) { z[o + i] = z[o + i] - lse; }
}
