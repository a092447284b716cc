import type { Backend, Mat, RotationSpec } from '../../core/ports';
import { checkCodebookArgs, codebookThresholds } from '../../core/quant/codebook';
import { DTYPE_BYTES, type Dtype } from '../../core/safetensors/types';
import { TimestampProfiler, type KernelTiming } from '../../gpu/profiler';
import { createGpuRuntime, Transients, USAGE_STORAGE, type GpuRuntime, type GpuRuntimeOptions, type UniformField } from '../../gpu/runtime';
import type { ShaderName } from '../../gpu/shaders';
import { BufferPool } from '../../gpu/pool';
import { TiledMatrix } from '../../gpu/tiled';
import { RotationKernels } from './rotation-kernels';
import { WebGpuGptqEngine } from './gptq-engine';

export type { KernelTiming } from '../../gpu/profiler';

/*
 * WebGPU implementation of the Backend primitives, on the shared GPU runtime (src/gpu). Every
 * kernel follows the canonical f32 operation order of src/core/ports.ts so results are
 * bit-identical to the CPU oracle (src/backends/cpu). Design:
 *  - a Mat is a TiledMatrix: row tiles, each its own storage buffer no larger than the binding
 *    limit (or the `maxTileBytes` test option) — the same type the forward pass uses, so a
 *    quantized Mat can be run through the forward pass as it is (tiledMatrixOf);
 *  - data stays on the GPU between primitives; only results that the interface returns
 *    (row maxima, MSE tables, histograms, error sums, the final bytes) are read back;
 *  - each primitive records one command encoder / one compute pass per kernel and submits once;
 *  - rotations (signs, FWHT, the K-stage, column transposes) are RotationKernels;
 *  - buffers are pooled by size (BufferPool); pipelines, the dispatch grid and error scopes are the runtime's;
 *  - device loss and out-of-memory surface as GpuUnavailableError (see fallback.ts).
 * Assumes a little-endian host (every browser/Node platform WebGPU runs on).
 */

export interface WebGpuBackendOptions extends GpuRuntimeOptions {
  /**
   * Run on this runtime (its device is shared, e.g. with the forward pass); dispose() then
   * leaves the device alive. Without it the backend creates (and on dispose destroys) its own.
   */
  runtime?: GpuRuntime;
  /** Told once when the backend hits a GPU failure (the fallback wrapper reports the switch). */
  onFallbackNotice?: (message: string) => void;
  /** Tests: cap on one tile's bytes, to force row tiling on small matrices. */
  maxTileBytes?: number;
  /** Bytes of idle buffers kept for reuse (default 512 MiB). */
  poolBytes?: number;
  /** Record per-kernel GPU times (timestamp queries when the adapter has them). */
  profile?: boolean;
}

class GpuMat extends TiledMatrix implements Mat {
  released = false;
  constructor(readonly owner: WebGpuBackend, m: TiledMatrix) {
    super(m.rows, m.cols, m.tiles, m.label);
  }
}

const MAX_MSE_CANDIDATES = 256;
const MAX_CODE_BINS = 256;
const MAX_HIST_BINS = 1024;

/** The Backend on a GpuRuntime. Create it with createWebGpuBackend(). */
export class WebGpuBackend implements Backend {
  readonly name = 'webgpu' as const;
  readonly description: string;
  readonly limits: {
    maxTileBytes: number;
    maxWorkgroupsPerDim: number;
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
  };
  readonly hasTimestamps: boolean;
  readonly device: GPUDevice;
  /** GPTQ's Hessians and column updates on this backend's device (same runtime, so the forward pass's activations are read in place). */
  readonly gptq: WebGpuGptqEngine;

  private readonly pool: BufferPool;
  private readonly rotation: RotationKernels;
  private readonly temps: Transients;
  private disposed = false;
  private readonly profiler: TimestampProfiler | null;

