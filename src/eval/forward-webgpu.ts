/**
 * The Qwen2 forward pass on WebGPU (SPEC §7): the same math as the CPU oracle
 * (forward-cpu.ts) in f32 compute shaders — embedding gather, RMSNorm, matmul + bias, rotate_half
 * RoPE, causal GQA attention with a KV cache, SwiGLU, LM head and log-softmax.
 *
 * Memory: matrices are split by rows into tiles that fit one storage binding, so a 151936-row
 * embedding works under a 128 MiB binding limit. When all weights exceed `memoryBudgetBytes`,
 * only the embedding/LM head stay resident and each layer's weights are uploaded into one
 * reusable set of buffers just before that layer runs (slow, but bounded). Long inputs run in
 * row chunks through the KV cache so that activations also fit one binding.
 */
import { GpuUnavailableError } from '../backends/webgpu/errors';
import { forwardShader, type ForwardShaderName } from './forward-shaders';
import type { Qwen2Dims } from '../core/qwen2/config';

/** Tensors by HF name, f32; may load lazily (a streamed model re-reads a layer per forward). */
export interface AsyncWeightSource {
  get(name: string): Float32Array | undefined | Promise<Float32Array | undefined>;
  /** Whether a tensor exists, without reading it (lazy sources); else `get` is used. */
  has?(name: string): boolean;
}

/** The async counterpart of CausalLM (forward-cpu.ts). */
export interface AsyncCausalLM {
  readonly vocab: number;
  /** Logits of every position, `[T × V]`. Independent of the KV cache. */
  logits(ids: number[]): Promise<Float32Array>;
  /** Clear the cache, run `ids`, return the last position's logits `[V]`. */
  prefill(ids: number[]): Promise<Float32Array>;
  /** Append one token to the cache and return its logits `[V]`. */
  step(id: number): Promise<Float32Array>;
}

export interface Qwen2WebGpu extends AsyncCausalLM {
  readonly dims: Qwen2Dims;
  readonly position: number;
  /** True when layers are uploaded per forward (over the memory budget). */
  readonly streaming: boolean;
  /** Bytes of weights kept on the GPU. */
  readonly residentBytes: number;
  /** log-softmax of every position's logits, computed on the GPU, `[T × V]`. */
  logProbs(ids: number[]): Promise<Float32Array>;
  reset(): void;
  /** Free every GPU buffer (the device stays usable). */
  destroy(): void;
}

export interface WebGpuForwardOptions {
  /** Weights beyond this many bytes are streamed layer by layer. Default 2 GiB. */
  memoryBudgetBytes?: number;
  /** Largest buffer bound to one shader binding (default: the device's limit); tests lower it to force tiling. */
  maxBindingBytes?: number;
}

const LAYER_MATS = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;
type MatKey = (typeof LAYER_MATS)[number];

interface Tile {
  buf: GPUBuffer;
  row0: number;
  rows: number;
}

/** A row-tiled `[out × in]` matrix on the GPU, with an optional bias. */
interface GpuMat {
  out: number;
  in: number;
  tiles: Tile[];
  bias: GPUBuffer | undefined;
}

interface GpuLayer {
  inNorm: GPUBuffer;
  postNorm: GPUBuffer;
  mats: Record<MatKey, GpuMat>;
}

interface GpuCache {
  k: GPUBuffer[];
  v: GPUBuffer[];
  length: number;
  capacity: number;
}

const STORAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;

function prefixOf(li: number, m: MatKey): string {
  const attn = m === 'q' || m === 'k' || m === 'v' || m === 'o';
  return `model.layers.${li}.${attn ? 'self_attn' : 'mlp'}.${m}_proj`;
}

