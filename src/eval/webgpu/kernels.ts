/**
 * The forward pass's GPU stages: a command stream (compute passes on one encoder, flushed where a
 * hook or a streamed-layer upload must see the work so far) and the forward kernels
 * (shaders/forward-*.wgsl), one method each, their uniforms made in a Transients list.
 */
import type { Qwen2Dims } from '../../core/qwen2/config';
import type { GpuRuntime, Transients, UniformField } from '../../gpu/runtime';
import type { ShaderName } from '../../gpu/shaders';
import type { TiledMatrix } from '../../gpu/tiled';

export const FORWARD_KERNELS: ShaderName[] = [
  'forward-matmul', 'forward-rmsnorm', 'forward-rope', 'forward-attention', 'forward-swiglu', 'forward-embed', 'forward-logsoftmax',
];

export class CommandStream {
  encoder!: GPUCommandEncoder;
  pass!: GPUComputePassEncoder;

  constructor(private readonly device: GPUDevice, private readonly label: string) {
    this.begin();
  }

  private begin(): void {
    this.encoder = this.device.createCommandEncoder({ label: this.label });
    this.pass = this.encoder.beginComputePass({ label: this.label });
  }

  /** An encoder-level copy (ends and reopens the compute pass). */
  copy(src: GPUBuffer, dst: GPUBuffer, bytes: number): void {
    this.pass.end();
    this.encoder.copyBufferToBuffer(src, 0, dst, 0, bytes);
    this.pass = this.encoder.beginComputePass({ label: this.label });
  }

  /** Submit everything encoded so far and start afresh. */
  flush(): void {
    this.pass.end();
    this.device.queue.submit([this.encoder.finish()]);
    this.begin();
  }

  /** End the pass; the encoder stays open (for readback copies) until submitted. */
  end(): GPUCommandEncoder {
    this.pass.end();
    return this.encoder;
  }

  submit(): void {
    this.device.queue.submit([this.end().finish()]);
  }
}

export interface MatmulOptions {
  /** f32 offset of row 0 in x. */
  xBase?: number;
  /** f32 offset of row 0 in y. */
  yBase?: number;
  /** y's row stride (default: the matrix's rows). */
  ldy?: number;
  /** y += x·Wᵀ + b (the residual add) instead of y = …. */
  accumulate?: boolean;
}

export class ForwardKernels {
  private readonly noBias: GPUBuffer;

  constructor(private readonly rt: GpuRuntime, private readonly temps: Transients, private readonly dims: Qwen2Dims) {
    this.noBias = rt.createBuffer('no bias', 4);
  }

  private params(name: string, fields: UniformField[]): GPUBuffer {
    return this.temps.uniform(`${name} params`, fields);
  }

  /** x[t] = E[ids[t]], one dispatch per row tile of the table. */
  embed(pass: GPUComputePassEncoder, rows: number, ids: GPUBuffer, table: TiledMatrix, x: GPUBuffer): void {
    for (const t of table.tiles) {
      this.rt.dispatch(pass, 'forward-embed', [this.params('embed', [rows, table.cols, t.row0, t.rows]), ids, t.buffer, x], Math.ceil((rows * table.cols) / 64));
    }
  }

  rmsNorm(pass: GPUComputePassEncoder, rows: number, x: GPUBuffer, gamma: GPUBuffer, out: GPUBuffer, xBase = 0): void {
    this.rt.dispatch(pass, 'forward-rmsnorm', [this.params('rmsnorm', [rows, this.dims.hidden, { f32: this.dims.rmsNormEps }, xBase]), x, gamma, out], rows);
  }

  /** y = x·Wᵀ (+ b), tile by tile of W. */
  matmul(pass: GPUComputePassEncoder, m: TiledMatrix, bias: GPUBuffer | undefined, x: GPUBuffer, rows: number, y: GPUBuffer, o: MatmulOptions = {}): void {
    for (const t of m.tiles) {
      // y_col = the tile's first row: its outputs' column in y and its bias offset.
      const pb = this.params('matmul', [rows, t.rows, m.cols, (bias ? 1 : 0) | (o.accumulate ? 2 : 0), o.xBase ?? 0, o.yBase ?? 0, o.ldy ?? m.rows, t.row0]);
      this.rt.dispatch(pass, 'forward-matmul', [pb, x, t.buffer, bias ?? this.noBias, y], [Math.ceil(t.rows / 64), Math.ceil(rows / 16)]);
    }
  }

  /** rotate_half RoPE in place on `heads` heads of `rows` rows at positions pos0…, from f32 offset `base`. */
  rope(pass: GPUComputePassEncoder, data: GPUBuffer, rows: number, heads: number, pos0: number, base: number, cos: GPUBuffer, sin: GPUBuffer): void {
    const D = this.dims.headDim;
    this.rt.dispatch(pass, 'forward-rope', [this.params('rope', [rows, heads, D, pos0, base, 0, 0, 0]), data, cos, sin], Math.ceil((rows * heads * (D / 2)) / 64));
  }

  /** Causal GQA attention of rows at positions pos0… over the cache's K/V. */
  attention(pass: GPUComputePassEncoder, rows: number, pos0: number, q: GPUBuffer, k: GPUBuffer, v: GPUBuffer, out: GPUBuffer): void {
    const { heads: H, kvHeads: KV, headDim: D } = this.dims;
    this.rt.dispatch(pass, 'forward-attention', [this.params('attention', [rows, H, KV, D, pos0, KV * D, { f32: 1 / Math.sqrt(D) }, 0]), q, k, v, out], rows * H);
  }

  /** g ← silu(g)·u. */
  swiglu(pass: GPUComputePassEncoder, count: number, g: GPUBuffer, u: GPUBuffer): void {
    this.rt.dispatch(pass, 'forward-swiglu', [this.params('swiglu', [count, 0, 0, 0]), g, u], Math.ceil(count / 64));
  }

  logSoftmax(pass: GPUComputePassEncoder, z: GPUBuffer, rows: number, cols: number): void {
    this.rt.dispatch(pass, 'forward-logsoftmax', [this.params('logsoftmax', [rows, cols, 0, 0]), z], rows);
  }

  destroy(): void {
    this.noBias.destroy();
  }
}