  constructor(
    readonly runtime: GpuRuntime,
    options: Omit<WebGpuBackendOptions, 'runtime'> = {},
    private readonly ownsRuntime = false,
  ) {
    this.device = runtime.device;
    const l = runtime.limits;
    this.limits = {
      maxTileBytes: Math.floor(Math.min(l.maxBindingBytes, options.maxTileBytes ?? Infinity) / 4) * 4,
      maxWorkgroupsPerDim: l.maxWorkgroupsPerDim,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
    };
    this.pool = new BufferPool(runtime, options.poolBytes ?? 512 * 2 ** 20);
    this.hasTimestamps = runtime.hasTimestamps;
    this.profiler = options.profile && runtime.hasTimestamps ? new TimestampProfiler(runtime) : null;
    this.description = runtime.description;
    this.temps = new Transients(runtime);
    this.gptq = new WebGpuGptqEngine(runtime, { maxBindingBytes: this.limits.maxTileBytes });
    this.rotation = new RotationKernels(runtime, {
      kernel: (encoder, name, buffers, workgroups) => this.kernel(encoder, name, buffers, workgroups),
      uniform: (fields) => this.uniform(fields),
      acquire: (bytes) => this.acquire(bytes),
      recycle: (buffer) => this.recycle(buffer),
    });
    runtime.onLost((info) => {
      if (!this.disposed) options.onFallbackNotice?.(`WebGPU device lost (${info.reason}): ${info.message}`);
    });
  }

  // ---------------------------------------------------------------- infrastructure

  private acquire(bytes: number): GPUBuffer {
    return this.pool.acquire(bytes);
  }

  private recycle(buffer: GPUBuffer): void {
    this.pool.recycle(buffer);
  }

  /** A buffer destroyed at the end of the current primitive (after its submit). */
  private temp(data: ArrayBufferView | ArrayBuffer): GPUBuffer {
    return this.temps.filled('temp', data);
  }

  private zeroed(bytes: number): GPUBuffer {
    return this.temps.zeroed('out', bytes);
  }

  private uniform(fields: UniformField[]): GPUBuffer {
    return this.temps.uniform('params', fields);
  }

  /** One kernel in its own pass (so profiling can time it). */
  private kernel(encoder: GPUCommandEncoder, name: ShaderName, buffers: GPUBuffer[], workgroups: number): void {
    const pass = this.profiler ? this.profiler.beginPass(encoder, name) : encoder.beginComputePass({ label: name });
    this.runtime.dispatch(pass, name, buffers, workgroups);
    pass.end();
  }

  private readonly submit = (encoder: GPUCommandEncoder): void => {
    const resolve = this.profiler?.resolve(encoder);
    if (resolve) this.temps.add(resolve);
    this.device.queue.submit([encoder.finish()]);
    this.temps.destroyAll();
  };

  private readBuffers(encoder: GPUCommandEncoder, sources: { buffer: GPUBuffer; bytes: number }[]): Promise<ArrayBuffer[]> {
    return this.runtime.readBack(encoder, sources, this.submit);
  }

  /** One primitive inside the runtime's error scopes (GpuUnavailableError on OOM / loss). */
  private run<T>(what: string, fn: () => Promise<T> | T): Promise<T> {
    if (this.disposed) return Promise.reject(new Error(`webgpu backend: ${what} after dispose()`));
    return this.runtime.scoped(what, fn, () => this.temps.destroyAll());
  }

  private asGpu(m: Mat, what: string): GpuMat {
    if (!(m instanceof GpuMat) || m.owner !== this) throw new Error(`${what}: matrix belongs to another backend`);
    if (m.released) throw new Error(`${what}: matrix used after release`);
    return m;
  }

  private allocMat(rows: number, cols: number): GpuMat {
    return new GpuMat(this, TiledMatrix.allocate(rows, cols, this.limits.maxTileBytes, (bytes) => this.acquire(bytes)));
  }

