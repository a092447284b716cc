/**
 * The Qwen2 forward pass on WebGPU (SPEC §7), on the shared GPU runtime (src/gpu): the same math
 * as the CPU oracle (forward-cpu.ts) in f32 compute shaders — embedding gather, RMSNorm, matmul +
 * bias, rotate_half RoPE, causal GQA attention with a KV cache, SwiGLU, LM head and log-softmax —
 * behind the layer-by-layer interface of forward.ts. Activations stay on the device.
 *
 * Stages (src/eval/webgpu/): the weights (resident, or streamed layer by layer over the memory
 * budget), the kernels and command stream, and the KV cache / scratch / RoPE state. Long inputs
 * run in row chunks through the KV cache so that activations fit one binding.
 */
import type { Qwen2Dims } from '../core/qwen2/config';
import { layerPrefix, linearInputWidth, type LinearInput, type ProjName } from '../core/qwen2/tensors';
import { Transients, USAGE_READBACK, USAGE_STORAGE, type GpuRuntime } from '../gpu/runtime';
import type { Activation, AsyncWeightSource, HeadOptions, Qwen2Forward, RunLayerOptions } from './forward';
import { CommandStream, FORWARD_KERNELS, ForwardKernels } from './webgpu/kernels';
import { GpuKvCache, GpuRopeTable, GpuScratch, type ScratchBuffers } from './webgpu/state';
import { Qwen2GpuWeights, type GpuWeight, type LayerWeights } from './webgpu/weights';

export type { AsyncWeightSource } from './forward';
export type { GpuWeight } from './webgpu/weights';

/**
 * A device activation: `[rows × cols]` f32 at the start of `buffer` (which may be larger).
 * Those from embed/runLayer are owned by the caller (release them); a hook's is a view of the
 * pass's scratch buffer, valid until the hook returns.
 */
export class GpuActivation implements Activation {
  constructor(
    readonly runtime: GpuRuntime,
    readonly buffer: GPUBuffer,
    readonly rows: number,
    readonly cols: number,
    readonly owned: boolean,
  ) {}

  read(): Promise<Float32Array> {
    return this.runtime.readF32(this.buffer, this.rows * this.cols);
  }
}

export interface Qwen2WebGpu extends Qwen2Forward<GpuActivation, GpuWeight> {
  readonly kind: 'webgpu';
  readonly runtime: GpuRuntime;
  /** True when layers are uploaded per forward (over the memory budget). */
  readonly streaming: boolean;
  /** Bytes of weights kept on the GPU. */
  readonly residentBytes: number;
  logProbs(ids: number[]): Promise<Float32Array>;
}

export interface WebGpuForwardOptions {
  /** Weights beyond this many bytes are streamed layer by layer. Default 2 GiB. */
  memoryBudgetBytes?: number;
  /** Largest buffer bound to one shader binding (default: the device's limit); tests lower it to force tiling. */
  maxBindingBytes?: number;
  /**
   * Hold no decoder-layer weights: every runLayer brings all of a layer's projections, norms and
   * biases in its options (the calibration forward pass of GPTQ, whose weights change per pass);
   * the weight source then needs only the embedding, final norm and head. logits/prefill throw.
   */
  perCallLayers?: boolean;
}

/**
 * Upload `weights` to `runtime`'s device and return the pass. The runtime may be shared (with the
 * quantization backend, or a second model); dispose() frees this pass's buffers only.
 */
export async function createQwen2WebGpu(runtime: GpuRuntime, dims: Qwen2Dims, weights: AsyncWeightSource, opts: WebGpuForwardOptions = {}): Promise<Qwen2WebGpu> {
  const { heads: H, kvHeads: KV, headDim: D } = dims;
  if (H % KV !== 0) throw new Error(`heads ${H} not a multiple of kvHeads ${KV}`);
  if (D % 2 !== 0) throw new Error(`head dim ${D} must be even for RoPE`);
  if (D > 128) throw new Error(`head dim ${D}: the WebGPU attention kernel supports at most 128`);
  runtime.throwIfLost('loading the forward pass');
  await runtime.precompile(FORWARD_KERNELS);
  const maxBindingBytes = Math.floor(Math.min(opts.maxBindingBytes ?? Infinity, runtime.limits.maxBindingBytes) / 4) * 4;
  const w = await Qwen2GpuWeights.load(runtime, dims, weights, { budgetBytes: opts.memoryBudgetBytes ?? 2 * 1024 ** 3, maxBindingBytes, perCallLayers: opts.perCallLayers });
  return new Qwen2WebGpuPass(runtime, dims, w, maxBindingBytes);
}

