// y[t][o] = Σ_i x[t][i]·W[o][i] (+ b[o]) for a row tile of W ([outs × inner], row-major), f32.
// Tiles of 64 outputs × 16 rows share W/x loads through workgroup memory; each of the 128
// invocations accumulates 4 outputs × 2 rows. flags: 1 = add bias, 2 = accumulate into y
// (the residual add of o_proj/down_proj, done as y + (x·Wᵀ + b) like the CPU oracle).
// y_col is the tile's first row in the whole matrix: the output column and the bias offset.
struct Params {
  rows: u32,
  outs: u32,
  inner: u32,
  flags: u32,
  x_base: u32,
  y_base: u32,
  ldy: u32,
  y_col: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const TO: u32 = 64u;
const TT: u32 = 16u;
const TK: u32 = 16u;
var<workgroup> ws: array<f32, 1024>; // [TO][TK]
var<workgroup> xs: array<f32, 256>;  // [TT][TK]

@compute @workgroup_size(16, 8)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let o0 = wg.x * TO;
  let t0 = wg.y * TT;
  var acc: array<f32, 8>;
  for (var k0 = 0u; k0 < p.inner; k0 += TK) {
    for (var e = li; e < TO * TK; e += 128u) {
      let go = o0 + e / TK;
      let gk = k0 + e % TK;
      var v = 0.0;
      if (go < p.outs && gk < p.inner) { v = w[go * p.inner + gk]; }
      ws[e] = v;
    }
    for (var e = li; e < TT * TK; e += 128u) {
      let gt = t0 + e / TK;
      let gk = k0 + e % TK;
      var v = 0.0;
      if (gt < p.rows && gk < p.inner) { v = x[p.x_base + gt * p.inner + gk]; }
      xs[e] = v;
    }
    workgroupBarrier();
    for (var k = 0u; k < TK; k++) {
      let x0 = xs[lid.y * TK + k];
      let x1 = xs[(lid.y + 8u) * TK + k];
      for (var j = 0u; j < 4u; j++) {
        let wv = ws[(lid.x + 16u * j) * TK + k];
        acc[j] += x0 * wv;
        acc[4u + j] += x1 * wv;
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 2u; i++) {
    let t = t0 + lid.y + 8u * i;
    if (t >= p.rows) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let o = o0 + lid.x + 16u * j;
      if (o >= p.outs) { continue; }
      var v = acc[i * 4u + j];
      if ((p.flags & 1u) != 0u) { v += b[p.y_col + o]; }
      let idx = p.y_base + t * p.ldy + p.y_col + o;
      if ((p.flags & 2u) != 0u) { y[idx] = y[idx] + v; } else { y[idx] = v; }
    }
  }
}