  /**
   * The device-resident tiles of a Mat of this backend, for GPU stages on the same runtime (the
   * forward pass runs a layer with quantized weights straight from them). Valid until release.
   */
  tiledMatrixOf(m: Mat): TiledMatrix {
    return this.asGpu(m, 'tiledMatrixOf');
  }

  // ---------------------------------------------------------------- Backend

  async upload(bytes: Uint8Array, dtype: Dtype, rows: number, cols: number): Promise<Mat> {
    return this.run('upload', () => {
      const size = DTYPE_BYTES[dtype];
      if (size === undefined) throw new RangeError(`upload: unknown dtype ${String(dtype)}`);
      if (bytes.length !== rows * cols * size) {
        throw new Error(`upload: ${bytes.length / size} elements for a ${rows}×${cols} matrix`);
      }
      const m = this.allocMat(rows, cols);
      const queue = this.device.queue;
      const encoder = this.device.createCommandEncoder({ label: 'upload' });
      const raws: GPUBuffer[] = [];
      for (const t of m.tiles) {
        const n = t.rows * cols;
        const srcOff = t.row0 * cols * size;
        const len = n * size;
        const target = dtype === 'F32' ? t.buffer : this.acquire(len);
        const aligned = len - (len % 4);
        if (aligned > 0) queue.writeBuffer(target, 0, bytes as Uint8Array<ArrayBuffer>, srcOff, aligned);
        if (aligned < len) {
          const tail = new Uint8Array(4);
          tail.set(bytes.subarray(srcOff + aligned, srcOff + len));
          queue.writeBuffer(target, aligned, tail, 0, 4);
        }
        if (dtype !== 'F32') {
          raws.push(target);
          const u = this.uniform([n, dtype === 'F16' ? 1 : 2]);
          this.kernel(encoder, 'decode_half', [u, target, t.buffer], Math.ceil(n / 128));
        }
      }
      this.submit(encoder);
      for (const r of raws) this.recycle(r);
      return m;
    });
  }

  async clone(m: Mat): Promise<Mat> {
    const src = this.asGpu(m, 'clone');
    return this.run('clone', () => {
      const out = this.allocMat(src.rows, src.cols);
      const encoder = this.device.createCommandEncoder({ label: 'clone' });
      src.tiles.forEach((t, i) => encoder.copyBufferToBuffer(t.buffer, 0, out.tiles[i].buffer, 0, t.rows * src.cols * 4));
      this.submit(encoder);
      return out;
    });
  }

  async scaleColumns(m: Mat, gamma: Float32Array): Promise<void> {
    const g = this.asGpu(m, 'scaleColumns');
    if (gamma.length !== g.cols) throw new Error(`scaleColumns: ${gamma.length} gains for ${g.cols} columns`);
    return this.run('scaleColumns', () => {
      const encoder = this.device.createCommandEncoder({ label: 'scaleColumns' });
      const gb = this.temp(Float32Array.from(gamma));
      for (const t of g.tiles) {
        const n = t.rows * g.cols;
        this.kernel(encoder, 'scale_columns', [this.uniform([n, g.cols]), t.buffer, gb], Math.ceil(n / 128));
      }
      this.submit(encoder);
    });
  }

  async rotateRows(m: Mat, spec: RotationSpec): Promise<void> {
    const g = this.asGpu(m, 'rotateRows');
    if (spec.length !== g.cols) throw new Error(`rotateRows: spec length ${spec.length} ≠ ${g.cols} columns`);
    return this.run('rotateRows', () => {
      const encoder = this.device.createCommandEncoder({ label: 'rotateRows' });
      for (const t of g.tiles) t.buffer = this.rotation.rotate(encoder, t.buffer, t.rows * g.cols, spec);
      this.submit(encoder);
    });
  }

