// Bit-exact transposing copy (u32 moves, no float ops) through a 16×16 workgroup tile:
// out[out_off + j·out_stride + i] = in[in_off + i·in_stride + j], i < n_i, j < n_j.
struct Params {
  n_i: u32,
  n_j: u32,
  in_off: u32,
  in_stride: u32,
  out_off: u32,
  out_stride: u32,
  tiles_j: u32,
  tiles: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

var<workgroup> tile: array<u32, 272>; // 16 × 17

@compute @workgroup_size(16, 8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) l: vec3u) {
  let g = wid.y * nwg.x + wid.x;
  if (g >= p.tiles) { return; }
  let ti = g / p.tiles_j;
  let tj = g - ti * p.tiles_j;
  for (var r = l.y; r < 16u; r += 8u) {
    let i = ti * 16u + r;
    let j = tj * 16u + l.x;
    if (i < p.n_i && j < p.n_j) {
      tile[r * 17u + l.x] = src[p.in_off + i * p.in_stride + j];
    }
  }
  workgroupBarrier();
  for (var r = l.y; r < 16u; r += 8u) {
    let j = tj * 16u + r;
    let i = ti * 16u + l.x;
    if (i < p.n_i && j < p.n_j) {
      dst[p.out_off + j * p.out_stride + i] = tile[l.x * 17u + r];
    }
  }
}
