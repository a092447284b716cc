// max_c |m[r][c]| per row (one workgroup per row; max is exact in any order). NaN is skipped
// like the CPU's `if (a > m) m = a`.
struct Params {
  rows: u32,
  cols: u32,
  out_off: u32,
  _p0: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> data: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> red: array<f32, 128>;

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = wid.y * nwg.x + wid.x;
  if (r >= p.rows) { return; }
  let o = r * p.cols;
  var m = 0.0;
  for (var c = lid; c < p.cols; c += 128u) {
    let a = abs(data[o + c]);
    m = select(m, a, a > m);
  }
  red[lid] = m;
  for (var s = 64u; s > 0u; s = s >> 1u) {
    workgroupBarrier();
    if (lid < s) {
      let x = red[lid];
      let y = red[lid + s];
      red[lid] = select(x, y, y > x);
    }
  }
  if (lid == 0u) { out[p.out_off + r] = red[0]; }
}
