// Dense K-stage out of place (segments too large for workgroup memory), then ×scale:
// dst[a·P + b] = (Σ_{a' = 0..K−1} ±src[a'·P + b], sequential from a' = 0) · scale.
struct Params {
  n: u32,
  seg: u32,
  pow2: u32,
  k: u32,
  scale: f32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> hk: array<u32>; // bit a' of word a·4 + a'/32: H_K[a'][a] > 0 (K ≤ 128)

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.y * nwg.x + wid.x) * 128u + lid;
  if (idx >= p.n) { return; }
  let so = (idx / p.seg) * p.seg;
  let w = idx - so;
  let a = w / p.pow2;
  let b = w - a * p.pow2;
  let src0 = so + b;
  var bits = hk[a * 4u];
  let x0 = src[src0];
  var acc = select(-x0, x0, (bits & 1u) != 0u);
  for (var ap = 1u; ap < p.k; ap++) {
    if ((ap & 31u) == 0u) { bits = hk[a * 4u + (ap >> 5u)]; }
    let x = src[src0 + ap * p.pow2];
    acc = acc + select(-x, x, ((bits >> (ap & 31u)) & 1u) != 0u);
  }
  dst[idx] = acc * p.scale;
}
