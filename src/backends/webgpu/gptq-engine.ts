/**
 * GPTQ's heavy parts on WebGPU (the GptqEngine port of src/core/ports.ts), on the shared runtime:
 *  - Hessian: H += XᵀX per calibration sample straight from the forward pass's device
 *    activations (gptq_hessian.wgsl; no readback of X), f32 per sample, compensated (hi + lo)
 *    across samples; read back once as f64;
 *  - GPTQ: the column order, dead channels, damping and the Cholesky factor U of H⁻¹ on the host
 *    in f64 (gptqPlan, shared with the CPU oracle gptqQuantize); then per lazy block of B columns
 *    the in-block column loop (gptq_columns.wgsl, one invocation per row) and the trailing update
 *    W[:, j+B:] −= Err·U[j:j+B, j+B:] (gptq_update.wgsl, a tiled matmul), in double-f32 on the
 *    device (hi + lo pairs, error terms kept opaque to the shader compiler). With plain f32 a few
 *    codes per tensor rounded the other way than the CPU's f64 (99.83 % on a fixture o_proj) and
 *    sequential GPTQ carried each flip into every later layer: 95 % of the 5-layer fixture's codes
 *    (double-f32: 100 %, test/webgpu/gptq-pipeline.test.ts).
 * Not bit-identical to the f64 CPU path, but deterministic: every sum runs in a fixed order, no
 * atomics in any sum.
 */
import type { GptqEngine, HessianAccumulation, LinearInputRows } from '../../core/ports';
import { GptqError, gptqPlan, gptqQuantize, gptqUnpermute, type GptqOptions, type GptqResult } from '../../core/quant/gptq';
import { deviceRowsOn } from '../../gpu/device-rows';
import { Transients, USAGE_STORAGE, type GpuRuntime } from '../../gpu/runtime';

/** Columns per lazy block on the GPU (gptq_columns.wgsl keeps a block's row segment in registers). */
export const GPU_GPTQ_MAX_BLOCK = 128;

export interface WebGpuGptqOptions {
  /** Largest buffer bound to one binding (default: the device's); tests lower it to force tiling. */
  maxBindingBytes?: number;
}

/** Timings of the last quantize() (host vs device), for the benchmarks. */
export interface GptqEngineTimings {
  planMs: number;
  deviceMs: number;
}

export class WebGpuGptqEngine implements GptqEngine {
  readonly description: string;
  readonly maxBinding: number;
  lastTimings: GptqEngineTimings = { planMs: 0, deviceMs: 0 };

  constructor(readonly runtime: GpuRuntime, opts: WebGpuGptqOptions = {}) {
    this.description = `${runtime.description}, f32 kernels; Cholesky on the host (f64)`;
    this.maxBinding = Math.floor(Math.min(opts.maxBindingBytes ?? Infinity, runtime.limits.maxBindingBytes) / 4) * 4;
  }

  hessian(dim: number, name?: string): HessianAccumulation {
    return new GpuHessian(this, dim, name);
  }

