// One radix-2 FWHT stage of stride h (for blocks larger than a workgroup's memory), in place
// in global memory: (x, y) → (x + y, x − y); optionally the final ×scale on both outputs.
struct Params {
  pairs: u32,   // n / 2
  h: u32,       // power of two
  flags: u32,   // 4 = apply scale
  scale: f32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> data: array<f32>;

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = (wid.y * nwg.x + wid.x) * 128u + lid;
  if (t >= p.pairs) { return; }
  let h = p.h;
  let i0 = ((t & ~(h - 1u)) << 1u) | (t & (h - 1u));
  let x = data[i0];
  let y = data[i0 + h];
  var s = x + y;
  var d = x - y;
  if ((p.flags & 4u) != 0u) {
    s = s * p.scale;
    d = d * p.scale;
  }
  data[i0] = s;
  data[i0 + h] = d;
}
