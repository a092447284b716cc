// GPTQ's lazy trailing update after a block: W[r][j] −= Σ_k err[r][k]·U[k][j] for j ≥ j0 of a
// row tile of the permuted working matrix ([rows × cols] f32), k over the block's nb columns
// (err is [rows × B], U the block's rows [nb × cols]). A rows × (cols − j0) × nb matmul: each
// workgroup makes a 64 × 64 output block (16 × 16 invocations, 4 × 4 each) from 16-wide k slices
// in workgroup memory; each output's sum runs in k order, then is subtracted once.
struct Params {
  rows: u32,
  cols: u32,
  nb: u32,
  j0: u32,
  err_stride: u32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read> err: array<f32>;

const TB: u32 = 64u;
const TK: u32 = 16u;
var<workgroup> es: array<f32, 1024>; // [TB rows][TK]
var<workgroup> us: array<f32, 1024>; // [TK][TB cols]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let c0 = p.j0 + wg.x * TB;
  let r0 = wg.y * TB;
  var acc: array<f32, 16>;
  for (var k0 = 0u; k0 < p.nb; k0 += TK) {
    for (var e = li; e < TB * TK; e += 256u) {
      let rr = r0 + e / TK;
      let kk = k0 + e % TK;
      var ve = 0.0;
      if (rr < p.rows && kk < p.nb) { ve = err[rr * p.err_stride + kk]; }
      es[e] = ve;
      let ku = k0 + e / TB;
      let cu = c0 + e % TB;
      var vu = 0.0;
      if (ku < p.nb && cu < p.cols) { vu = u[ku * p.cols + cu]; }
      us[e] = vu;
    }
    workgroupBarrier();
    for (var k = 0u; k < TK; k++) {
      for (var a = 0u; a < 4u; a++) {
        let ev = es[(lid.y * 4u + a) * TK + k];
        for (var b = 0u; b < 4u; b++) {
          acc[a * 4u + b] += ev * us[k * TB + lid.x * 4u + b];
        }
      }
    }
    workgroupBarrier();
  }
  for (var a = 0u; a < 4u; a++) {
    let r = r0 + lid.y * 4u + a;
    if (r >= p.rows) { continue; }
    for (var b = 0u; b < 4u; b++) {
      let c = c0 + lid.x * 4u + b;
      if (c >= p.cols) { continue; }
      let idx = r * p.cols + c;
      w[idx] = w[idx] - acc[a * 4u + b];
    }
  }
}
