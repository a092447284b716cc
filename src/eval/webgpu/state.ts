/**
 * The forward pass's device state besides the weights: the KV cache, scratch activations and the
 * RoPE table (core/qwen2/rope.ts, the same numbers as the CPU pass). Each owns its buffers and
 * grows by doubling.
 */
import type { Qwen2Dims } from '../../core/qwen2/config';
import { ropeTables } from '../../core/qwen2/rope';
import { USAGE_STORAGE, type GpuRuntime } from '../../gpu/runtime';

/** Per-layer K (after RoPE) and V of every cached position, `[position × kvDim]` each. */
export class GpuKvCache {
  k: GPUBuffer[] = [];
  v: GPUBuffer[] = [];
  length = 0;
  capacity = 0;

  constructor(
    private readonly rt: GpuRuntime,
    private readonly dims: Qwen2Dims,
    private readonly maxBinding: number,
    private readonly label: string,
    capacity: number,
  ) {
    this.allocate(capacity);
  }

  private get kvDim(): number {
    return this.dims.kvHeads * this.dims.headDim;
  }

  private allocate(capacity: number): void {
    const bytes = capacity * this.kvDim * 4;
    this.k = Array.from({ length: this.dims.layers }, (_, i) => this.rt.createBuffer(`${this.label} k${i}`, bytes, USAGE_STORAGE));
    this.v = Array.from({ length: this.dims.layers }, (_, i) => this.rt.createBuffer(`${this.label} v${i}`, bytes, USAGE_STORAGE));
    this.capacity = capacity;
  }

  /** Room for `total` positions, keeping the cached ones. */
  reserve(total: number): void {
    if (total <= this.capacity) return;
    const cap = Math.max(total, this.capacity * 2);
    if (cap * this.kvDim * 4 > this.maxBinding) throw new Error(`context of ${total} tokens exceeds the GPU binding limit for the KV cache`);
    const [oldK, oldV] = [this.k, this.v];
    this.allocate(cap);
    if (this.length > 0) {
      const enc = this.rt.device.createCommandEncoder({ label: `grow ${this.label} cache` });
      for (let i = 0; i < this.dims.layers; i++) {
        enc.copyBufferToBuffer(oldK[i], 0, this.k[i], 0, this.length * this.kvDim * 4);
        enc.copyBufferToBuffer(oldV[i], 0, this.v[i], 0, this.length * this.kvDim * 4);
      }
      this.rt.device.queue.submit([enc.finish()]);
    }
    for (const b of [...oldK, ...oldV]) b.destroy();
  }

  destroy(): void {
    for (const b of [...this.k, ...this.v]) b.destroy();
    this.k = [];
    this.v = [];
    this.length = 0;
    this.capacity = 0;
  }
}

export interface ScratchBuffers {
  ids: GPUBuffer;
  x: GPUBuffer;
  xn: GPUBuffer;
  q: GPUBuffer;
  att: GPUBuffer;
  g: GPUBuffer;
  u: GPUBuffer;
}

/** Activations of up to `rows` rows, reused between calls. */
export class GpuScratch {
  private rows = 0;
  private bufs: ScratchBuffers | undefined;

  constructor(private readonly rt: GpuRuntime, private readonly dims: Qwen2Dims) {}

  ensure(rows: number): ScratchBuffers {
    if (this.bufs && rows <= this.rows) return this.bufs;
    this.destroy();
    const n = (this.rows = Math.max(rows, 16));
    const { hidden: d, intermediate: F } = this.dims;
    const qDim = this.dims.heads * this.dims.headDim;
    const mk = (label: string, bytes: number) => this.rt.createBuffer(label, bytes, USAGE_STORAGE);
    this.bufs = {
      ids: mk('ids', n * 4),
      x: mk('hidden', n * d * 4),
      xn: mk('normed', n * d * 4),
      q: mk('q', n * qDim * 4),
      att: mk('attention out', n * qDim * 4),
      g: mk('gate', n * F * 4),
      u: mk('up', n * F * 4),
    };
    return this.bufs;
  }

  destroy(): void {
    if (this.bufs) for (const b of Object.values(this.bufs)) b.destroy();
    this.bufs = undefined;
    this.rows = 0;
  }
}

/** cos/sin of positions [0, length), `[length × D/2]` each. */
export class GpuRopeTable {
  private length = 0;
  cos: GPUBuffer | undefined;
  sin: GPUBuffer | undefined;

  constructor(private readonly rt: GpuRuntime, private readonly dims: Qwen2Dims) {}

  ensure(positions: number): { cos: GPUBuffer; sin: GPUBuffer } {
    if (positions > this.length) {
      const n = Math.max(positions, this.length * 2, 256);
      const { cos, sin } = ropeTables(this.dims.headDim, this.dims.ropeTheta, n);
      this.destroy();
      this.cos = this.rt.createFilled('rope cos', cos, USAGE_STORAGE);
      this.sin = this.rt.createFilled('rope sin', sin, USAGE_STORAGE);
      this.length = n;
    }
    return { cos: this.cos!, sin: this.sin! };
  }

  destroy(): void {
    this.cos?.destroy();
    this.sin?.destroy();
    this.cos = this.sin = undefined;
    this.length = 0;
  }
}
