// GPTQ's lazy trailing update after a block: W[r][j] −= Σ_k err[r][k]·U[k][j] for j ≥ j0 of a
// row tile of the permuted working matrix ([rows × cols]), k over the block's nb columns (err is
// [rows × B], U the block's rows [nb × cols]); all double-f32 (see gptq_columns.wgsl for why).
// A rows × (cols − j0) × nb matmul: each workgroup makes a 16 × 16 output block, one output per
// invocation, from 16-wide k slices in workgroup memory; each output's sum runs in k order, then
// is subtracted once.
struct Params {
  rows: u32,
  cols: u32,
  nb: u32,
  j0: u32,
  err_stride: u32,
  zero: u32, // 0, for opq()
  _p1: u32,
  _p2: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> w: array<vec2f>;
@group(0) @binding(2) var<storage, read> u: array<vec2f>;
@group(0) @binding(3) var<storage, read> err: array<vec2f>;

const TB: u32 = 16u;
const TK: u32 = 16u;
var<workgroup> es: array<vec2f, 256>; // [TB rows][TK]
var<workgroup> us: array<vec2f, 256>; // [TK][TB cols]

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

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let c = p.j0 + wg.x * TB + lid.x;
  let r = wg.y * TB + lid.y;
  var acc = vec2f(0.0);
  for (var k0 = 0u; k0 < p.nb; k0 += TK) {
    let kk = k0 + lid.x;
    var ve = vec2f(0.0);
    if (r < p.rows && kk < p.nb) { ve = err[r * p.err_stride + kk]; }
    es[lid.y * TK + lid.x] = ve;
    let ku = k0 + lid.y;
    var vu = vec2f(0.0);
    if (ku < p.nb && c < p.cols) { vu = u[ku * p.cols + c]; }
    us[lid.y * TB + lid.x] = vu;
    workgroupBarrier();
    let kn = min(TK, p.nb - k0);
    for (var k = 0u; k < kn; k++) {
      acc = df_add(acc, df_mul(es[lid.y * TK + k], us[k * TB + lid.x]));
    }
    workgroupBarrier();
  }
  if (r < p.rows && c < p.cols) {
    let idx = r * p.cols + c;
    w[idx] = df_add(w[idx], -acc);
  }
}
