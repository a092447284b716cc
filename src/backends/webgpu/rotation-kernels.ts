/**
 * The quantization backend's rotation stage: x·R for every `spec.length`-vector of a buffer
 * (random signs, the fused or global FWHT stages, the K-point stage; rotate_rows.wgsl,
 * fwht_global.wgsl, kstage_global.wgsl) and the tiled transpose that rotateColumns gathers and
 * scatters column blocks with (transpose.wgsl). Spec buffers (signs, H_K bits) are made once per
 * RotationSpec.
 */
import type { RotationSpec } from '../../core/ports';
import type { GpuRuntime, UniformField } from '../../gpu/runtime';
import type { ShaderName } from '../../gpu/shaders';

export const FUSED_SPAN = 4096; // f32 elements of workgroup memory in rotate_rows.wgsl

/** What the stage borrows from its backend: kernel dispatch (profiled), uniforms, pooled buffers. */
export interface KernelHost {
  kernel(encoder: GPUCommandEncoder, name: ShaderName, buffers: GPUBuffer[], workgroups: number): void;
  uniform(fields: UniformField[]): GPUBuffer;
  acquire(bytes: number): GPUBuffer;
  recycle(buffer: GPUBuffer): void;
}

interface SpecBuffers {
  signs: GPUBuffer;
  hk: GPUBuffer;
}

export class RotationKernels {
  private readonly specBuffers = new WeakMap<RotationSpec, SpecBuffers>();
  private readonly specBufferList: GPUBuffer[] = [];

  constructor(private readonly rt: GpuRuntime, private readonly host: KernelHost) {}

  private specBuffersFor(spec: RotationSpec): SpecBuffers {
    let sb = this.specBuffers.get(spec);
    if (!sb) {
      const mk = (label: string, data: ArrayBufferView): GPUBuffer => {
        const b = this.rt.createFilled(label, data);
        this.specBufferList.push(b);
        return b;
      };
      // H_K as sign bits per output a: bit a' of word a·4 + a'/32 is set when H_K[a'][a] > 0.
      const k = spec.k;
      if (k > 128) throw new Error(`webgpu: H_K with K = ${k} > 128 is not supported`);
      const bits = new Uint32Array(Math.max(4, 4 * k));
      for (let a = 0; a < k; a++) {
        for (let ap = 0; ap < k; ap++) if (spec.hK[ap * k + a] > 0) bits[a * 4 + (ap >> 5)] |= 1 << (ap & 31);
      }
      sb = { signs: mk('rotation signs', Float32Array.from(spec.signs)), hk: mk('rotation H_K bits', bits) };
      this.specBuffers.set(spec, sb);
    }
    return sb;
  }

  static checkSpec(spec: RotationSpec): number {
    const { length, segment, k, hK, signs } = spec;
    const p = segment / k;
    if (!Number.isInteger(p) || (p & (p - 1)) !== 0 || length % segment !== 0 || hK.length !== k * k || signs.length !== length || !(spec.scale > 0)) {
      throw new Error(`inconsistent RotationSpec (length ${length}, segment ${segment}, k ${k})`);
    }
    return p;
  }

  /**
   * Rotate every `spec.length`-vector of a contiguous buffer of n elements (n a multiple of the
   * length) in place; returns the buffer holding the result (a new one when the global K-stage
   * ran out of place — the old one is recycled).
   */
  rotate(encoder: GPUCommandEncoder, buffer: GPUBuffer, n: number, spec: RotationSpec): GPUBuffer {
    const pow2 = RotationKernels.checkSpec(spec);
    const { segment: seg, k } = spec;
    const sb = this.specBuffersFor(spec);
    const scale = { f32: spec.scale };
    if (seg <= FUSED_SPAN) {
      const span = Math.floor(FUSED_SPAN / seg) * seg;
      const spans = Math.ceil(n / span);
      const flags = 1 | (k > 1 ? 2 : 0) | 4;
      const u = this.host.uniform([n, spans, span, spec.length, seg, pow2, k, pow2, flags, scale]);
      this.host.kernel(encoder, 'rotate_rows', [u, buffer, sb.signs, sb.hk], spans);
      return buffer;
    }
    // Large segment: signs + the FWHT stages that fit in workgroup memory, then global stages,
    // then the K-stage out of place (or the scale folded into the last stage).
    const span = pow2 <= FUSED_SPAN ? Math.floor(FUSED_SPAN / pow2) * pow2 : FUSED_SPAN;
    const fwhtLen = Math.min(pow2, span);
    const spans = Math.ceil(n / span);
    const u = this.host.uniform([n, spans, span, spec.length, seg, pow2, k, fwhtLen, 1, scale]);
    this.host.kernel(encoder, 'rotate_rows', [u, buffer, sb.signs, sb.hk], spans);
    const pairs = n / 2;
    for (let h = fwhtLen; h < pow2; h *= 2) {
      const last = h * 2 >= pow2;
      const flags = last && k === 1 ? 4 : 0;
      const ug = this.host.uniform([pairs, h, flags, scale]);
      this.host.kernel(encoder, 'fwht_global', [ug, buffer], Math.ceil(pairs / 128));
    }
    if (k > 1) {
      const dst = this.host.acquire(n * 4);
      const uk = this.host.uniform([n, seg, pow2, k, scale]);
      this.host.kernel(encoder, 'kstage_global', [uk, buffer, dst, sb.hk], Math.ceil(n / 128));
      this.host.recycle(buffer); // safe: the pool hands it out only to later-encoded work
      return dst;
    }
    return buffer;
  }

  /** dst[outOff + j·outStride + i] = src[inOff + i·inStride + j] for i < nI, j < nJ. */
  transpose(
    encoder: GPUCommandEncoder, src: GPUBuffer, dst: GPUBuffer,
    nI: number, nJ: number, inOff: number, inStride: number, outOff: number, outStride: number,
  ): void {
    const tilesI = Math.ceil(nI / 16);
    const tilesJ = Math.ceil(nJ / 16);
    const u = this.host.uniform([nI, nJ, inOff, inStride, outOff, outStride, tilesJ, tilesI * tilesJ]);
    this.host.kernel(encoder, 'transpose', [u, src, dst], tilesI * tilesJ);
  }

  destroy(): void {
    for (const b of this.specBufferList) b.destroy();
    this.specBufferList.length = 0;
  }
}
