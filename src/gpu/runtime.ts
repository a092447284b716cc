/**
 * The one GPU runtime: a GPUDevice acquired with the adapter's own limits, and what every GPU
 * stage needs on it — a kernel pipeline cache, uniform packing, the dispatch grid (split into
 * 2-D above maxComputeWorkgroupsPerDimension), labelled buffers, readback, and error scopes
 * that turn out-of-memory and a lost device into GpuUnavailableError.
 *
 * Create it once per run (createGpuRuntime, or createNodeGpuRuntime in Node) and hand it to the
 * quantization backend and the forward pass alike: they then share one device, so data made by
 * one (a quantized weight) can be used by the other without a readback.
 *
 * Scoped calls on one runtime must nest (await each before starting the next, or run one inside
 * another): WebGPU error scopes are a stack per device.
 */
import { GpuUnavailableError, isGpuUnavailable } from './errors';
import { shaderSource, type ShaderName } from './shaders';

export const USAGE_STORAGE = 0x80 | 0x04 | 0x08; // STORAGE | COPY_SRC | COPY_DST
export const USAGE_UNIFORM = 0x40 | 0x08; // UNIFORM | COPY_DST
export const USAGE_READBACK = 0x01 | 0x08; // MAP_READ | COPY_DST
export const USAGE_QUERY_RESOLVE = 0x200 | 0x04; // QUERY_RESOLVE | COPY_SRC
const MAP_READ = 0x01;

/** A uniform word: a u32, or an f32 written as `{ f32: x }`. */
export type UniformField = number | { f32: number };

/** Uniform bytes: each field one 32-bit word, padded to a multiple of 16 bytes. */
export function packUniform(fields: UniformField[]): ArrayBuffer {
  const buf = new ArrayBuffer(Math.max(16, Math.ceil(fields.length / 4) * 16));
  const dv = new DataView(buf);
  fields.forEach((v, i) => {
    if (typeof v === 'number') dv.setUint32(i * 4, v >>> 0, true);
    else dv.setFloat32(i * 4, v.f32, true);
  });
  return buf;
}

/** The adapter's name for reports: vendor / architecture / device / description, deduplicated. */
export function describeAdapter(info: Partial<GPUAdapterInfo> | null | undefined, prefix?: string): string {
  const parts = [info?.vendor, info?.architecture, info?.device, info?.description].filter((s): s is string => typeof s === 'string' && s.length > 0);
  const name = parts.length > 0 ? [...new Set(parts)].join(' / ') : 'unknown adapter';
  return prefix ? `${prefix}: ${name}` : name;
}

export interface GpuLimits {
  /** Largest buffer one storage binding may see: min(maxStorageBufferBindingSize, maxBufferSize), a multiple of 4. */
  maxBindingBytes: number;
  maxWorkgroupsPerDim: number;
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

export interface GpuRuntimeOptions {
  /** The GPU object (navigator.gpu in browsers, createNodeGpu().gpu in Node). */
  gpu?: GPU;
  /** An adapter to use instead of requesting one. */
  adapter?: GPUAdapter;
  requestAdapterOptions?: GPURequestAdapterOptions;
  /** Ask for timestamp queries when the adapter has them (kernel profiling). */
  timestamps?: boolean;
  /** Put before the adapter name in reports ("Dawn opengl"). */
  adapterPrefix?: string;
  label?: string;
}

/** The limits worth raising from their defaults (SPEC §6: requiredLimits from adapter.limits). */
const WANTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupsPerDimension',
  'maxComputeWorkgroupStorageSize',
  'maxStorageBuffersPerShaderStage',
] as const;

export class GpuRuntime {
  readonly limits: GpuLimits;
  readonly hasTimestamps: boolean;
  /** The adapter's name ("Dawn opengl: llvmpipe …"). */
  readonly adapterName: string;
  /** For backend descriptions: "WebGPU (…)". */
  readonly description: string;
  /** Resolves when the device is lost (or destroyed). */
  readonly lostPromise: Promise<GPUDeviceLostInfo>;
  private readonly pipelines = new Map<ShaderName, GPUComputePipeline>();
  private lostInfo: GPUDeviceLostInfo | null = null;
  private destroyed = false;
  private readonly lostListeners: ((info: GPUDeviceLostInfo) => void)[] = [];

  constructor(
    readonly device: GPUDevice,
    readonly adapterInfo: GPUAdapterInfo | null = null,
    opts: { adapterPrefix?: string } = {},
  ) {
    const l = device.limits;
    this.limits = {
      maxBindingBytes: Math.floor(Math.min(l.maxStorageBufferBindingSize, l.maxBufferSize) / 4) * 4,
      maxWorkgroupsPerDim: l.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
    };
    this.hasTimestamps = device.features.has('timestamp-query');
    this.adapterName = describeAdapter(adapterInfo, opts.adapterPrefix);
    this.description = `WebGPU (${describeAdapter(adapterInfo)})`;
    this.lostPromise = device.lost.then((info) => {
      this.lostInfo = info;
      if (!this.destroyed) for (const f of this.lostListeners) f(info);
      return info;
    });
  }