  async quantize(w: Float32Array, rows: number, cols: number, h: Float64Array, opts: GptqOptions): Promise<GptqResult> {
    // The column kernel rounds onto the integer grid; a learned codebook runs the host oracle.
    if (opts.codebook) return gptqQuantize(w, rows, cols, h, opts);
    const t0 = performance.now();
    const plan = gptqPlan(w, rows, cols, h, opts);
    const t1 = performance.now();
    const { perm, dead, u } = plan;
    const { qmin, qmax, rowStep, rowInv, name } = opts;
    const what = name ? ` (${name})` : '';
    const B = Math.min(opts.blockSize ?? 128, GPU_GPTQ_MAX_BLOCK);
    const rt = this.runtime;
    // W, U and the errors are double-f32 on the device (hi, lo interleaved): 8 bytes a value.
    const perTile = Math.floor(this.maxBinding / (cols * 8));
    if (perTile < 1) throw new Error(`GPTQ${what}: one row of ${cols} double-f32 values exceeds the storage binding limit ${this.maxBinding}`);
    if (B * cols * 8 > this.maxBinding) throw new Error(`GPTQ${what}: a block of U (${B} × ${cols} double-f32) exceeds the storage binding limit ${this.maxBinding}`);
    const temps = new Transients(rt);
    const result = await rt.scoped(`GPTQ${what}`, async () => {
      // Row tiles of the permuted working matrix (dead columns zeroed), their codes and errors.
      const tiles: { row0: number; rows: number; w: GPUBuffer; codes: GPUBuffer; err: GPUBuffer }[] = [];
      for (let r0 = 0; r0 < rows; r0 += perTile) {
        const n = Math.min(perTile, rows - r0);
        const wp = new Float32Array(2 * n * cols); // (w, 0) pairs: the weights are f32
        for (let r = 0; r < n; r++) {
          const o = (r0 + r) * cols;
          const op = 2 * r * cols;
          for (let j = 0; j < cols; j++) wp[op + 2 * j] = dead[j] ? 0 : w[o + perm[j]];
        }
        tiles.push({
          row0: r0, rows: n,
          w: temps.filled('gptq W', wp),
          codes: temps.zeroed('gptq codes', n * cols * 4),
          err: temps.zeroed('gptq err', n * B * 8),
        });
      }
      const aux = new Float32Array(2 * rows);
      aux.set(rowStep, 0);
      aux.set(rowInv, rows);
      const auxBuf = temps.filled('gptq steps', aux);
      const status = temps.zeroed('gptq status', 16);
      const ub = temps.zeroed('gptq U block', B * cols * 8);
      const uf = new Float32Array(2 * B * cols);
      for (let i1 = 0; i1 < cols; i1 += B) {
        const nb = Math.min(B, cols - i1);
        // The block's rows of U as double-f32 (hi = fround(u), lo = fround(u − hi)); queue order
        // lands the write after the previous block's work.
        for (let k = 0; k < nb; k++) {
          const src = (i1 + k) * cols;
          const dst = 2 * k * cols;
          for (let j = 0; j < cols; j++) {
            const x = u[src + j];
            const hi = Math.fround(x);
            uf[dst + 2 * j] = hi;
            uf[dst + 2 * j + 1] = x - hi;
          }
        }
        rt.writeF32(ub, uf.subarray(0, 2 * nb * cols));
        const enc = rt.device.createCommandEncoder({ label: 'gptq block' });
        const pass = enc.beginComputePass({ label: 'gptq block' });
        for (const t of tiles) {
          const pc = temps.uniform('gptq_columns params', [t.rows, cols, i1, nb, { f32: qmin }, { f32: qmax }, opts.roundToF16 ? 1 : 0, t.row0, rows, B, 0, 0]);
          rt.dispatch(pass, 'gptq_columns', [pc, t.w, ub, auxBuf, t.err, t.codes, status], Math.ceil(t.rows / 64));
          const j0 = i1 + nb;
          if (j0 < cols) {
            const pu = temps.uniform('gptq_update params', [t.rows, cols, nb, j0, B, 0, 0, 0]);
            rt.dispatch(pass, 'gptq_update', [pu, t.w, ub, t.err], [Math.ceil((cols - j0) / 16), Math.ceil(t.rows / 16)]);
          }
        }
        pass.end();
        rt.device.queue.submit([enc.finish()]);
      }
      const valuesP = new Float32Array(rows * cols);
      const codesP = new Int32Array(rows * cols);
      for (const t of tiles) {
        const enc = rt.device.createCommandEncoder({ label: 'gptq read' });
        const [vb, cb] = await rt.readBack(enc, [{ buffer: t.w, bytes: t.rows * cols * 8 }, { buffer: t.codes, bytes: t.rows * cols * 4 }]);
        const pairs = new Float32Array(vb); // (v, 0) for every quantized value
        const o = t.row0 * cols;
        for (let i = 0; i < t.rows * cols; i++) valuesP[o + i] = pairs[2 * i];
        codesP.set(new Int32Array(cb), t.row0 * cols);
      }
      const [sb] = await rt.readBack(rt.device.createCommandEncoder({ label: 'gptq status' }), [{ buffer: status, bytes: 4 }]);
      if (new Uint32Array(sb)[0] !== 0) {
        throw new GptqError(`GPTQ${what}: a weight became non-finite during the column updates on the GPU`, name);
      }
      return gptqUnpermute(plan, valuesP, codesP, rows, cols, qmin, qmax);
    }, () => temps.destroyAll());
    this.lastTimings = { planMs: t1 - t0, deviceMs: performance.now() - t1 };
    return result;
  }
}

/** Σ x xᵀ as hi + lo f32 on the device, in row tiles of H that fit one binding. */
class GpuHessian implements HessianAccumulation {
  private readonly tiles: { i0: number; rows: number; hi: GPUBuffer; lo: GPUBuffer }[] = [];
  private count = 0;
  private disposed = false;