export async function createQwen2WebGpu(
  device: GPUDevice,
  dims: Qwen2Dims,
  weights: AsyncWeightSource,
  opts: WebGpuForwardOptions = {},
): Promise<Qwen2WebGpu> {
  const { hidden: d, intermediate: F, layers: L, heads: H, kvHeads: KV, headDim: D, vocab: V } = dims;
  if (H % KV !== 0) throw new Error(`heads ${H} not a multiple of kvHeads ${KV}`);
  if (D % 2 !== 0) throw new Error(`head dim ${D} must be even for RoPE`);
  if (D > 128) throw new Error(`head dim ${D}: the WebGPU attention kernel supports at most 128`);
  const qDim = H * D;
  const kvDim = KV * D;
  const half = D / 2;
  const maxBinding = Math.min(opts.maxBindingBytes ?? Infinity, device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  const budget = opts.memoryBudgetBytes ?? 2 * 1024 ** 3;
  const maxGroups = device.limits.maxComputeWorkgroupsPerDimension;

  let lost: string | undefined;
  device.lost.then((info) => {
    lost = info.message || info.reason || 'device lost';
  });
  const checkAlive = () => {
    if (lost !== undefined) throw new GpuUnavailableError('device-lost', `WebGPU device lost: ${lost}`);
  };

  // ---- pipelines -------------------------------------------------------------------------
  const pipelines = new Map<ForwardShaderName, GPUComputePipeline>();
  const names: ForwardShaderName[] = ['forward-matmul', 'forward-rmsnorm', 'forward-rope', 'forward-attention', 'forward-swiglu', 'forward-embed', 'forward-logsoftmax'];
  device.pushErrorScope('validation');
  // Synchronous creation keeps the order simple; the worker thread absorbs the cost in browsers.
  for (const n of names) {
    const module = device.createShaderModule({ code: forwardShader(n), label: n });
    pipelines.set(n, device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: n }));
  }
  const pipeErr = await device.popErrorScope();
  if (pipeErr) throw new Error(`WebGPU forward kernels failed to compile: ${pipeErr.message}`);

  // ---- weights ---------------------------------------------------------------------------
  const owned = new Set<GPUBuffer>();
  const createBuffer = (size: number, label: string, usage = STORAGE()): GPUBuffer => {
    // Bindings of runtime-sized arrays need ≥ 4 bytes; sizes must be multiples of 4.
    const b = device.createBuffer({ size: Math.max(4, Math.ceil(size / 4) * 4), usage, label });
    owned.add(b);
    return b;
  };
  const write = (buf: GPUBuffer, data: Float32Array, offsetBytes = 0) => device.queue.writeBuffer(buf, offsetBytes, data.buffer, data.byteOffset, data.byteLength);

  async function tensor(name: string, size: number, optional = false): Promise<Float32Array | undefined> {
    const t = await weights.get(name);
    if (!t) {
      if (optional) return undefined;
      throw new Error(`missing tensor ${name}`);
    }
    if (t.length !== size) throw new Error(`tensor ${name}: ${t.length} elements, expected ${size}`);
    return t;
  }

  const rowsPerTile = (inDim: number) => Math.max(1, Math.floor(maxBinding / (inDim * 4)));

  function allocMat(out: number, inDim: number, withBias: boolean, label: string): GpuMat {
    const per = rowsPerTile(inDim);
    const tiles: Tile[] = [];
    for (let r = 0; r < out; r += per) {
      const rows = Math.min(per, out - r);
      tiles.push({ buf: createBuffer(rows * inDim * 4, `${label}[${r}]`), row0: r, rows });
    }
    return { out, in: inDim, tiles, bias: withBias ? createBuffer(out * 4, `${label}.bias`) : undefined };
  }

  function uploadMat(m: GpuMat, w: Float32Array, b: Float32Array | undefined): void {
    for (const t of m.tiles) write(t.buf, w.subarray(t.row0 * m.in, (t.row0 + t.rows) * m.in));
    if (b && m.bias) write(m.bias, b);
  }

  const matShape: Record<MatKey, [number, number]> = {
    q: [qDim, d],
    k: [kvDim, d],
    v: [kvDim, d],
    o: [d, qDim],
    gate: [F, d],
    up: [F, d],
    down: [d, F],
  };
  let layerBytes = 2 * d * 4;
  for (const m of LAYER_MATS) layerBytes += (matShape[m][0] * matShape[m][1] + matShape[m][0]) * 4;
  const has = async (name: string) => (weights.has ? weights.has(name) : (await weights.get(name)) !== undefined);
  const untied = await has('lm_head.weight');
  const headBytes = V * d * 4 * (untied ? 2 : 1);
  const streaming = headBytes + L * layerBytes > budget;

  device.pushErrorScope('out-of-memory');
  const embed = allocMat(V, d, false, 'embed');
  uploadMat(embed, (await tensor('model.embed_tokens.weight', V * d))!, undefined);
  let head = embed;
  if (untied) {
    head = allocMat(V, d, false, 'lm_head');
    uploadMat(head, (await tensor('lm_head.weight', V * d))!, undefined);
  }
  const finalNorm = createBuffer(d * 4, 'model.norm');
  write(finalNorm, (await tensor('model.norm.weight', d))!);
  const dummy = createBuffer(4, 'no-bias');

  /** Per layer, which projections have a bias (a streamed slot is shared, so flags travel separately). */
  const biasFlags: Record<MatKey, boolean>[] = [];
  async function uploadLayer(li: number, target: GpuLayer): Promise<void> {
    const p = `model.layers.${li}`;
    write(target.inNorm, (await tensor(`${p}.input_layernorm.weight`, d))!);
    write(target.postNorm, (await tensor(`${p}.post_attention_layernorm.weight`, d))!);
    for (const m of LAYER_MATS) {
      const [out, inDim] = matShape[m];
      const w = (await tensor(`${prefixOf(li, m)}.weight`, out * inDim))!;
      const b = await tensor(`${prefixOf(li, m)}.bias`, out, true);
      uploadMat(target.mats[m], w, b);
    }
  }
  const allocLayer = (label: string): GpuLayer => {
    const mats = {} as Record<MatKey, GpuMat>;
    for (const m of LAYER_MATS) mats[m] = allocMat(matShape[m][0], matShape[m][1], true, `${label}.${m}`);
    return { inNorm: createBuffer(d * 4, `${label}.in_norm`), postNorm: createBuffer(d * 4, `${label}.post_norm`), mats };
  };
  for (let li = 0; li < L; li++) {
    const flags = {} as Record<MatKey, boolean>;
    for (const m of LAYER_MATS) flags[m] = await has(`${prefixOf(li, m)}.bias`);
    biasFlags.push(flags);
  }
  const layers: GpuLayer[] = [];
  if (streaming) {
    layers.push(allocLayer('slot'));
  } else {
    for (let li = 0; li < L; li++) {
      const ly = allocLayer(`layer${li}`);
      await uploadLayer(li, ly);
      layers.push(ly);
    }
  }
  const oom = await device.popErrorScope();
  if (oom) {
    for (const b of owned) b.destroy();
    throw new GpuUnavailableError('out-of-memory', `WebGPU out of memory while uploading the weights: ${oom.message}`);
  }
  const residentBytes = headBytes + (streaming ? layerBytes : L * layerBytes);

  // ---- activations, RoPE table, caches ---------------------------------------------------
  // Rows per chunk so that every activation ([rows × max(F, qDim, d)]) fits one binding.
  const chunkRows = Math.max(1, Math.floor(maxBinding / (4 * Math.max(F, qDim, d))));
  let actRows = 0;
  let act: { ids: GPUBuffer; x: GPUBuffer; xn: GPUBuffer; q: GPUBuffer; att: GPUBuffer; g: GPUBuffer; u: GPUBuffer } | undefined;
  function ensureActivations(rows: number): NonNullable<typeof act> {
    if (act && rows <= actRows) return act;
    if (act) for (const b of Object.values(act)) { b.destroy(); owned.delete(b); }
    actRows = Math.max(rows, 16);
    act = {
      ids: createBuffer(actRows * 4, 'ids'),
      x: createBuffer(actRows * d * 4, 'x'),
      xn: createBuffer(actRows * d * 4, 'xn'),
      q: createBuffer(actRows * qDim * 4, 'q'),
      att: createBuffer(actRows * qDim * 4, 'att'),
      g: createBuffer(actRows * F * 4, 'g'),
      u: createBuffer(actRows * F * 4, 'u'),
    };
    return act;
  }

  // Same f32 arithmetic as the oracle: inv_freq in f32, angle = fround(pos · inv_freq).
  const invFreq = new Float32Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = 1 / Math.pow(dims.ropeTheta, (2 * i) / D);
  let ropeLen = 0;
  let ropeCos: GPUBuffer | undefined;
  let ropeSin: GPUBuffer | undefined;
  function ensureRope(positions: number): void {
    if (positions <= ropeLen) return;
    const n = Math.max(positions, ropeLen * 2, 256);
    const c = new Float32Array(n * half);
    const s = new Float32Array(n * half);
    for (let p = 0; p < n; p++) {
      for (let i = 0; i < half; i++) {
        const a = Math.fround(p * invFreq[i]);
        c[p * half + i] = Math.cos(a);
        s[p * half + i] = Math.sin(a);
      }
    }
    for (const b of [ropeCos, ropeSin]) if (b) { b.destroy(); owned.delete(b); }
    ropeCos = createBuffer(c.byteLength, 'rope.cos');
    ropeSin = createBuffer(s.byteLength, 'rope.sin');
    write(ropeCos, c);
    write(ropeSin, s);
    ropeLen = n;
  }

  const newCache = (capacity: number): GpuCache => ({
    k: Array.from({ length: L }, (_, i) => createBuffer(capacity * kvDim * 4, `k${i}`)),
    v: Array.from({ length: L }, (_, i) => createBuffer(capacity * kvDim * 4, `v${i}`)),
    length: 0,
    capacity,
  });
  const freeCache = (c: GpuCache) => {
    for (const b of [...c.k, ...c.v]) { b.destroy(); owned.delete(b); }
  };
  function reserve(cache: GpuCache, total: number): void {
    if (total <= cache.capacity) return;
    const cap = Math.max(total, cache.capacity * 2);
    if (cap * kvDim * 4 > maxBinding) throw new Error(`context of ${total} tokens exceeds the GPU binding limit for the KV cache`);
    const grown = newCache(cap);
    if (cache.length > 0) {
      const enc = device.createCommandEncoder();
      for (let i = 0; i < L; i++) {
        enc.copyBufferToBuffer(cache.k[i], 0, grown.k[i], 0, cache.length * kvDim * 4);
        enc.copyBufferToBuffer(cache.v[i], 0, grown.v[i], 0, cache.length * kvDim * 4);
      }
      device.queue.submit([enc.finish()]);
    }
    freeCache(cache);
    cache.k = grown.k;
    cache.v = grown.v;
    cache.capacity = cap;
  }

  // ---- dispatch helpers ------------------------------------------------------------------
  let transient: GPUBuffer[] = [];
  function params(words: (number | { f32: number })[]): GPUBuffer {
    const buf = device.createBuffer({ size: Math.max(16, Math.ceil((words.length * 4) / 16) * 16), usage: GPUBufferUsage.UNIFORM, mappedAtCreation: true });
    const range = buf.getMappedRange();
    const u = new Uint32Array(range);
    const f = new Float32Array(range);
    words.forEach((w, i) => {
      if (typeof w === 'number') u[i] = w;
      else f[i] = w.f32;
    });
    buf.unmap();
    transient.push(buf);
    return buf;
  }
  /** Workgroup grid for `n` groups within the per-dimension limit (kernels fold y into x). */
  const grid = (n: number): [number, number] => {
    const x = Math.min(Math.max(n, 1), maxGroups);
    return [x, Math.ceil(Math.max(n, 1) / x)];
  };
  function dispatch(pass: GPUComputePassEncoder, name: ForwardShaderName, buffers: GPUBuffer[], gx: number, gy = 1): void {
    const pipe = pipelines.get(name)!;
    const bg = device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })) });
    pass.setPipeline(pipe);
    pass.setBindGroup(0, bg);
    pass.dispatchWorkgroups(gx, gy);
  }
  const perElement = (n: number) => grid(Math.ceil(n / 64));

  function matmul(
    pass: GPUComputePassEncoder,
    m: GpuMat,
    hasBias: boolean,
    x: GPUBuffer,
    rows: number,
    y: GPUBuffer,
    o: { xBase?: number; yBase?: number; ldy?: number; accumulate?: boolean } = {},
  ): void {
    const bias = hasBias && m.bias ? m.bias : undefined;
    for (const t of m.tiles) {
      // y_col = the tile's first row: its outputs' column in y and its bias offset.
      const pb = params([rows, t.rows, m.in, (bias ? 1 : 0) | (o.accumulate ? 2 : 0), o.xBase ?? 0, o.yBase ?? 0, o.ldy ?? m.out, t.row0]);
      dispatch(pass, 'forward-matmul', [pb, x, t.buf, bias ?? dummy, y], Math.ceil(t.rows / 64), Math.ceil(rows / 16));
    }
  }

  function encodeLayer(pass: GPUComputePassEncoder, li: number, ly: GpuLayer, a: NonNullable<typeof act>, T: number, cache: GpuCache, pos0: number): void {
    const fl = biasFlags[li];
    const m = ly.mats;
    dispatch(pass, 'forward-rmsnorm', [params([T, d, { f32: dims.rmsNormEps }, 0]), a.x, ly.inNorm, a.xn], ...grid(T));
    matmul(pass, m.q, fl.q, a.xn, T, a.q);
    matmul(pass, m.k, fl.k, a.xn, T, cache.k[li], { yBase: pos0 * kvDim });
    matmul(pass, m.v, fl.v, a.xn, T, cache.v[li], { yBase: pos0 * kvDim });
    dispatch(pass, 'forward-rope', [params([T, H, D, pos0, 0, 0, 0, 0]), a.q, ropeCos!, ropeSin!], ...perElement(T * H * half));
    dispatch(pass, 'forward-rope', [params([T, KV, D, pos0, pos0 * kvDim, 0, 0, 0]), cache.k[li], ropeCos!, ropeSin!], ...perElement(T * KV * half));
    dispatch(pass, 'forward-attention', [params([T, H, KV, D, pos0, kvDim, { f32: 1 / Math.sqrt(D) }, 0]), a.q, cache.k[li], cache.v[li], a.att], ...grid(T * H));
    matmul(pass, m.o, fl.o, a.att, T, a.x, { accumulate: true });
    dispatch(pass, 'forward-rmsnorm', [params([T, d, { f32: dims.rmsNormEps }, 0]), a.x, ly.postNorm, a.xn], ...grid(T));
    matmul(pass, m.gate, fl.gate, a.xn, T, a.g);
    matmul(pass, m.up, fl.up, a.xn, T, a.u);
    dispatch(pass, 'forward-swiglu', [params([T * F, 0, 0, 0]), a.g, a.u], ...perElement(T * F));
    matmul(pass, m.down, fl.down, a.g, T, a.x, { accumulate: true });
  }

  /** One chunk of ≤ chunkRows tokens at the cache's end; returns logits (or log-probs) of all or the last row. */
  async function runChunk(ids: number[], cache: GpuCache, all: boolean, logSoftmax: boolean): Promise<Float32Array> {
    checkAlive();
    const T = ids.length;
    const pos0 = cache.length;
    reserve(cache, pos0 + T);
    ensureRope(pos0 + T);
    const a = ensureActivations(T);
    device.queue.writeBuffer(a.ids, 0, Uint32Array.from(ids));
    device.pushErrorScope('validation');
    device.pushErrorScope('out-of-memory');

    let enc = device.createCommandEncoder();
    let pass = enc.beginComputePass();
    for (const t of embed.tiles) {
      dispatch(pass, 'forward-embed', [params([T, d, t.row0, t.rows]), a.ids, t.buf, a.x], ...perElement(T * d));
    }
    for (let li = 0; li < L; li++) {
      let ly = layers[li];
      if (streaming) {
        // Queue order makes the upload land after the previous layer's commands have run.
        pass.end();
        device.queue.submit([enc.finish()]);
        ly = layers[0];
        await uploadLayer(li, ly);
        enc = device.createCommandEncoder();
        pass = enc.beginComputePass();
      }
      encodeLayer(pass, li, ly, a, T, cache, pos0);
    }
    const outRows = all ? T : 1;
    dispatch(pass, 'forward-rmsnorm', [params([outRows, d, { f32: dims.rmsNormEps }, all ? 0 : (T - 1) * d]), a.x, finalNorm, a.xn], ...grid(outRows));
    // Logits in groups of rows that fit one binding, each group [rows × V].
    const groupRows = Math.max(1, Math.floor(maxBinding / (V * 4)));
    const groups: { buf: GPUBuffer; r0: number; rows: number }[] = [];
    for (let r0 = 0; r0 < outRows; r0 += groupRows) {
      const rows = Math.min(groupRows, outRows - r0);
      const buf = device.createBuffer({ size: rows * V * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
      transient.push(buf);
      groups.push({ buf, r0, rows });
      matmul(pass, head, false, a.xn, rows, buf, { xBase: r0 * d, ldy: V });
      if (logSoftmax) dispatch(pass, 'forward-logsoftmax', [params([rows, V, 0, 0]), buf], ...grid(rows));
    }
    pass.end();
    const staging = device.createBuffer({ size: outRows * V * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    transient.push(staging);
    for (const g of groups) enc.copyBufferToBuffer(g.buf, 0, staging, g.r0 * V * 4, g.rows * V * 4);
    device.queue.submit([enc.finish()]);
    const oomErr = await device.popErrorScope();
    const valErr = await device.popErrorScope();
    cache.length = pos0 + T;
    try {
      if (oomErr) throw new GpuUnavailableError('out-of-memory', `WebGPU out of memory in the forward pass: ${oomErr.message}`);
      if (valErr) throw new Error(`WebGPU forward pass: ${valErr.message}`);
      await staging.mapAsync(GPUMapMode.READ);
      checkAlive();
      return new Float32Array(staging.getMappedRange().slice(0));
    } finally {
      for (const b of transient) b.destroy();
      transient = [];
    }
  }

  async function forward(ids: number[], cache: GpuCache, all: boolean, logSoftmax: boolean): Promise<Float32Array> {
    if (ids.length === 0) throw new Error('forward: empty input');
    for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`token id ${id} out of range [0, ${V})`);
    if (ids.length <= chunkRows) return runChunk(ids, cache, all, logSoftmax);
    const parts: Float32Array[] = [];
    for (let s = 0; s < ids.length; s += chunkRows) {
      const chunk = ids.slice(s, s + chunkRows);
      const last = s + chunkRows >= ids.length;
      if (all || last) parts.push(await runChunk(chunk, cache, all, logSoftmax));
      else await runChunk(chunk, cache, false, false);
    }
    if (parts.length === 1) return parts[0];
    const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  }

  // Serialise calls: GPU state (activations, caches) is shared between them.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <R>(fn: () => Promise<R>): Promise<R> => {
    const r = queue.then(fn, fn);
    queue = r.catch(() => undefined);
    return r;
  };

  let scratch: GpuCache | undefined;
  const windowCache = (n: number): GpuCache => {
    if (!scratch) scratch = newCache(Math.max(n, 64));
    scratch.length = 0;
    return scratch;
  };
  let cache = newCache(64);

  return {
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
    logits: (ids) => serial(() => forward(ids, windowCache(ids.length), true, false)),
    logProbs: (ids) => serial(() => forward(ids, windowCache(ids.length), true, true)),
    prefill: (ids) =>
      serial(() => {
        cache.length = 0;
        return forward(ids, cache, false, false);
      }),
    step: (id) => serial(() => forward([id], cache, false, false)),
    destroy() {
      for (const b of owned) b.destroy();
      owned.clear();
      act = undefined;
      scratch = undefined;
      cache = { k: [], v: [], length: 0, capacity: 0 };
    },
  };
}