class Qwen2WebGpuPass implements Qwen2WebGpu {
  readonly kind = 'webgpu' as const;
  readonly vocab: number;
  private readonly device: GPUDevice;
  private readonly temps: Transients;
  private readonly kernels: ForwardKernels;
  private readonly scratch: GpuScratch;
  private readonly rope: GpuRopeTable;
  /** For logits/logProbs/runLayer: positions from 0, independent of generation. */
  private readonly window: GpuKvCache;
  private readonly generation: GpuKvCache;
  /** Rows per chunk so that every activation ([rows × max(F, qDim, d)]) fits one binding. */
  private readonly chunkRows: number;
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;

  constructor(
    readonly runtime: GpuRuntime,
    readonly dims: Qwen2Dims,
    private readonly weights: Qwen2GpuWeights,
    private readonly maxBinding: number,
  ) {
    this.vocab = dims.vocab;
    this.device = runtime.device;
    this.temps = new Transients(runtime);
    this.kernels = new ForwardKernels(runtime, this.temps, dims);
    this.scratch = new GpuScratch(runtime, dims);
    this.rope = new GpuRopeTable(runtime, dims);
    this.window = new GpuKvCache(runtime, dims, maxBinding, 'window', 64);
    this.generation = new GpuKvCache(runtime, dims, maxBinding, 'generation', 64);
    this.chunkRows = Math.max(1, Math.floor(maxBinding / (4 * Math.max(dims.intermediate, dims.heads * dims.headDim, dims.hidden))));
  }

  get streaming(): boolean {
    return this.weights.streaming;
  }

  get residentBytes(): number {
    return this.weights.residentBytes;
  }

  get position(): number {
    return this.generation.length;
  }

  reset(): void {
    this.generation.length = 0;
  }

  // ---- the interface --------------------------------------------------------------------

  embed(ids: number[]): Promise<GpuActivation> {
    return this.serial('embed', () => {
      this.checkIds(ids);
      const T = ids.length;
      if (T > this.chunkRows) throw new Error(`embed: ${T} tokens exceed ${this.chunkRows}, the most whose activations fit one GPU binding`);
      return this.scoped('embed', () => {
        const s = this.scratch.ensure(T);
        this.device.queue.writeBuffer(s.ids, 0, Uint32Array.from(ids));
        const out = this.runtime.createBuffer('embedded', T * this.dims.hidden * 4, USAGE_STORAGE);
        const stream = new CommandStream(this.device, 'embed');
        this.kernels.embed(stream.pass, T, s.ids, this.weights.embedding, out);
        stream.submit();
        return new GpuActivation(this.runtime, out, T, this.dims.hidden, true);
      });
    });
  }

  runLayer(li: number, hidden: GpuActivation, opts?: RunLayerOptions<GpuActivation, GpuWeight>): Promise<GpuActivation> {
    return this.serial('runLayer', () => {
      if (!Number.isInteger(li) || li < 0 || li >= this.dims.layers) throw new Error(`runLayer: layer ${li} outside [0, ${this.dims.layers})`);
      const h = this.activation(hidden, 'runLayer');
      const T = h.rows;
      return this.scoped(`layer ${li}`, async () => {
        this.window.length = 0;
        this.window.reserve(T);
        this.rope.ensure(T);
        const s = this.scratch.ensure(T);
        const out = this.runtime.createBuffer(`${layerPrefix(li)} output`, T * this.dims.hidden * 4, USAGE_STORAGE);
        try {
          const stream = new CommandStream(this.device, `layer ${li}`);
          stream.copy(h.buffer, out, T * this.dims.hidden * 4);
          const own = this.weights.perCallLayers ? null : await this.weights.layer(li, stream);
          const ly = this.weights.withSubstitutes(li, own, opts, this.temps);
          await this.encodeLayer(stream, li, ly, out, s, T, this.window, opts);
          stream.submit();
        } catch (e) {
          out.destroy();
          throw e;
        }
        return new GpuActivation(this.runtime, out, T, this.dims.hidden, true);
      });
    });
  }