  async rotateColumns(m: Mat, spec: RotationSpec): Promise<void> {
    const g = this.asGpu(m, 'rotateColumns');
    if (spec.length !== g.rows) throw new Error(`rotateColumns: spec length ${spec.length} ≠ ${g.rows} rows`);
    return this.run('rotateColumns', () => {
      const { rows, cols } = g;
      // Column blocks of width cb are gathered (transposed) from every row tile into one
      // buffer of cb·rows f32, rotated as rows there, and scattered back.
      const cb = Math.min(cols, Math.floor(this.limits.maxTileBytes / (rows * 4)));
      if (cb < 1) {
        throw new Error(`rotateColumns: a column of ${rows} f32 (${rows * 4} bytes) exceeds the storage binding limit ${this.limits.maxTileBytes}`);
      }
      for (let c0 = 0; c0 < cols; c0 += cb) {
        const w = Math.min(cb, cols - c0);
        const encoder = this.device.createCommandEncoder({ label: 'rotateColumns' });
        let tb = this.acquire(w * rows * 4);
        for (const t of g.tiles) this.rotation.transpose(encoder, t.buffer, tb, t.rows, w, c0, cols, t.row0, rows);
        tb = this.rotation.rotate(encoder, tb, w * rows, spec);
        for (const t of g.tiles) this.rotation.transpose(encoder, tb, t.buffer, w, t.rows, t.row0, rows, c0, cols);
        this.submit(encoder);
        this.recycle(tb);
      }
    });
  }

  async rowAbsMax(m: Mat): Promise<Float32Array> {
    const g = this.asGpu(m, 'rowAbsMax');
    return this.run('rowAbsMax', async () => {
      const encoder = this.device.createCommandEncoder({ label: 'rowAbsMax' });
      const out = this.zeroed(g.rows * 4);
      for (const t of g.tiles) {
        this.kernel(encoder, 'row_absmax', [this.uniform([t.rows, g.cols, t.row0]), t.buffer, out], t.rows);
      }
      const [bytes] = await this.readBuffers(encoder, [{ buffer: out, bytes: g.rows * 4 }]);
      return new Float32Array(bytes);
    });
  }

  async mseRowErrors(
    m: Mat, rowBase: Float32Array, rowInvBase: Float32Array, alphas: Float32Array, invAlphas: Float32Array, qmin: number, qmax: number,
  ): Promise<Float32Array> {
    const g = this.asGpu(m, 'mseRowErrors');
    const n = alphas.length;
    if (n < 1 || n > MAX_MSE_CANDIDATES || invAlphas.length !== n) throw new Error(`mseRowErrors: ${n} candidates (1…${MAX_MSE_CANDIDATES}, with as many inverses)`);
    if (rowBase.length !== g.rows || rowInvBase.length !== g.rows) throw new Error(`mseRowErrors: row vectors must have ${g.rows} entries`);
    return this.run('mseRowErrors', async () => {
      const R = g.rows;
      const aux = new Float32Array(2 * R + 2 * n);
      aux.set(rowBase, 0);
      aux.set(rowInvBase, R);
      aux.set(alphas, 2 * R);
      aux.set(invAlphas, 2 * R + n);
      const auxBuf = this.temp(aux);
      const out = this.zeroed(R * n * 4);
      const encoder = this.device.createCommandEncoder({ label: 'mseRowErrors' });
      for (const t of g.tiles) {
        const u = this.uniform([t.rows, g.cols, n, t.row0, { f32: qmin }, { f32: qmax }, 0, R]);
        this.kernel(encoder, 'mse_rows', [u, t.buffer, auxBuf, out], t.rows);
      }
      const [bytes] = await this.readBuffers(encoder, [{ buffer: out, bytes: R * n * 4 }]);
      return new Float32Array(bytes);
    });
  }

