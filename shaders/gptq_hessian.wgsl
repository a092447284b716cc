// GPTQ Hessian accumulation: H[i][j] += Σ_t x[t][i]·x[t][j] over the T rows of one calibration
// sample (x is [T × d], row-major, at the start of its buffer), for the rows [i0, i0 + h_rows)
// of H that this H tile holds. Each workgroup makes a 64 × 64 block of H (16 × 16 invocations,
// 4 × 4 entries each) from 16-token slices of x staged in workgroup memory; blocks entirely
// below the diagonal are skipped (H is symmetric; the host reads the upper triangle).
//
// Accumulation: plain f32 over 16 tokens at a time (fixed token order), each such partial added
// to a per-invocation unevaluated sum hi + lo of two f32 (Knuth's TwoSum), and that added to H,
// itself kept as hi + lo the same way: the error then barely grows with the number of tokens or
// samples (f32 alone loses ~√n·2⁻²⁴ relative, enough to flip GPTQ codes at 0.1 %). `one` (1.0
// from the uniforms) stops compilers that treat f32 as reals — Mesa's NIR does — from folding
// TwoSum's error term to 0. Everything runs in a fixed order: same inputs, same bits.
struct Params {
  t_rows: u32,
  d: u32,
  i0: u32,
  h_rows: u32,
  one: f32, // 1.0, unknown to the compiler: keeps it from simplifying TwoSum's error term to 0
  _p0: u32,
  _p1: u32,
  _p2: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> hi: array<f32>;
@group(0) @binding(3) var<storage, read_write> lo: array<f32>;

const TB: u32 = 64u;
const TK: u32 = 16u;
var<workgroup> xa: array<f32, 1024>; // [TK][TB]: x[t][i-block]
var<workgroup> xb: array<f32, 1024>; // [TK][TB]: x[t][j-block]
const FOLD: u32 = 16u; // tokens per plain f32 partial

// (hi, lo) += v, TwoSum on hi.
fn two_sum(hi: f32, v: f32) -> vec2f {
  let s = (hi + v) * p.one;
  let bv = (s - hi) * p.one;
  return vec2f(s, (hi - (s - bv)) + (v - bv));
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let j0 = wg.x * TB;
  let ib = p.i0 + wg.y * TB; // first H row of this block (global)
  if (j0 + TB <= ib) { return; } // strictly below the diagonal: uniform across the workgroup
  var acc: array<f32, 16>;
  var shi: array<f32, 16>;
  var slo: array<f32, 16>;
  for (var t0 = 0u; t0 < p.t_rows; t0 += TK) {
    for (var e = li; e < TK * TB; e += 256u) {
      let t = t0 + e / TB;
      let c = e % TB;
      var va = 0.0;
      var vb = 0.0;
      if (t < p.t_rows) {
        if (ib + c < p.i0 + p.h_rows) { va = x[t * p.d + ib + c]; }
        if (j0 + c < p.d) { vb = x[t * p.d + j0 + c]; }
      }
      xa[e] = va;
      xb[e] = vb;
    }
    workgroupBarrier();
    for (var k = 0u; k < TK; k++) {
      let ao = k * TB + lid.y * 4u;
      let bo = k * TB + lid.x * 4u;
      for (var a = 0u; a < 4u; a++) {
        let va = xa[ao + a];
        for (var b = 0u; b < 4u; b++) {
          acc[a * 4u + b] += va * xb[bo + b];
        }
      }
    }
    workgroupBarrier();
    if ((t0 + TK) % FOLD == 0u || t0 + TK >= p.t_rows) {
      for (var e = 0u; e < 16u; e++) {
        let r = two_sum(shi[e], acc[e]);
        shi[e] = r.x;
        slo[e] += r.y;
        acc[e] = 0.0;
      }
    }
  }
  for (var a = 0u; a < 4u; a++) {
    let i = ib + lid.y * 4u + a;
    if (i >= p.i0 + p.h_rows) { continue; }
    for (var b = 0u; b < 4u; b++) {
      let j = j0 + lid.x * 4u + b;
      if (j >= p.d) { continue; }
      let idx = (i - p.i0) * p.d + j;
      let r = two_sum(hi[idx], shi[a * 4u + b]);
      hi[idx] = r.x;
      lo[idx] = lo[idx] + (r.y + slo[a * 4u + b]);
    }
  }
}