  head(hidden: GpuActivation, opts: HeadOptions = {}): Promise<Float32Array> {
    return this.serial('head', () => {
      const h = this.activation(hidden, 'head');
      return this.scoped('the LM head', () => {
        const s = this.scratch.ensure(h.rows);
        const stream = new CommandStream(this.device, 'head');
        return this.encodeHead(stream, h.buffer, s, opts.lastOnly ? h.rows - 1 : 0, opts.lastOnly ? 1 : h.rows, opts.logSoftmax ?? false);
      });
    });
  }

  release(a: GpuActivation): void {
    if (a instanceof GpuActivation && a.owned) a.buffer.destroy();
  }

  logits(ids: number[]): Promise<Float32Array> {
    return this.serial('logits', () => this.forward(ids, this.window, true, false, true));
  }

  logProbs(ids: number[]): Promise<Float32Array> {
    return this.serial('logProbs', () => this.forward(ids, this.window, true, true, true));
  }

  prefill(ids: number[]): Promise<Float32Array> {
    return this.serial('prefill', () => this.forward(ids, this.generation, false, false, true));
  }

  step(id: number): Promise<Float32Array> {
    return this.serial('step', () => this.forward([id], this.generation, false, false, false));
  }

  dispose(): void {
    this.disposed = true;
    this.weights.dispose();
    this.kernels.destroy();
    this.scratch.destroy();
    this.rope.destroy();
    this.window.destroy();
    this.generation.destroy();
  }

  // ---- encoding ---------------------------------------------------------------------------

  /**
   * Decoder layer li on rows `x` ([T × d], updated in place: the residual stream) at positions
   * cache.length…+T−1, writing K/V into the cache. A hook flushes the stream and is awaited.
   */
  private async encodeLayer(
    stream: CommandStream, li: number, ly: LayerWeights, x: GPUBuffer, s: ScratchBuffers, T: number, cache: GpuKvCache,
    opts?: RunLayerOptions<GpuActivation, GpuWeight>,
  ): Promise<void> {
    const { kernels: k, dims } = this;
    const kvDim = dims.kvHeads * dims.headDim;
    const pos0 = cache.length;
    const { cos, sin } = this.rope.ensure(pos0 + T);
    const hook = async (input: LinearInput, buf: GPUBuffer) => {
      const f = opts?.hooks?.[input];
      if (!f) return;
      stream.flush();
      await f(new GpuActivation(this.runtime, buf, T, linearInputWidth(dims, input), false), { layer: li, input });
    };
    const mm = (p: ProjName, xIn: GPUBuffer, y: GPUBuffer, o?: { yBase?: number; accumulate?: boolean }) => k.matmul(stream.pass, ly.mats[p], ly.bias[p], xIn, T, y, o);
    k.rmsNorm(stream.pass, T, x, ly.inNorm, s.xn);
    await hook('attn_in', s.xn);
    mm('q_proj', s.xn, s.q);
    mm('k_proj', s.xn, cache.k[li], { yBase: pos0 * kvDim });
    mm('v_proj', s.xn, cache.v[li], { yBase: pos0 * kvDim });
    k.rope(stream.pass, s.q, T, dims.heads, pos0, 0, cos, sin);
    k.rope(stream.pass, cache.k[li], T, dims.kvHeads, pos0, pos0 * kvDim, cos, sin);
    k.attention(stream.pass, T, pos0, s.q, cache.k[li], cache.v[li], s.att);
    await hook('attn_out', s.att);
    mm('o_proj', s.att, x, { accumulate: true });
    k.rmsNorm(stream.pass, T, x, ly.postNorm, s.xn);
    await hook('mlp_in', s.xn);
    mm('gate_proj', s.xn, s.g);
    mm('up_proj', s.xn, s.u);
    k.swiglu(stream.pass, T * dims.intermediate, s.g, s.u);
    await hook('mlp_mid', s.g);
    mm('down_proj', s.g, x, { accumulate: true });
  }