  async quantize(
    m: Mat, rowStep: Float32Array, rowInv: Float32Array, qmin: number, qmax: number, roundToF16: boolean,
  ): Promise<{ mat: Mat; codeCounts: Uint32Array }> {
    const g = this.asGpu(m, 'quantize');
    const bins = qmax - qmin + 1;
    if (!Number.isInteger(qmin) || !Number.isInteger(qmax) || bins < 1 || bins > MAX_CODE_BINS) throw new Error(`quantize: grid [${qmin}, ${qmax}] unsupported (≤ ${MAX_CODE_BINS} codes)`);
    if (rowStep.length !== g.rows || rowInv.length !== g.rows) throw new Error(`quantize: row vectors must have ${g.rows} entries`);
    return this.run('quantize', async () => {
      const R = g.rows;
      const aux = new Float32Array(2 * R);
      aux.set(rowStep, 0);
      aux.set(rowInv, R);
      const auxBuf = this.temp(aux);
      const counts = this.zeroed(bins * 4);
      const out = this.allocMat(g.rows, g.cols);
      const encoder = this.device.createCommandEncoder({ label: 'quantize' });
      g.tiles.forEach((t, i) => {
        const n = t.rows * g.cols;
        const u = this.uniform([n, g.cols, t.row0, roundToF16 ? 1 : 0, { f32: qmin }, { f32: qmax }, bins, R]);
        this.kernel(encoder, 'quantize', [u, t.buffer, auxBuf, out.tiles[i].buffer, counts], Math.ceil(n / 1024));
      });
      const [bytes] = await this.readBuffers(encoder, [{ buffer: counts, bytes: bins * 4 }]);
      return { mat: out, codeCounts: new Uint32Array(bytes) };
    });
  }

  async quantizeToCodebook(
    m: Mat, rowStep: Float32Array, rowInv: Float32Array, codebook: Float32Array, roundToF16: boolean,
  ): Promise<{ mat: Mat; codeCounts: Uint32Array }> {
    const g = this.asGpu(m, 'quantizeToCodebook');
    checkCodebookArgs(g, rowStep, rowInv, codebook);
    return this.run('quantizeToCodebook', async () => {
      const R = g.rows;
      const k = codebook.length;
      const aux = new Float32Array(2 * R + 2 * k - 1);
      aux.set(rowStep, 0);
      aux.set(rowInv, R);
      aux.set(codebook, 2 * R);
      aux.set(codebookThresholds(codebook), 2 * R + k);
      const auxBuf = this.temp(aux);
      const counts = this.zeroed(k * 4);
      const out = this.allocMat(g.rows, g.cols);
      const encoder = this.device.createCommandEncoder({ label: 'quantizeToCodebook' });
      g.tiles.forEach((t, i) => {
        const n = t.rows * g.cols;
        const u = this.uniform([n, g.cols, t.row0, roundToF16 ? 1 : 0, k, R]);
        this.kernel(encoder, 'quantize_codebook', [u, t.buffer, auxBuf, out.tiles[i].buffer, counts], Math.ceil(n / 1024));
      });
      const [bytes] = await this.readBuffers(encoder, [{ buffer: counts, bytes: k * 4 }]);
      return { mat: out, codeCounts: new Uint32Array(bytes) };
    });
  }

  async histogram(m: Mat, range: number, bins: number): Promise<Uint32Array> {
    const g = this.asGpu(m, 'histogram');
    if (!Number.isInteger(bins) || bins < 1 || bins > MAX_HIST_BINS) throw new Error(`histogram: ${bins} bins unsupported (1…${MAX_HIST_BINS})`);
    return this.run('histogram', async () => {
      const r = Math.fround(range);
      const inv = Math.fround(bins / (2 * r));
      const counts = this.zeroed(bins * 4);
      const encoder = this.device.createCommandEncoder({ label: 'histogram' });
      for (const t of g.tiles) {
        const n = t.rows * g.cols;
        this.kernel(encoder, 'histogram', [this.uniform([n, bins, { f32: r }, { f32: inv }]), t.buffer, counts], Math.ceil(n / 2048));
      }
      const [bytes] = await this.readBuffers(encoder, [{ buffer: counts, bytes: bins * 4 }]);
      return new Uint32Array(bytes);
    });
  }

