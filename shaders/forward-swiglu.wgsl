// g ← silu(g) · u, elementwise (the Qwen2 MLP's gate).
struct Params {
  count: u32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> g: array<f32>;
@group(0) @binding(2) var<storage, read> u: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.y * nwg.x * 64u + gid.x;
  if (i >= p.count) { return; }
  let a = g[i];
  g[i] = (a / (1.0 + exp(-a))) * u[i];
}