  /** The loss, once the device is lost. */
  get lost(): GPUDeviceLostInfo | null {
    return this.lostInfo;
  }

  /** Told once if the device is lost while in use (not after destroy()). */
  onLost(listener: (info: GPUDeviceLostInfo) => void): void {
    this.lostListeners.push(listener);
  }

  throwIfLost(what: string): void {
    if (this.lostInfo) {
      throw new GpuUnavailableError('device-lost', `WebGPU device lost (${this.lostInfo.reason}${this.lostInfo.message ? `: ${this.lostInfo.message}` : ''}) during ${what}`);
    }
  }

  /** The compute pipeline of one kernel (shaders/<name>.wgsl, entry point main), compiled once. */
  pipeline(name: ShaderName): GPUComputePipeline {
    let p = this.pipelines.get(name);
    if (!p) {
      const module = this.device.createShaderModule({ label: name, code: shaderSource(name) });
      p = this.device.createComputePipeline({ label: name, layout: 'auto', compute: { module, entryPoint: 'main' } });
      this.pipelines.set(name, p);
    }
    return p;
  }

  /** Compile kernels now, reporting WGSL errors as one Error naming them. */
  async precompile(names: ShaderName[]): Promise<void> {
    this.device.pushErrorScope('validation');
    for (const n of names) this.pipeline(n);
    const err = await this.device.popErrorScope();
    if (err) {
      for (const n of names) this.pipelines.delete(n);
      throw new Error(`WebGPU kernels (${names.join(', ')}) failed to compile: ${err.message}`);
    }
  }

  /**
   * A grid of `workgroups` groups within the per-dimension limit: [n, 1], or [x, y] with
   * x·y ≥ n (kernels linearise workgroup_id with num_workgroups and guard the tail).
   */
  grid(workgroups: number): [number, number] {
    const max = this.limits.maxWorkgroupsPerDim;
    const n = Math.max(1, workgroups);
    if (n <= max) return [n, 1];
    const y = Math.ceil(n / max);
    return [Math.ceil(n / y), y];
  }