  constructor(private readonly engine: WebGpuGptqEngine, readonly dim: number, private readonly name?: string) {
    if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`Hessian: dim ${dim} must be a positive integer`);
    const rt = engine.runtime;
    // Tiles of whole 64-row blocks (the kernel's block height), each at most one binding.
    const perTile = Math.floor(engine.maxBinding / (dim * 4 * 64)) * 64 || Math.floor(engine.maxBinding / (dim * 4));
    if (perTile < 1) throw new Error(`Hessian${this.what}: one row of ${dim} f32 exceeds the storage binding limit ${engine.maxBinding}`);
    try {
      for (let i0 = 0; i0 < dim; i0 += perTile) {
        const rows = Math.min(perTile, dim - i0);
        this.tiles.push({ i0, rows, hi: rt.createBuffer(`H${this.what} hi`, rows * dim * 4, USAGE_STORAGE), lo: rt.createBuffer(`H${this.what} lo`, rows * dim * 4, USAGE_STORAGE) });
      }
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  private get what(): string {
    return this.name ? ` of ${this.name}` : '';
  }

  get samples(): number {
    return this.count;
  }

  async add(x: LinearInputRows): Promise<void> {
    if (this.disposed) throw new Error(`Hessian${this.what}: add() after dispose()`);
    if (x.cols !== this.dim) throw new RangeError(`Hessian${this.what}: rows of ${x.cols} values, expected ${this.dim}`);
    if (x.rows === 0) return;
    const rt = this.engine.runtime;
    const temps = new Transients(rt);
    const dev = deviceRowsOn(rt, x);
    if (dev) {
      // Inside the forward pass's hook, hence inside its error scope: no scope of our own (a
      // scope costs a round trip to the device per sample and input).
      try {
        this.encode(dev.buffer, dev.rows, temps);
      } finally {
        temps.destroyAll();
      }
      this.count += x.rows;
      return;
    }
    await rt.scoped(`Hessian${this.what}`, async () => {
      {
        // Host rows (a CPU forward pass): checked here, uploaded in chunks that fit one binding.
        const data = x.host ?? (await x.read());
        const n = x.rows * this.dim;
        for (let i = 0; i < n; i++) {
          if (!Number.isFinite(data[i])) {
            throw new GptqError(`calibration input${this.what} has a non-finite value (${data[i]}) at row ${Math.floor(i / this.dim)}, column ${i % this.dim}`, this.name);
          }
        }
        const chunk = Math.max(1, Math.floor(this.engine.maxBinding / (this.dim * 4)));
        for (let r0 = 0; r0 < x.rows; r0 += chunk) {
          const nr = Math.min(chunk, x.rows - r0);
          this.encode(temps.filled('calibration rows', data.subarray(r0 * this.dim, (r0 + nr) * this.dim)), nr, temps);
        }
      }
    }, () => temps.destroyAll());
    this.count += x.rows;
  }

  /** H += xᵀx for `rows` rows at the start of `buffer`, submitted now (before the caller's buffer is reused). */
  private encode(buffer: GPUBuffer, rows: number, temps: Transients): void {
    const rt = this.engine.runtime;
    const enc = rt.device.createCommandEncoder({ label: 'gptq hessian' });
    const pass = enc.beginComputePass({ label: 'gptq hessian' });
    for (const t of this.tiles) {
      const pb = temps.uniform('gptq_hessian params', [rows, this.dim, t.i0, t.rows, { f32: 1 }, 0, 0, 0]);
      rt.dispatch(pass, 'gptq_hessian', [pb, buffer, t.hi, t.lo], [Math.ceil(this.dim / 64), Math.ceil(t.rows / 64)]);
    }
    pass.end();
    rt.device.queue.submit([enc.finish()]);
  }

  async hessian(): Promise<Float64Array> {
    if (this.disposed) throw new Error(`Hessian${this.what}: hessian() after dispose()`);
    const d = this.dim;
    const out = new Float64Array(d * d);
    if (this.count === 0) return out;
    const f = 2 / this.count;
    const rt = this.engine.runtime;
    await rt.scoped(`reading the Hessian${this.what}`, async () => {
      for (const t of this.tiles) {
        const enc = rt.device.createCommandEncoder({ label: 'read H' });
        const [hb, lb] = await rt.readBack(enc, [{ buffer: t.hi, bytes: t.rows * d * 4 }, { buffer: t.lo, bytes: t.rows * d * 4 }]);
        const hi = new Float32Array(hb);
        const lo = new Float32Array(lb);
        for (let r = 0; r < t.rows; r++) {
          const i = t.i0 + r;
          for (let j = i; j < d; j++) {
            const v = (hi[r * d + j] + lo[r * d + j]) * f;
            if (!Number.isFinite(v)) {
              throw new GptqError(`calibration input${this.what}: the Hessian entry [${i}, ${j}] is ${v} (a non-finite activation)`, this.name);
            }
            out[i * d + j] = v;
            out[j * d + i] = v;
          }
        }
      }
    });
    return out;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of this.tiles) {
      t.hi.destroy();
      t.lo.destroy();
    }
    this.tiles.length = 0;
  }
}
