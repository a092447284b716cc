// Fused rotation of contiguous segments in workgroup memory: v ↦ Ĥᵀ·(s ⊙ v), canonical order of
// src/backends/types.ts (RotationSpec). Each workgroup owns `span` contiguous elements of the
// row-major buffer (a whole number of FWHT blocks, and of segments when the K-stage is fused):
//   1. load, v *= signs[idx % cols]                         (flag 1)
//   2. FWHT stages h = 1, 2, 4, … < fwht_len, ascending    (each output one f32 add)
//   3. K-stage out[a·P+b] = Σ_{a'} ±v[a'·P+b], sequential from a' = 0   (flag 2)
//   4. v *= scale                                           (flag 4)
struct Params {
  n: u32,          // elements in the buffer
  spans: u32,      // workgroups needed (ceil(n / span))
  span: u32,       // elements per workgroup, ≤ 4096
  cols: u32,       // vector length (signs length)
  seg: u32,        // segment length K·P (K-stage only)
  pow2: u32,       // P
  k: u32,
  fwht_len: u32,   // stages h < fwht_len (a power of two ≤ min(P, span)); 1 = none
  flags: u32,
  scale: f32,
  _p0: u32,
  _p1: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> data: array<f32>;
@group(0) @binding(2) var<storage, read> signs: array<f32>;
@group(0) @binding(3) var<storage, read> hk: array<u32>; // bit a' of word a·4 + a'/32: H_K[a'][a] > 0 (K ≤ 128)

const WG: u32 = 128u;
var<workgroup> sh: array<f32, 4096>;

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = wid.y * nwg.x + wid.x;
  if (g >= p.spans) { return; }
  let base = g * p.span;
  let span = p.span;
  let n = p.n;
  let use_signs = (p.flags & 1u) != 0u;
  for (var i = lid; i < span; i += WG) {
    let idx = base + i;
    var v = 0.0;
    if (idx < n) {
      v = data[idx];
      if (use_signs) { v = v * signs[idx % p.cols]; }
    }
    sh[i] = v;
  }
  let half = span >> 1u;
  for (var h = 1u; h < p.fwht_len; h = h << 1u) {
    workgroupBarrier();
    for (var t = lid; t < half; t += WG) {
      let i0 = ((t & ~(h - 1u)) << 1u) | (t & (h - 1u));
      let x = sh[i0];
      let y = sh[i0 + h];
      sh[i0] = x + y;
      sh[i0 + h] = x - y;
    }
  }
  workgroupBarrier();
  let do_k = (p.flags & 2u) != 0u;
  let do_scale = (p.flags & 4u) != 0u;
  for (var i = lid; i < span; i += WG) {
    let idx = base + i;
    if (idx >= n) { continue; }
    var v: f32;
    if (do_k) {
      let so = (i / p.seg) * p.seg;
      let w = i - so;
      let a = w / p.pow2;
      let b = w - a * p.pow2;
      let src0 = so + b;
      // a + (−x) is exactly a − x in IEEE arithmetic, so a select replaces the branch
      var bits = hk[a * 4u];
      let x0 = sh[src0];
      var acc = select(-x0, x0, (bits & 1u) != 0u);
      for (var ap = 1u; ap < p.k; ap++) {
        if ((ap & 31u) == 0u) { bits = hk[a * 4u + (ap >> 5u)]; }
        let x = sh[src0 + ap * p.pow2];
        acc = acc + select(-x, x, ((bits >> (ap & 31u)) & 1u) != 0u);
      }
      v = acc;
    } else {
      v = sh[i];
    }
    if (do_scale) { v = v * p.scale; }
    data[idx] = v;
  }
}
