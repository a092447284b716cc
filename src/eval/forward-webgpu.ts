/**
 * The Qwen2 forward pass on WebGPU (SPEC §7), on the shared GPU runtime (src/gpu): the same math
 * as the CPU oracle (forward-cpu.ts) in f32 compute shaders — embedding gather, RMSNorm, matmul +
 * bias, rotate_half RoPE, causal GQA attention with a KV cache, SwiGLU, LM head and log-softmax —
 * behind the layer-by-layer interface of forward.ts. Activations stay on the device.
 *
 * Memory: matrices are TiledMatrix (row tiles that fit one storage binding), so a 151936-row
 * embedding works under a 128 MiB binding limit. When all weights exceed `memoryBudgetBytes`,
 * only the embedding/LM head stay resident and each layer's weights are uploaded into one
 * reusable set of buffers just before that layer runs (slow, but bounded). Long inputs run in
 * row chunks through the KV cache so that activations also fit one binding.
 */
import type { Qwen2Dims } from '../core/qwen2/config';
import { ropeTables } from '../core/qwen2/rope';
import {
  EMBEDDING, FINAL_NORM, LM_HEAD, PROJECTIONS, layerNormName, layerPrefix, linearInputWidth, projectionName, projectionShape,
  type LinearInput, type ProjName,
} from '../core/qwen2/tensors';
import { Transients, USAGE_STORAGE, type GpuRuntime, type UniformField } from '../gpu/runtime';
import type { ShaderName } from '../gpu/shaders';
import { TiledMatrix } from '../gpu/tiled';
import type { Activation, AsyncWeightSource, HeadOptions, Qwen2Forward, RunLayerOptions } from './forward';

export type { AsyncWeightSource } from './forward';

/** Weights a layer may run with instead of its own: host values, or a device matrix (e.g. a quantization backend's Mat, WebGpuBackend.tiledMatrixOf). */
export type GpuWeight = Float32Array | TiledMatrix;

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
}

const KERNELS: ShaderName[] = ['forward-matmul', 'forward-rmsnorm', 'forward-rope', 'forward-attention', 'forward-swiglu', 'forward-embed', 'forward-logsoftmax'];

/** One layer's weights on the device. */
interface LayerWeights {
  inNorm: GPUBuffer;
  postNorm: GPUBuffer;
  mats: Record<ProjName, TiledMatrix>;
  bias: Record<ProjName, GPUBuffer>;
}

/** Per-layer K (after RoPE) and V, `[position × kvDim]` each. */
interface KvCache {
  k: GPUBuffer[];
  v: GPUBuffer[];
  length: number;
  capacity: number;
}

/** Scratch activations of up to `rows` rows. */
interface Scratch {
  ids: GPUBuffer;
  x: GPUBuffer;
  xn: GPUBuffer;
  q: GPUBuffer;
  att: GPUBuffer;
  g: GPUBuffer;
  u: GPUBuffer;
}

/**
 * Commands of one forward: compute passes on one encoder; flush() submits what is encoded (a
 * hook or a layer upload must see it done in queue order) and starts afresh.
 */
class CommandStream {
  encoder!: GPUCommandEncoder;
  pass!: GPUComputePassEncoder;
  constructor(private readonly device: GPUDevice, private readonly label: string) {
    this.begin();
  }

  private begin(): void {
    this.encoder = this.device.createCommandEncoder({ label: this.label });
    this.pass = this.encoder.beginComputePass({ label: this.label });
  }

  /** Encoder-level copy (ends and reopens the compute pass). */
  copy(src: GPUBuffer, dst: GPUBuffer, bytes: number): void {
    this.pass.end();
    this.encoder.copyBufferToBuffer(src, 0, dst, 0, bytes);
    this.pass = this.encoder.beginComputePass({ label: this.label });
  }

  flush(): void {
    this.pass.end();
    this.device.queue.submit([this.encoder.finish()]);
    this.begin();
  }

  /** End the pass; the encoder stays open for copies, then submit(). */
  end(): GPUCommandEncoder {
    this.pass.end();
    return this.encoder;
  }
}