  async rowSquaredErrors(a: Mat, b: Mat): Promise<{ diff: Float32Array; ref: Float32Array }> {
    const ga = this.asGpu(a, 'rowSquaredErrors');
    const gb = this.asGpu(b, 'rowSquaredErrors');
    if (ga.rows !== gb.rows || ga.cols !== gb.cols || ga.tiles.length !== gb.tiles.length) throw new Error('rowSquaredErrors: shapes differ');
    return this.run('rowSquaredErrors', async () => {
      const R = ga.rows;
      const out = this.zeroed(2 * R * 4);
      const encoder = this.device.createCommandEncoder({ label: 'rowSquaredErrors' });
      ga.tiles.forEach((t, i) => {
        const u = this.uniform([t.rows, ga.cols, t.row0, 0, R]);
        this.kernel(encoder, 'row_sq_errors', [u, t.buffer, gb.tiles[i].buffer, out], Math.ceil(t.rows / 64));
      });
      const [bytes] = await this.readBuffers(encoder, [{ buffer: out, bytes: 2 * R * 4 }]);
      return { diff: new Float32Array(bytes, 0, R), ref: new Float32Array(bytes, R * 4, R) };
    });
  }

  async read(m: Mat, dtype: 'F16' | 'F32'): Promise<Uint8Array> {
    const g = this.asGpu(m, 'read');
    return this.run('read', async () => {
      const elem = dtype === 'F16' ? 2 : 4;
      const out = new Uint8Array(g.rows * g.cols * elem);
      // One tile at a time keeps the staging memory to one tile.
      for (const t of g.tiles) {
        const n = t.rows * g.cols;
        const encoder = this.device.createCommandEncoder({ label: 'read' });
        let src = t.buffer;
        let words: GPUBuffer | null = null;
        if (dtype === 'F16') {
          const nw = Math.ceil(n / 2);
          words = this.acquire(nw * 4);
          this.kernel(encoder, 'encode_f16', [this.uniform([n, nw]), t.buffer, words], Math.ceil(nw / 128));
          src = words;
        }
        const [bytes] = await this.readBuffers(encoder, [{ buffer: src, bytes: n * elem }]);
        if (words) this.recycle(words);
        out.set(new Uint8Array(bytes), t.row0 * g.cols * elem);
      }
      return out;
    });
  }

  release(m: Mat): void {
    const g = this.asGpu(m, 'release');
    g.released = true;
    for (const t of g.tiles) this.recycle(t.buffer);
    g.tiles = [];
  }

  /** Wait until the GPU has finished everything submitted (for timing). */
  async sync(): Promise<void> {
    await this.run('sync', () => this.device.queue.onSubmittedWorkDone());
  }

  /** Per-kernel GPU times recorded since the last call (profile option + timestamp-query). */
  async takeTimings(): Promise<KernelTiming[]> {
    return this.profiler ? this.profiler.take() : [];
  }

  /** Free the backend's buffers; the device too when the backend created its runtime. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.pool.destroy();
    this.rotation.destroy();
    this.profiler?.destroy();
    if (this.ownsRuntime) this.runtime.destroy();
  }
}

/**
 * The Backend on `options.runtime`, or on a runtime of its own (device acquired on
 * `options.adapter`, or requested from `options.gpu` / navigator.gpu, with the adapter's
 * limits). Throws GpuUnavailableError when no adapter or device can be had.
 */
export async function createWebGpuBackend(options: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
  const { runtime, ...rest } = options;
  if (runtime) return new WebGpuBackend(runtime, rest, false);
  const own = await createGpuRuntime({ ...rest, timestamps: rest.timestamps ?? rest.profile });
  return new WebGpuBackend(own, rest, true);
}
