// GPTQ inside one lazy block: columns i1 … i1 + nb − 1 of every row of a row tile of the
// permuted working matrix W ([rows × cols]), quantized one after the other, each column's error
// pushed onto the block's later columns through the block's rows of U (H⁻¹ = UᵀU):
//   q = clamp(round_half_even(fround(w) · inv[r]), qmin, qmax); v = step[r]·q (f16-rounded on request);
//   e = (w − v) / U[i][i]; w_j −= e·U[i][j] for the block's j > i.
// W, U and e are double-f32 (hi + lo, ~48-bit significands; helpers below): with plain f32 a
// few codes per tensor land on the other side of a rounding boundary than the CPU's f64, and
// sequential GPTQ carries every such flip into all later layers' inputs. The rounding itself is
// the f32 kernel's, on hi = fround(w), as the CPU does it.
// One invocation per row (rows are independent). W[r][i] becomes (v, 0) (the column is done),
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
  row0: u32,       // first row of this tile in the whole matrix (for step/inv)
  rows_total: u32,
  err_stride: u32, // B
  zero: u32,       // 0, for opq()
  _p1: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> w: array<vec2f>;
@group(0) @binding(2) var<storage, read> u: array<vec2f>;      // U[i1 + k][·], [nb × cols]
@group(0) @binding(3) var<storage, read> aux: array<f32>;      // [row_step (rows_total) | row_inv (rows_total)]
@group(0) @binding(4) var<storage, read_write> err: array<vec2f>;
@group(0) @binding(5) var<storage, read_write> codes: array<i32>;
@group(0) @binding(6) var<storage, read_write> status: array<atomic<u32>>;

const MAX_B: u32 = 128u;

// ---- double-f32 arithmetic (Knuth's TwoSum, Dekker's product on 12-bit halves cut from the
// bits). Every rounded intermediate whose error is taken goes through opq(): an XOR with a
// uniform 0, which no compiler can see through, so none can reassociate, contract or fold the
// error terms (Mesa's NIR / llvmpipe did, with plain expressions and with `* one` guards).
fn opq(x: f32) -> f32 { return bitcast<f32>(bitcast<u32>(x) ^ p.zero); }
fn two_sum(a: f32, b: f32) -> vec2f {
  let s = opq(a + b);
  let bv = opq(s - a);
  let av = opq(s - bv);
  return vec2f(s, opq(a - av) + opq(b - bv));
}
fn quick_two_sum(a: f32, b: f32) -> vec2f {
  let s = opq(a + b);
  return vec2f(s, b - opq(s - a));
}
fn split(a: f32) -> vec2f {
  let hi = bitcast<f32>(bitcast<u32>(a) & 0xfffff000u);
  return vec2f(hi, opq(a - hi));
}
fn two_prod(a: f32, b: f32) -> vec2f {
  let x = opq(a * b);
  let sa = split(a);
  let sb = split(b);
  let e = opq(opq(opq(opq(sa.x * sb.x) - x) + opq(sa.x * sb.y)) + opq(sa.y * sb.x)) + opq(sa.y * sb.y);
  return vec2f(x, e);
}
fn df_add(x: vec2f, y: vec2f) -> vec2f {
  let s = two_sum(x.x, y.x);
  let t = two_sum(x.y, y.y);
  let a = quick_two_sum(s.x, opq(s.y + t.x));
  return quick_two_sum(a.x, opq(a.y + t.y));
}
fn df_mul(x: vec2f, y: vec2f) -> vec2f {
  let pr = two_prod(x.x, y.x);
  return quick_two_sum(pr.x, opq(pr.y + opq(opq(x.x * y.y) + opq(x.y * y.x))));
}
fn df_div(x: vec2f, y: vec2f) -> vec2f {
  let q1 = x.x / y.x;
  let r = df_add(x, -df_mul(y, vec2f(q1, 0.0)));
  let q2 = r.x / y.x;
  let r2 = df_add(r, -df_mul(y, vec2f(q2, 0.0)));
  let q3 = r2.x / y.x;
  return df_add(quick_two_sum(q1, q2), vec2f(q3, 0.0));
}

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
  var seg: array<vec2f, MAX_B>;
  for (var k = 0u; k < p.nb; k++) { seg[k] = w[o + k]; }
  var bad = false;
  for (var k = 0u; k < p.nb; k++) {
    // Normalised (|lo| ≤ ½ ulp(hi)), hi is w rounded to f32: the CPU's fround(w).
    let wk = quick_two_sum(seg[k].x, seg[k].y);
    let x = wk.x * inv;
    if ((bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u) { bad = true; }
    let q = clamp(round(x), p.qmin, p.qmax);
    var v = step * q;
    if (p.f16 != 0u) { v = round_f16(v); }
    w[o + k] = vec2f(v, 0.0);
    codes[o + k] = i32(q);
    let uo = k * p.cols + p.i1;
    let e = df_div(df_add(wk, vec2f(-v, 0.0)), u[uo + k]);
    err[r * p.err_stride + k] = e;
    for (var j = k + 1u; j < p.nb; j++) {
      seg[j] = df_add(seg[j], -df_mul(e, u[uo + j]));
    }
  }
  if (bad) { atomicStore(&status[0], 1u); }
}