/** The forward kernels (shaders/forward-*.wgsl), one method each, their uniforms in `temps`. */
class ForwardKernels {
  private readonly noBias: GPUBuffer;
  constructor(private readonly rt: GpuRuntime, private readonly temps: Transients, private readonly dims: Qwen2Dims) {
    this.noBias = rt.createBuffer('no-bias', 4);
  }

  private params(name: string, fields: UniformField[]): GPUBuffer {
    return this.temps.uniform(`${name} params`, fields);
  }

  private perElement(n: number): number {
    return Math.ceil(n / 64);
  }

  embed(pass: GPUComputePassEncoder, rows: number, ids: GPUBuffer, table: TiledMatrix, x: GPUBuffer): void {
    for (const t of table.tiles) {
      this.rt.dispatch(pass, 'forward-embed', [this.params('embed', [rows, table.cols, t.row0, t.rows]), ids, t.buffer, x], this.perElement(rows * table.cols));
    }
  }

  rmsNorm(pass: GPUComputePassEncoder, rows: number, x: GPUBuffer, gamma: GPUBuffer, out: GPUBuffer, xBase = 0): void {
    const d = this.dims.hidden;
    this.rt.dispatch(pass, 'forward-rmsnorm', [this.params('rmsnorm', [rows, d, { f32: this.dims.rmsNormEps }, xBase]), x, gamma, out], rows);
  }

  /** y = x·Wᵀ (+ b), or y += that with `accumulate` (the residual add), tile by tile of W. */
  matmul(
    pass: GPUComputePassEncoder, m: TiledMatrix, bias: GPUBuffer | undefined, x: GPUBuffer, rows: number, y: GPUBuffer,
    o: { xBase?: number; yBase?: number; ldy?: number; accumulate?: boolean } = {},
  ): void {
    for (const t of m.tiles) {
      // y_col = the tile's first row: its outputs' column in y and its bias offset.
      const pb = this.params('matmul', [rows, t.rows, m.cols, (bias ? 1 : 0) | (o.accumulate ? 2 : 0), o.xBase ?? 0, o.yBase ?? 0, o.ldy ?? m.rows, t.row0]);
      this.rt.dispatch(pass, 'forward-matmul', [pb, x, t.buffer, bias ?? this.noBias, y], [Math.ceil(t.rows / 64), Math.ceil(rows / 16)]);
    }
  }

  rope(pass: GPUComputePassEncoder, data: GPUBuffer, rows: number, heads: number, pos0: number, base: number, cos: GPUBuffer, sin: GPUBuffer): void {
    const D = this.dims.headDim;
    this.rt.dispatch(pass, 'forward-rope', [this.params('rope', [rows, heads, D, pos0, base, 0, 0, 0]), data, cos, sin], this.perElement(rows * heads * (D / 2)));
  }

  attention(pass: GPUComputePassEncoder, rows: number, pos0: number, q: GPUBuffer, k: GPUBuffer, v: GPUBuffer, out: GPUBuffer): void {
    const { heads: H, kvHeads: KV, headDim: D } = this.dims;
    this.rt.dispatch(pass, 'forward-attention', [this.params('attention', [rows, H, KV, D, pos0, KV * D, { f32: 1 / Math.sqrt(D) }, 0]), q, k, v, out], rows * H);
  }

  swiglu(pass: GPUComputePassEncoder, count: number, g: GPUBuffer, u: GPUBuffer): void {
    this.rt.dispatch(pass, 'forward-swiglu', [this.params('swiglu', [count, 0, 0, 0]), g, u], this.perElement(count));
  }

  logSoftmax(pass: GPUComputePassEncoder, z: GPUBuffer, rows: number, cols: number): void {
    this.rt.dispatch(pass, 'forward-logsoftmax', [this.params('logsoftmax', [rows, cols, 0, 0]), z], rows);
  }

  destroy(): void {
    this.noBias.destroy();
  }
}

