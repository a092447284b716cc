// MSE clip search: for row r and candidate k (one invocation per candidate, the row streamed
// through workgroup memory in chunks), in exactly the CPU's f32 order:
//   step = row_base[r]·alpha[k]; inv = row_inv_base[r]·inv_alpha[k]  (one rounded multiply each)
//   q = clamp(round_half_even(w·inv), qmin, qmax); e = w − step·q; sum = sum + e·e (sequential).
// aux = [row_base (rows_total) | row_inv_base (rows_total) | alphas (n) | inv_alphas (n)].
// Products are passed through opaque() (xor with a runtime zero) so no compiler can contract
// them into a fused multiply-add.
struct Params {
  rows: u32,
  cols: u32,
  n_cand: u32,    // ≤ 256
  row_off: u32,   // global index of this tile's first row
  qmin: f32,
  qmax: f32,
  zero: u32,      // always 0
  rows_total: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> data: array<f32>;
@group(0) @binding(2) var<storage, read> aux: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const CH: u32 = 2048u;
var<workgroup> sh: array<f32, 2048>;

fn opaque(x: f32) -> f32 {
  return bitcast<f32>(bitcast<u32>(x) ^ p.zero);
}

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let r = wid.y * nwg.x + wid.x;
  if (r >= p.rows) { return; }
  let gr = p.row_off + r;
  let base = aux[gr];
  let inv_base = aux[p.rows_total + gr];
  let ao = 2u * p.rows_total;
  let k0 = lid;
  let k1 = lid + 128u;
  let has0 = k0 < p.n_cand;
  let has1 = k1 < p.n_cand;
  var step0 = 0.0; var inv0 = 0.0; var step1 = 0.0; var inv1 = 0.0;
  if (has0) { step0 = base * aux[ao + k0]; inv0 = inv_base * aux[ao + p.n_cand + k0]; }
  if (has1) { step1 = base * aux[ao + k1]; inv1 = inv_base * aux[ao + p.n_cand + k1]; }
  var sum0 = 0.0;
  var sum1 = 0.0;
  let o = r * p.cols;
  for (var c0 = 0u; c0 < p.cols; c0 += CH) {
    let len = min(CH, p.cols - c0);
    workgroupBarrier();
    for (var i = lid; i < len; i += 128u) { sh[i] = data[o + c0 + i]; }
    workgroupBarrier();
    if (has0) {
      for (var i = 0u; i < len; i++) {
        let w = sh[i];
        let q = clamp(round(w * inv0), p.qmin, p.qmax);
        let e = w - opaque(step0 * q);
        sum0 = sum0 + opaque(e * e);
      }
    }
    if (has1) {
      for (var i = 0u; i < len; i++) {
        let w = sh[i];
        let q = clamp(round(w * inv1), p.qmin, p.qmax);
        let e = w - opaque(step1 * q);
        sum1 = sum1 + opaque(e * e);
      }
    }
  }
  if (has0) { out[gr * p.n_cand + k0] = sum0; }
  if (has1) { out[gr * p.n_cand + k1] = sum1; }
}
