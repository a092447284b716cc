// Decode little-endian 16-bit elements (F16 or BF16), packed two per u32 word, into f32 bits.
// Pure integer work: the output is written as u32 so no float canonicalisation can happen.
// Matches src/core/safetensors/dtype.ts decodeToF32 (F16 NaN -> 0x7fc00000, as a JS NaN stored
// into a Float32Array).
struct Params {
  n: u32,        // elements to decode
  mode: u32,     // 1 = F16, 2 = BF16
  _p0: u32,
  _p1: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

fn f16_to_f32_bits(h: u32) -> u32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0u) {
    if (m == 0u) { return sign; }
    // subnormal m·2^-24: normalise with the leading bit position pb (0..9)
    let pb = firstLeadingBit(m);
    return sign | ((pb + 103u) << 23u) | ((m << (23u - pb)) & 0x7fffffu);
  }
  if (e == 31u) {
    if (m == 0u) { return sign | 0x7f800000u; }
    return 0x7fc00000u;
  }
  return sign | ((e + 112u) << 23u) | (m << 13u);
}

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 128u + lid;
  if (i >= p.n) { return; }
  let word = src[i >> 1u];
  let h = (word >> ((i & 1u) * 16u)) & 0xffffu;
  if (p.mode == 2u) {
    dst[i] = h << 16u;
  } else {
    dst[i] = f16_to_f32_bits(h);
  }
}