  /**
   * Final norm and LM head of rows [first, first + rows) of x, read back. Logits are computed in
   * groups of rows that fit one binding, each group [rows × V].
   */
  private async encodeHead(stream: CommandStream, x: GPUBuffer, s: ScratchBuffers, first: number, rows: number, logSoftmax: boolean): Promise<Float32Array> {
    const { hidden: d, vocab: V } = this.dims;
    this.kernels.rmsNorm(stream.pass, rows, x, this.weights.finalNorm, s.xn, first * d);
    const groupRows = Math.max(1, Math.floor(this.maxBinding / (V * 4)));
    const groups: { buf: GPUBuffer; r0: number; rows: number }[] = [];
    for (let r0 = 0; r0 < rows; r0 += groupRows) {
      const n = Math.min(groupRows, rows - r0);
      const buf = this.temps.zeroed('logits', n * V * 4);
      groups.push({ buf, r0, rows: n });
      this.kernels.matmul(stream.pass, this.weights.head, undefined, s.xn, n, buf, { xBase: r0 * d, ldy: V });
      if (logSoftmax) this.kernels.logSoftmax(stream.pass, buf, n, V);
    }
    const enc = stream.end();
    const staging = this.temps.add(this.runtime.createBuffer('logits readback', rows * V * 4, USAGE_READBACK));
    for (const g of groups) enc.copyBufferToBuffer(g.buf, 0, staging, g.r0 * V * 4, g.rows * V * 4);
    this.device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    return new Float32Array(staging.getMappedRange().slice(0, rows * V * 4));
  }

  /** One chunk of ≤ chunkRows tokens at the cache's end: logits (or log-probs) of all rows or the last. */
  private runChunk(ids: number[], cache: GpuKvCache, all: boolean, logSoftmax: boolean): Promise<Float32Array> {
    return this.scoped('the forward pass', async () => {
      const T = ids.length;
      cache.reserve(cache.length + T);
      const s = this.scratch.ensure(T);
      this.device.queue.writeBuffer(s.ids, 0, Uint32Array.from(ids));
      const stream = new CommandStream(this.device, 'forward');
      this.kernels.embed(stream.pass, T, s.ids, this.weights.embedding, s.x);
      for (let li = 0; li < this.dims.layers; li++) await this.encodeLayer(stream, li, await this.weights.layer(li, stream), s.x, s, T, cache);
      cache.length += T;
      return this.encodeHead(stream, s.x, s, all ? 0 : T - 1, all ? T : 1, logSoftmax);
    });
  }

  /** `ids` through the whole model at the end of `cache` (emptied first with `fresh`). */
  private async forward(ids: number[], cache: GpuKvCache, all: boolean, logSoftmax: boolean, fresh: boolean): Promise<Float32Array> {
    this.checkIds(ids);
    if (fresh) cache.length = 0;
    const parts: Float32Array[] = [];
    for (let s = 0; s < ids.length; s += this.chunkRows) {
      const chunk = ids.slice(s, s + this.chunkRows);
      const last = s + this.chunkRows >= ids.length;
      if (all || last) parts.push(await this.runChunk(chunk, cache, all, logSoftmax));
      else await this.runChunk(chunk, cache, false, false);
    }
    if (parts.length === 1) return parts[0];
    const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  // ---- plumbing ---------------------------------------------------------------------------

  /** Calls run one at a time: scratch and caches are shared between them. */
  private serial<R>(what: string, fn: () => Promise<R>): Promise<R> {
    const run = () => {
      if (this.disposed) throw new Error(`WebGPU forward: ${what} after dispose()`);
      return fn();
    };
    const r = this.queue.then(run, run);
    this.queue = r.catch(() => undefined);
    return r;
  }

  private scoped<R>(what: string, fn: () => Promise<R> | R): Promise<R> {
    return this.runtime.scoped(what, fn, () => this.temps.destroyAll());
  }

  private checkIds(ids: number[]): void {
    if (ids.length === 0) throw new Error('forward: empty input');
    const V = this.dims.vocab;
    for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`token id ${id} out of range [0, ${V})`);
  }

  private activation(h: GpuActivation, what: string): GpuActivation {
    if (!(h instanceof GpuActivation) || h.runtime !== this.runtime) throw new Error(`${what}: expected an activation of this model's GPU runtime`);
    const d = this.dims.hidden;
    if (h.cols !== d || h.rows < 1) throw new Error(`${what}: activation is ${h.rows}×${h.cols}, expected [T × ${d}]`);
    if (h.rows > this.chunkRows) throw new Error(`${what}: ${h.rows} rows exceed ${this.chunkRows}, the most whose activations fit one GPU binding; run shorter sequences`);
    return h;
  }
}
