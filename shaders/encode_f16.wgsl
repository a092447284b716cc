// f32 → IEEE binary16 bits, round to nearest even, two halves per u32 word (little-endian
// element order), integer ops only — same as encodeF16 in src/core/safetensors/dtype.ts.
struct Params {
  n: u32,       // f32 elements
  words: u32,   // ceil(n / 2)
  _p0: u32,
  _p1: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

fn to_f16(f: u32) -> u32 {
  let sign = (f >> 16u) & 0x8000u;
  let a = f & 0x7fffffffu;
  var h: u32;
  if (a >= 0x477ff000u) {
    h = select(0x7c00u, 0x7e00u, a > 0x7f800000u);
  } else if (a >= 0x38800000u) {
    h = (a + 0xfffu + ((a >> 13u) & 1u) - 0x38000000u) >> 13u;
  } else if (a > 0x33000000u) {
    let s = 126u - (a >> 23u);
    let m = (a & 0x7fffffu) | 0x800000u;
    let half = 1u << (s - 1u);
    let rem = m & ((1u << s) - 1u);
    h = m >> s;
    if (rem > half || (rem == half && (h & 1u) == 1u)) { h = h + 1u; }
  } else {
    h = 0u;
  }
  return sign | h;
}

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let w = (wid.y * nwg.x + wid.x) * 128u + lid;
  if (w >= p.words) { return; }
  let i = 2u * w;
  let lo = to_f16(src[i]);
  var hi = 0u;
  if (i + 1u < p.n) { hi = to_f16(src[i + 1u]); }
  dst[w] = lo | (hi << 16u);
}
