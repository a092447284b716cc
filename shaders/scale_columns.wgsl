// m[r][c] = m[r][c] · gamma[c] (one f32 multiply, correctly rounded).
struct Params {
  n: u32,
  cols: u32,
  _p0: u32,
  _p1: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> data: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 128u + lid;
  if (i >= p.n) { return; }
  data[i] = data[i] * gamma[i % p.cols];
}