  /** Bind `buffers` to bindings 0…n−1 of `name` and dispatch: a count (split by grid()) or an explicit [x, y]. */
  dispatch(pass: GPUComputePassEncoder, name: ShaderName, buffers: GPUBuffer[], workgroups: number | [number, number]): void {
    const pipeline = this.pipeline(name);
    const bindGroup = this.device.createBindGroup({
      label: name,
      layout: pipeline.getBindGroupLayout(0),
      entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    const [x, y] = typeof workgroups === 'number' ? this.grid(workgroups) : workgroups;
    pass.dispatchWorkgroups(x, y);
  }

  /** A labelled buffer (size rounded up to 4 bytes, at least 16: runtime-sized bindings need room). */
  createBuffer(label: string, bytes: number, usage = USAGE_STORAGE): GPUBuffer {
    return this.device.createBuffer({ label, size: Math.max(16, Math.ceil(bytes / 4) * 4), usage });
  }

  /** A labelled buffer holding `data`. */
  createFilled(label: string, data: ArrayBufferView | ArrayBuffer, usage = USAGE_STORAGE): GPUBuffer {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const b = this.device.createBuffer({ label, size: Math.max(16, Math.ceil(bytes.length / 4) * 4), usage, mappedAtCreation: true });
    new Uint8Array(b.getMappedRange()).set(bytes);
    b.unmap();
    return b;
  }

  /** f32 values into `buffer` at `offsetBytes` (queue order: after work already submitted). */
  writeF32(buffer: GPUBuffer, data: Float32Array, offsetBytes = 0): void {
    this.device.queue.writeBuffer(buffer, offsetBytes, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  }

  /**
   * Copy `sources` into staging buffers on `encoder`, submit it (through `submit`, e.g. a
   * profiler's), and return their bytes.
   */
  async readBack(
    encoder: GPUCommandEncoder,
    sources: { buffer: GPUBuffer; bytes: number; offset?: number }[],
    submit: (encoder: GPUCommandEncoder) => void = (e) => this.device.queue.submit([e.finish()]),
  ): Promise<ArrayBuffer[]> {
    const staging = sources.map(({ buffer, bytes, offset }) => {
      const size = Math.max(16, Math.ceil(bytes / 4) * 4);
      const s = this.device.createBuffer({ label: `read ${buffer.label}`, size, usage: USAGE_READBACK });
      encoder.copyBufferToBuffer(buffer, offset ?? 0, s, 0, Math.min(size, buffer.size - (offset ?? 0)));
      return s;
    });
    submit(encoder);
    try {
      await Promise.all(staging.map((s) => s.mapAsync(MAP_READ)));
      return staging.map((s, i) => s.getMappedRange().slice(0, sources[i].bytes));
    } finally {
      for (const s of staging) s.destroy();
    }
  }

  /** f32 contents of a storage buffer (its first `count` values). */
  async readF32(buffer: GPUBuffer, count: number, offsetBytes = 0): Promise<Float32Array> {
    const encoder = this.device.createCommandEncoder({ label: `read ${buffer.label}` });
    const [bytes] = await this.readBack(encoder, [{ buffer, bytes: count * 4, offset: offsetBytes }]);
    return new Float32Array(bytes);
  }

  /**
   * Run `fn` inside error scopes: out-of-memory and a lost or failed device become
   * GpuUnavailableError, validation errors (bugs) plain Errors naming `what`.
   * `cleanup` runs after `fn`, before the scopes are popped (destroy transient buffers there).
   */
  async scoped<T>(what: string, fn: () => Promise<T> | T, cleanup?: () => void): Promise<T> {
    this.throwIfLost(what);
    const device = this.device;
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    let result: T | undefined;
    let thrown: unknown;
    let failed = false;
    try {
      result = await fn();
    } catch (e) {
      thrown = e;
      failed = true;
    } finally {
      cleanup?.();
    }
    let validation: GPUError | null = null;
    let oom: GPUError | null = null;
    try {
      validation = await device.popErrorScope();
      oom = await device.popErrorScope();
    } catch {
      // a lost device may refuse to pop; handled below
    }
    if (failed || oom || validation) {
      // a lost device reports asynchronously: give it a moment to be noticed
      await Promise.race([this.lostPromise, new Promise((r) => setTimeout(r, 20))]);
    }
    this.throwIfLost(what);
    if (oom) throw new GpuUnavailableError('out-of-memory', `WebGPU out of memory in ${what}: ${oom.message}`);
    if (failed) {
      if (isGpuUnavailable(thrown)) throw thrown;
      const name = thrown instanceof Error ? thrown.name : '';
      if (name === 'OperationError' || name === 'AbortError') {
        throw new GpuUnavailableError('device-failed', `WebGPU failed in ${what}: ${(thrown as Error).message}`, { cause: thrown });
      }
      throw thrown;
    }
    if (validation) throw new Error(`WebGPU validation error in ${what}: ${validation.message}`);
    return result as T;
  }

  /** Destroy the device (every buffer on it goes with it). */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.pipelines.clear();
    this.device.destroy();
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }
}

/**
 * Buffers that live for one operation: made through this list, destroyed together after the
 * operation's submit (WebGPU keeps them alive until submitted work using them completes).
 * Each GPU stage owns its own list, so stages sharing a runtime do not free each other's.
 */
export class Transients {
  private list: GPUBuffer[] = [];
  constructor(private readonly rt: GpuRuntime) {}

  add(b: GPUBuffer): GPUBuffer {
    this.list.push(b);
    return b;
  }

  uniform(label: string, fields: UniformField[]): GPUBuffer {
    return this.add(this.rt.createFilled(label, packUniform(fields), USAGE_UNIFORM));
  }

  filled(label: string, data: ArrayBufferView | ArrayBuffer, usage = USAGE_STORAGE): GPUBuffer {
    return this.add(this.rt.createFilled(label, data, usage));
  }

  /** Zero-initialised (WebGPU clears new buffers). */
  zeroed(label: string, bytes: number, usage = USAGE_STORAGE): GPUBuffer {
    return this.add(this.rt.createBuffer(label, bytes, usage));
  }

  destroyAll(): void {
    for (const b of this.list) b.destroy();
    this.list = [];
  }
}

/**
 * Acquire a device on `options.adapter` (or one requested from `options.gpu` / navigator.gpu)
 * with the adapter's own limits. Throws GpuUnavailableError when no adapter or device can be had.
 */
export async function createGpuRuntime(options: GpuRuntimeOptions = {}): Promise<GpuRuntime> {
  let adapter = options.adapter ?? null;
  if (!adapter) {
    const gpu = options.gpu ?? (typeof navigator !== 'undefined' ? (navigator as Navigator & { gpu?: GPU }).gpu : undefined);
    if (!gpu) throw new GpuUnavailableError('no-adapter', 'WebGPU is not available here (no navigator.gpu)');
    try {
      adapter = await gpu.requestAdapter(options.requestAdapterOptions);
    } catch (e) {
      throw new GpuUnavailableError('no-adapter', `WebGPU adapter request failed: ${(e as Error).message}`, { cause: e });
    }
    if (!adapter) throw new GpuUnavailableError('no-adapter', 'WebGPU: no adapter available');
  }
  const requiredLimits: Record<string, number> = {};
  const limits = adapter.limits as unknown as Record<string, number>;
  for (const key of WANTED_LIMITS) {
    const v = limits[key];
    if (typeof v === 'number') requiredLimits[key] = v;
  }
  const requiredFeatures: GPUFeatureName[] = [];
  if (options.timestamps && adapter.features.has('timestamp-query')) requiredFeatures.push('timestamp-query');
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ label: options.label ?? 'quarot-studio', requiredLimits, requiredFeatures });
  } catch (e) {
    throw new GpuUnavailableError('no-adapter', `WebGPU device request failed: ${(e as Error).message}`, { cause: e });
  }
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info ?? null;
  return new GpuRuntime(device, info, { adapterPrefix: options.adapterPrefix });
}
