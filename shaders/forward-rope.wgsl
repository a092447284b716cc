// rotate_half RoPE in place: pairs (x[i], x[i + D/2]) of every head of `rows` rows, row t at
// absolute position pos0 + t. cos/sin come from a table built on the CPU in f32 exactly like
// the oracle (GPU sin/cos are imprecise for large angles).
struct Params {
  rows: u32,
  heads: u32,
  head_dim: u32,
  pos0: u32,
  base: u32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> data: array<f32>;
@group(0) @binding(2) var<storage, read> cs: array<f32>;
@group(0) @binding(3) var<storage, read> sn: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let half = p.head_dim / 2u;
  let idx = gid.y * nwg.x * 64u + gid.x;
  if (idx >= p.rows * p.heads * half) { return; }
  let i = idx % half;
  let th = idx / half; // t * heads + h
  let t = th / p.heads;
  let o = p.base + th * p.head_dim;
  let c = (p.pos0 + t) * half + i;
  let x1 = data[o + i];
  let x2 = data[o + i + half];
  data[o + i] = x1 * cs[c] - x2 * sn[c];
  data[o + i + half] = x2 * cs[c] + x1 * sn[c];
}
