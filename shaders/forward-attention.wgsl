// Causal grouped-query attention for rows t = 0..rows-1 at positions pos0 + t, one workgroup
// per (row, query head). K/V come from the cache ([position × kv_dim], RoPE already applied
// to K). Positions are processed in chunks of 128 with an online softmax (running max and
// sum, rescaled per chunk), so the context length is not bounded by workgroup memory.
// Needs head_dim ≤ 128.
struct Params {
  rows: u32,
  heads: u32,
  kv_heads: u32,
  head_dim: u32,
  pos0: u32,
  kv_dim: u32,
  scale: f32,
  _p0: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> kc: array<f32>;
@group(0) @binding(3) var<storage, read> vc: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> qs: array<f32, 128>;
var<workgroup> sc: array<f32, 128>;
var<workgroup> red: array<f32, 128>;

const NEG: f32 = -1.0e30;

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = wid.y * nwg.x + wid.x;
  if (idx >= p.rows * p.heads) { return; }
  let D = p.head_dim;
  let t = idx / p.heads;
  let h = idx % p.heads;
  let kvo = (h / (p.heads / p.kv_heads)) * D;
  let qo = idx * D;
  if (lid < D) { qs[lid] = q[qo + lid] * p.scale; }
  workgroupBarrier();
  let n = p.pos0 + t + 1u;
  var m = NEG;
  var l = 0.0;
  var acc = 0.0;
  for (var c0 = 0u; c0 < n; c0 += 128u) {
    let s = c0 + lid;
    var score = NEG;
    if (s < n) {
      let ko = s * p.kv_dim + kvo;
      var a = 0.0;
      for (var i = 0u; i < D; i++) { a += qs[i] * kc[ko + i]; }
      score = a;
    }
    red[lid] = score;
    for (var st = 64u; st > 0u; st = st >> 1u) {
      workgroupBarrier();
      if (lid < st) { red[lid] = max(red[lid], red[lid + st]); }
    }
    workgroupBarrier();
    let newm = max(m, red[0]);
    sc[lid] = exp(score - newm);
    workgroupBarrier();
    let corr = exp(m - newm);
    let cnt = min(128u, n - c0);
    var ls = 0.0;
    var av = 0.0;
    if (lid < D) {
      for (var j = 0u; j < cnt; j++) {
        let e = sc[j];
        ls += e;
        av += e * vc[(c0 + j) * p.kv_dim + kvo + lid];
      }
    }
    l = l * corr + ls;
    acc = acc * corr + av;
    m = newm;
    workgroupBarrier();
  }
  if (lid < D) { out[qo + lid] = acc / l; }
}
