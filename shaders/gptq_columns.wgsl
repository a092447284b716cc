// GPTQ inside one lazy block: columns i1 … i1 + nb − 1 of every row of a row tile of the
// permuted working matrix W ([rows × cols], f32), quantized one after the other, each column's
// error pushed onto the block's later columns through the block's rows of U (H⁻¹ = UᵀU):
//   q = clamp(round_half_even(w · inv[r]), qmin, qmax); v = step[r]·q (f16-rounded on request);
//   e = (w − v) / U[i][i]; w_j −= e·U[i][j] for the block's j > i.
// One invocation per row (rows are independent). W[r][i] is replaced by v (the column is done),
// the code goes to `codes`, e to `err` ([rows × B]) for the trailing update (gptq_update).
// A non-finite w·inv sets status[0] (the host reports which tensor).
struct Params {
  rows: u32,
  cols: u32,
  i1: u32,
  nb: u32,
  qmin: f32,
  qmax: f32,
  f16: u32,
  row0: u32,      // first row of this tile in the whole matrix (for step/inv)
  rows_total: u32,
  err_stride: u32, // B
  _p0: u32,
  _p1: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read> u: array<f32>;      // U[i1 + k][·], [nb × cols]
@group(0) @binding(3) var<storage, read> aux: array<f32>;    // [row_step (rows_total) | row_inv (rows_total)]
@group(0) @binding(4) var<storage, read_write> err: array<f32>;
@group(0) @binding(5) var<storage, read_write> codes: array<i32>;
@group(0) @binding(6) var<storage, read_write> status: array<atomic<u32>>;

const MAX_B: u32 = 128u;

// Same as roundF32ToF16Value in src/backends/cpu/kernels.ts (and quantize.wgsl).
fn round_f16(x: f32) -> f32 {
  let bits = bitcast<u32>(x);
  let sign = bits & 0x80000000u;
  let a = bits & 0x7fffffffu;
  if (a >= 0x7f800000u) { return x; }
  if (a >= 0x477ff000u) { return bitcast<f32>(sign | 0x7f800000u); }
  if (a < 0x38800000u) {
    let r = round(abs(x) * 16777216.0) * 5.9604644775390625e-8;
    return bitcast<f32>(sign | bitcast<u32>(r));
  }
  let lsb = (a >> 13u) & 1u;
  let rounded = (a + 0x0fffu + lsb) & 0xffffe000u;
  return bitcast<f32>(sign | rounded);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (r >= p.rows) { return; }
  let step = aux[p.row0 + r];
  let inv = aux[p.rows_total + p.row0 + r];
  let o = r * p.cols + p.i1;
  var seg: array<f32, MAX_B>;
  for (var k = 0u; k < p.nb; k++) { seg[k] = w[o + k]; }
  var bad = false;
  for (var k = 0u; k < p.nb; k++) {
    let wk = seg[k];
    let x = wk * inv;
    if ((bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u) { bad = true; }
    let q = clamp(round(x), p.qmin, p.qmax);
    var v = step * q;
    if (p.f16 != 0u) { v = round_f16(v); }
    w[o + k] = v;
    codes[o + k] = i32(q);
    let uo = k * p.cols + p.i1;
    let e = (wk - v) / u[uo + k];
    err[r * p.err_stride + k] = e;
    for (var j = k + 1u; j < p.nb; j++) {
      seg[j] = seg[j] - e * u[uo + j];
    }
  }
  if (bad) { atomicStore(&status[0], 1u); }
}