export async function createQwen2WebGpu(
  runtime: GpuRuntime,
  dims: Qwen2Dims,
  weights: AsyncWeightSource,
  opts: WebGpuForwardOptions = {},
): Promise<Qwen2WebGpu> {
  const rt = runtime;
  const device = rt.device;
  const { hidden: d, intermediate: F, layers: L, heads: H, kvHeads: KV, headDim: D, vocab: V } = dims;
  if (H % KV !== 0) throw new Error(`heads ${H} not a multiple of kvHeads ${KV}`);
  if (D % 2 !== 0) throw new Error(`head dim ${D} must be even for RoPE`);
  if (D > 128) throw new Error(`head dim ${D}: the WebGPU attention kernel supports at most 128`);
  const qDim = H * D;
  const kvDim = KV * D;
  const maxBinding = Math.floor(Math.min(opts.maxBindingBytes ?? Infinity, rt.limits.maxBindingBytes) / 4) * 4;
  const budget = opts.memoryBudgetBytes ?? 2 * 1024 ** 3;

  rt.throwIfLost('loading the forward pass');
  await rt.precompile(KERNELS);

  // ---- weights ---------------------------------------------------------------------------
  const owned = new Set<GPUBuffer>();
  const createBuffer = (label: string, bytes: number): GPUBuffer => {
    const b = rt.createBuffer(label, bytes, USAGE_STORAGE);
    owned.add(b);
    return b;
  };
  const freeBuffer = (b: GPUBuffer | undefined) => {
    if (!b) return;
    b.destroy();
    owned.delete(b);
  };
  const allocMat = (rows: number, cols: number, label: string) => TiledMatrix.allocate(rows, cols, maxBinding, (bytes, l) => createBuffer(l, bytes), label);

  async function tensor(name: string, size: number, optional = false): Promise<Float32Array | undefined> {
    const t = await weights.get(name);
    if (!t) {
      if (optional) return undefined;
      throw new Error(`missing tensor ${name}`);
    }
    if (t.length !== size) throw new Error(`tensor ${name}: ${t.length} elements, expected ${size}`);
    return t;
  }
  const has = async (name: string) => (weights.has ? weights.has(name) : (await weights.get(name)) !== undefined);

  let layerBytes = 2 * d * 4;
  for (const p of PROJECTIONS) {
    const [out, inDim] = projectionShape(dims, p);
    layerBytes += (out * inDim + out) * 4;
  }
  const untied = await has(LM_HEAD);
  const headBytes = V * d * 4 * (untied ? 2 : 1);
  const streaming = headBytes + L * layerBytes > budget;

  /** Per layer, which projections have a bias (a streamed slot is shared, so flags travel separately). */
  const biasFlags: Record<ProjName, boolean>[] = [];
  for (let li = 0; li < L; li++) {
    const flags = {} as Record<ProjName, boolean>;
    for (const p of PROJECTIONS) flags[p] = await has(projectionName(li, p, 'bias'));
    biasFlags.push(flags);
  }

  const allocLayer = (label: string): LayerWeights => {
    const mats = {} as Record<ProjName, TiledMatrix>;
    const bias = {} as Record<ProjName, GPUBuffer>;
    for (const p of PROJECTIONS) {
      const [out, inDim] = projectionShape(dims, p);
      mats[p] = allocMat(out, inDim, `${label}.${p}`);
      bias[p] = createBuffer(`${label}.${p}.bias`, out * 4);
    }
    return { inNorm: createBuffer(`${label}.input_layernorm`, d * 4), postNorm: createBuffer(`${label}.post_attention_layernorm`, d * 4), mats, bias };
  };
  async function uploadLayer(li: number, target: LayerWeights): Promise<void> {
    rt.writeF32(target.inNorm, (await tensor(layerNormName(li, 'input_layernorm'), d))!);
    rt.writeF32(target.postNorm, (await tensor(layerNormName(li, 'post_attention_layernorm'), d))!);
    for (const p of PROJECTIONS) {
      const [out, inDim] = projectionShape(dims, p);
      target.mats[p].write(rt, (await tensor(projectionName(li, p), out * inDim))!);
      const b = await tensor(projectionName(li, p, 'bias'), out, true);
      if (b) rt.writeF32(target.bias[p], b);
    }
  }

  let embedTable!: TiledMatrix;
  let headTable!: TiledMatrix;
  let finalNorm!: GPUBuffer;
  const layers: LayerWeights[] = [];
  try {
    await rt.scoped('uploading the weights', async () => {
      embedTable = allocMat(V, d, EMBEDDING);
      embedTable.write(rt, (await tensor(EMBEDDING, V * d))!);
      headTable = embedTable;
      if (untied) {
        headTable = allocMat(V, d, LM_HEAD);
        headTable.write(rt, (await tensor(LM_HEAD, V * d))!);
      }
      finalNorm = createBuffer(FINAL_NORM, d * 4);
      rt.writeF32(finalNorm, (await tensor(FINAL_NORM, d))!);
      if (streaming) {
        layers.push(allocLayer('streamed layer'));
      } else {
        for (let li = 0; li < L; li++) {
          const ly = allocLayer(`model.layers.${li}`);
          await uploadLayer(li, ly);
          layers.push(ly);
        }
      }
    });
  } catch (e) {
    for (const b of owned) b.destroy();
    throw e;
  }
  const residentBytes = headBytes + (streaming ? layerBytes : L * layerBytes);

  const temps = new Transients(rt);
  const kernels = new ForwardKernels(rt, temps, dims);

  // ---- activations, RoPE table, caches ---------------------------------------------------
  // Rows per chunk so that every activation ([rows × max(F, qDim, d)]) fits one binding.
  const chunkRows = Math.max(1, Math.floor(maxBinding / (4 * Math.max(F, qDim, d))));
  let scratchRows = 0;
  let scratch: Scratch | undefined;
  function ensureScratch(rows: number): Scratch {
    if (scratch && rows <= scratchRows) return scratch;
    if (scratch) for (const b of Object.values(scratch)) freeBuffer(b);
    scratchRows = Math.max(rows, 16);
    const n = scratchRows;
    scratch = {
      ids: createBuffer('ids', n * 4),
      x: createBuffer('hidden', n * d * 4),
      xn: createBuffer('normed', n * d * 4),
      q: createBuffer('q', n * qDim * 4),
      att: createBuffer('attention out', n * qDim * 4),
      g: createBuffer('gate', n * F * 4),
      u: createBuffer('up', n * F * 4),
    };
    return scratch;
  }

  // One RoPE table for both passes (core/qwen2/rope.ts), grown by doubling.
  let ropeLen = 0;
  let ropeCos: GPUBuffer | undefined;
  let ropeSin: GPUBuffer | undefined;
  function ensureRope(positions: number): void {
    if (positions <= ropeLen) return;
    const n = Math.max(positions, ropeLen * 2, 256);
    const { cos, sin } = ropeTables(D, dims.ropeTheta, n);
    freeBuffer(ropeCos);
    freeBuffer(ropeSin);
    ropeCos = createBuffer('rope cos', cos.byteLength);
    ropeSin = createBuffer('rope sin', sin.byteLength);
    rt.writeF32(ropeCos, cos);
    rt.writeF32(ropeSin, sin);
    ropeLen = n;
  }

  const newCache = (capacity: number, label: string): KvCache => ({
    k: Array.from({ length: L }, (_, i) => createBuffer(`${label} k${i}`, capacity * kvDim * 4)),
    v: Array.from({ length: L }, (_, i) => createBuffer(`${label} v${i}`, capacity * kvDim * 4)),
    length: 0,
    capacity,
  });
  function reserve(cache: KvCache, total: number, label: string): void {
    if (total <= cache.capacity) return;
    const cap = Math.max(total, cache.capacity * 2);
    if (cap * kvDim * 4 > maxBinding) throw new Error(`context of ${total} tokens exceeds the GPU binding limit for the KV cache`);
    const grown = newCache(cap, label);
    if (cache.length > 0) {
      const enc = device.createCommandEncoder({ label: 'grow kv cache' });
      for (let i = 0; i < L; i++) {
        enc.copyBufferToBuffer(cache.k[i], 0, grown.k[i], 0, cache.length * kvDim * 4);
        enc.copyBufferToBuffer(cache.v[i], 0, grown.v[i], 0, cache.length * kvDim * 4);
      }
      device.queue.submit([enc.finish()]);
    }
    for (const b of [...cache.k, ...cache.v]) freeBuffer(b);
    cache.k = grown.k;
    cache.v = grown.v;
    cache.capacity = cap;
  }

  // ---- one layer ---------------------------------------------------------------------------

  /** The matrix a projection runs with: the layer's, or the caller's substitute. */
  function matFor(li: number, p: ProjName, ly: LayerWeights, sub: GpuWeight | undefined): TiledMatrix {
    const own = ly.mats[p];
    if (!sub) return own;
    const name = `substituted ${projectionName(li, p)}`;
    if (sub instanceof TiledMatrix) {
      if (sub.rows !== own.rows || sub.cols !== own.cols) throw new Error(`${name}: ${sub.rows}×${sub.cols}, expected ${own.rows}×${own.cols}`);
      for (const t of sub.tiles) if (t.rows * sub.cols * 4 > maxBinding) throw new Error(`${name}: a tile of ${t.rows} rows exceeds the binding limit ${maxBinding}`);
      if (sub.tiles.length === 0) throw new Error(`${name}: released matrix`);
      return sub;
    }
    if (sub.length !== own.rows * own.cols) throw new Error(`${name}: ${sub.length} elements, expected ${own.rows}×${own.cols}`);
    const m = TiledMatrix.allocate(own.rows, own.cols, maxBinding, (bytes, l) => temps.zeroed(l, bytes), name);
    m.write(rt, sub);
    return m;
  }

  /**
   * Encode decoder layer li on rows `x` ([T × d], updated in place: the residual stream) at
   * positions cache.length…+T−1, writing K/V into the cache. With hooks the stream is flushed at
   * each observed input and the hook awaited.
   */
  async function encodeLayer(
    stream: CommandStream, li: number, ly: LayerWeights, x: GPUBuffer, s: Scratch, T: number, cache: KvCache,
    o?: RunLayerOptions<GpuActivation, GpuWeight>,
  ): Promise<void> {
    const pos0 = cache.length;
    const fl = biasFlags[li];
    const bias = (p: ProjName) => (fl[p] ? ly.bias[p] : undefined);
    const mat = (p: ProjName) => matFor(li, p, ly, o?.weights?.[p]);
    const hook = async (input: LinearInput, buf: GPUBuffer) => {
      const f = o?.hooks?.[input];
      if (!f) return;
      stream.flush();
      await f(new GpuActivation(rt, buf, T, linearInputWidth(dims, input), false), { layer: li, input });
    };
    const pass = () => stream.pass;
    kernels.rmsNorm(pass(), T, x, ly.inNorm, s.xn);
    await hook('attn_in', s.xn);
    kernels.matmul(pass(), mat('q_proj'), bias('q_proj'), s.xn, T, s.q);
    kernels.matmul(pass(), mat('k_proj'), bias('k_proj'), s.xn, T, cache.k[li], { yBase: pos0 * kvDim });
    kernels.matmul(pass(), mat('v_proj'), bias('v_proj'), s.xn, T, cache.v[li], { yBase: pos0 * kvDim });
    kernels.rope(pass(), s.q, T, H, pos0, 0, ropeCos!, ropeSin!);
    kernels.rope(pass(), cache.k[li], T, KV, pos0, pos0 * kvDim, ropeCos!, ropeSin!);
    kernels.attention(pass(), T, pos0, s.q, cache.k[li], cache.v[li], s.att);
    await hook('attn_out', s.att);
    kernels.matmul(pass(), mat('o_proj'), bias('o_proj'), s.att, T, x, { accumulate: true });
    kernels.rmsNorm(pass(), T, x, ly.postNorm, s.xn);
    await hook('mlp_in', s.xn);
    kernels.matmul(pass(), mat('gate_proj'), bias('gate_proj'), s.xn, T, s.g);
    kernels.matmul(pass(), mat('up_proj'), bias('up_proj'), s.xn, T, s.u);
    kernels.swiglu(pass(), T * F, s.g, s.u);
    await hook('mlp_mid', s.g);
    kernels.matmul(pass(), mat('down_proj'), bias('down_proj'), s.g, T, x, { accumulate: true });
  }

  /** Layer li's weights, uploaded into the streamed slot first when streaming. */
  async function layerWeights(stream: CommandStream, li: number): Promise<LayerWeights> {
    if (!streaming) return layers[li];
    // Queue order makes the upload land after the previous layer's commands have run.
    stream.flush();
    await uploadLayer(li, layers[0]);
    return layers[0];
  }

  /**
   * Final norm and LM head of rows [first, first + rows) of x; logits (or log-probs) read back.
   * Logits are computed in groups of rows that fit one binding, each group [rows × V].
   */
  async function encodeHead(stream: CommandStream, x: GPUBuffer, s: Scratch, first: number, rows: number, logSoftmax: boolean): Promise<Float32Array> {
    kernels.rmsNorm(stream.pass, rows, x, finalNorm, s.xn, first * d);
    const groupRows = Math.max(1, Math.floor(maxBinding / (V * 4)));
    const groups: { buf: GPUBuffer; r0: number; rows: number }[] = [];
    for (let r0 = 0; r0 < rows; r0 += groupRows) {
      const n = Math.min(groupRows, rows - r0);
      const buf = temps.zeroed('logits', n * V * 4);
      groups.push({ buf, r0, rows: n });
      kernels.matmul(stream.pass, headTable, undefined, s.xn, n, buf, { xBase: r0 * d, ldy: V });
      if (logSoftmax) kernels.logSoftmax(stream.pass, buf, n, V);
    }
    const enc = stream.end();
    const staging = temps.add(device.createBuffer({ label: 'logits readback', size: rows * V * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }));
    for (const g of groups) enc.copyBufferToBuffer(g.buf, 0, staging, g.r0 * V * 4, g.rows * V * 4);
    device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    return new Float32Array(staging.getMappedRange().slice(0));
  }

  const checkIds = (ids: number[]) => {
    if (ids.length === 0) throw new Error('forward: empty input');
    for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`token id ${id} out of range [0, ${V})`);
  };

  /** One chunk of ≤ chunkRows tokens at the cache's end; returns logits (or log-probs) of all or the last row. */
  function runChunk(ids: number[], cache: KvCache, all: boolean, logSoftmax: boolean, label: string): Promise<Float32Array> {
    return rt.scoped('the forward pass', async () => {
      const T = ids.length;
      reserve(cache, cache.length + T, label);
      ensureRope(cache.length + T);
      const s = ensureScratch(T);
      device.queue.writeBuffer(s.ids, 0, Uint32Array.from(ids));
      const stream = new CommandStream(device, 'forward');
      kernels.embed(stream.pass, T, s.ids, embedTable, s.x);
      for (let li = 0; li < L; li++) await encodeLayer(stream, li, await layerWeights(stream, li), s.x, s, T, cache);
      cache.length += T;
      return encodeHead(stream, s.x, s, all ? 0 : T - 1, all ? T : 1, logSoftmax);
    }, () => temps.destroyAll());
  }

  async function forward(ids: number[], cache: KvCache, all: boolean, logSoftmax: boolean, label: string): Promise<Float32Array> {
    checkIds(ids);
    if (ids.length <= chunkRows) return runChunk(ids, cache, all, logSoftmax, label);
    const parts: Float32Array[] = [];
    for (let s = 0; s < ids.length; s += chunkRows) {
      const chunk = ids.slice(s, s + chunkRows);
      const last = s + chunkRows >= ids.length;
      if (all || last) parts.push(await runChunk(chunk, cache, all, logSoftmax, label));
      else await runChunk(chunk, cache, false, false, label);
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

  // Serialise calls: GPU state (scratch, caches) is shared between them.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <R>(fn: () => Promise<R>): Promise<R> => {
    const r = queue.then(fn, fn);
    queue = r.catch(() => undefined);
    return r;
  };

  let windowCache: KvCache | undefined;
  const scratchCache = (n: number): KvCache => {
    windowCache ??= newCache(Math.max(n, 64), 'window');
    windowCache.length = 0;
    return windowCache;
  };
  let cache = newCache(64, 'generation');

  const activationOf = (h: GpuActivation, what: string): GpuActivation => {
    if (!(h instanceof GpuActivation) || h.runtime !== rt) throw new Error(`${what}: expected an activation of this model's GPU runtime`);
    if (h.cols !== d || h.rows < 1) throw new Error(`${what}: activation is ${h.rows}×${h.cols}, expected [T × ${d}]`);
    if (h.rows > chunkRows) throw new Error(`${what}: ${h.rows} rows exceed ${chunkRows}, the most whose activations fit one GPU binding; run shorter sequences`);
    return h;
  };
  let disposed = false;
  const alive = (what: string) => {
    if (disposed) throw new Error(`WebGPU forward: ${what} after dispose()`);
  };

  return {
    kind: 'webgpu',
    runtime: rt,
    dims,
    vocab: V,
    streaming,
    residentBytes,
    get position() {
      return cache.length;
    },
    reset() {
      cache.length = 0;
    },
    embed: (ids) =>
      serial(async () => {
        alive('embed');
        checkIds(ids);
        const T = ids.length;
        if (T > chunkRows) throw new Error(`embed: ${T} tokens exceed ${chunkRows}, the most whose activations fit one GPU binding`);
        return rt.scoped('embed', () => {
          const s = ensureScratch(T);
          device.queue.writeBuffer(s.ids, 0, Uint32Array.from(ids));
          const out = rt.createBuffer('embedded', T * d * 4, USAGE_STORAGE);
          const stream = new CommandStream(device, 'embed');
          kernels.embed(stream.pass, T, s.ids, embedTable, out);
          device.queue.submit([stream.end().finish()]);
          return new GpuActivation(rt, out, T, d, true);
        }, () => temps.destroyAll());
      }),
    runLayer: (li, hidden, o) =>
      serial(async () => {
        alive('runLayer');
        if (!Number.isInteger(li) || li < 0 || li >= L) throw new Error(`runLayer: layer ${li} outside [0, ${L})`);
        const h = activationOf(hidden, 'runLayer');
        const T = h.rows;
        return rt.scoped(`layer ${li}`, async () => {
          const c = scratchCache(T);
          reserve(c, T, 'window');
          ensureRope(T);
          const s = ensureScratch(T);
          const out = rt.createBuffer(`${layerPrefix(li)} output`, T * d * 4, USAGE_STORAGE);
          try {
            const stream = new CommandStream(device, `layer ${li}`);
            stream.copy(h.buffer, out, T * d * 4);
            await encodeLayer(stream, li, await layerWeights(stream, li), out, s, T, c, o);
            device.queue.submit([stream.end().finish()]);
          } catch (e) {
            out.destroy();
            throw e;
          }
          return new GpuActivation(rt, out, T, d, true);
        }, () => temps.destroyAll());
      }),
    head: (hidden, o: HeadOptions = {}) =>
      serial(async () => {
        alive('head');
        const h = activationOf(hidden, 'head');
        return rt.scoped('the LM head', () => {
          const s = ensureScratch(h.rows);
          const stream = new CommandStream(device, 'head');
          return encodeHead(stream, h.buffer, s, o.lastOnly ? h.rows - 1 : 0, o.lastOnly ? 1 : h.rows, o.logSoftmax ?? false);
        }, () => temps.destroyAll());
      }),
    release(a) {
      if (a instanceof GpuActivation && a.owned) a.buffer.destroy();
    },
    logits: (ids) => serial(() => (alive('logits'), forward(ids, scratchCache(ids.length), true, false, 'window'))),
    logProbs: (ids) => serial(() => (alive('logProbs'), forward(ids, scratchCache(ids.length), true, true, 'window'))),
    prefill: (ids) =>
      serial(() => {
        alive('prefill');
        cache.length = 0;
        return forward(ids, cache, false, false, 'generation');
      }),
    step: (id) => serial(() => (alive('step'), forward([id], cache, false, false, 'generation'))),
    dispose() {
      disposed = true;
      for (const b of owned) b.destroy();
      owned.clear();
      kernels.destroy();
      scratch = undefined;
      windowCache = undefined;
      cache = { k: [], v: [], length: 0, capacity: 0 };
    },
  };
}
