// x[t] = E[ids[t]] for the ids inside this row tile [v0, v0 + vcount) of the embedding; the
// embedding may be split into several tiles (one dispatch each) when it exceeds a binding.
struct Params {
  rows: u32,
  dim: u32,
  v0: u32,
  vcount: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.y * nwg.x * 64u + gid.x;
  if (i >= p.rows * p.dim) { return; }
  let t = i / p.dim;
  let j = i % p.dim;
  let id = ids[t];
  if (id < p.v0 || id >= p.v0 + p.vcount) { return; }
  x[i] = table[(id - p.v0) * p.dim + j];
}
