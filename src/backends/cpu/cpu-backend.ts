import type { Backend, Mat, RotationSpec } from '../../core/ports';
import type { Dtype } from '../../core/safetensors/types';
import { InputError } from '../../core/errors';
import { checkCodebookArgs } from '../../core/quant/codebook';
import { decodeToF32, encodeF16 } from '../../core/safetensors/dtype';
import { checkMatrix, checkSpec, rotateColumnsF32, rotateRowsF32 } from '../../core/hadamard/rotation';
import {
  histogramF32,
  mseRowErrorsF32,
  quantizeF32,
  quantizeToCodebookF32,
  rowAbsMaxF32,
  rowSquaredErrorsF32,
  scaleColumnsF32,
} from './kernels';
import { SimdKernels } from './simd';

class CpuMat implements Mat {
  constructor(
    readonly rows: number,
    readonly cols: number,
    public data: Float32Array,
  ) {}
}

function asCpu(m: Mat): CpuMat {
  if (!(m instanceof CpuMat)) throw new Error('matrix belongs to another backend');
  if (m.data.length === 0 && m.rows * m.cols !== 0) throw new Error('matrix used after release');
  return m;
}

/**
 * Arrays of released matrices kept for the next matrix of the same length (bounded: at most
 * `maxBytes` in all, none above `maxArrayBytes`, oldest dropped first): a new matrix then reuses
 * pages already mapped instead of faulting in fresh ones — the layers' tensors repeat in shape.
 * Only arrays the pool handed out come back to it.
 */
class ArrayPool {
  private readonly free = new Map<number, Float32Array[]>();
  private readonly order: Float32Array[] = [];
  private readonly owned = new WeakSet<Float32Array>();
  private bytes = 0;
  constructor(
    private readonly maxBytes: number,
    private readonly maxArrayBytes: number,
  ) {}
  take(n: number): Float32Array {
    const a = this.free.get(n)?.pop();
    if (a) {
      this.order.splice(this.order.indexOf(a), 1);
      this.bytes -= a.byteLength;
      return a;
    }
    const b = new Float32Array(n);
    if (b.byteLength <= this.maxArrayBytes) this.owned.add(b);
    return b;
  }
  give(a: Float32Array): void {
    if (!this.owned.has(a) || a.byteLength > this.maxBytes) return;
    let list = this.free.get(a.length);
    if (!list) this.free.set(a.length, (list = []));
    list.push(a);
    this.order.push(a);
    this.bytes += a.byteLength;
    while (this.bytes > this.maxBytes) {
      const old = this.order.shift()!;
      const l = this.free.get(old.length)!;
      l.splice(l.indexOf(old), 1);
      this.bytes -= old.byteLength;
    }
  }
  clear(): void {
    this.free.clear();
    this.order.length = 0;
    this.bytes = 0;
  }
}

export interface CpuBackendOptions {
  /**
   * Run the hot kernels as WebAssembly SIMD (default: where the engine supports it). `false`
   * keeps the plain TypeScript kernels — the oracle the SIMD and WGSL kernels are tested against;
   * both give the same bits.
   */
  simd?: boolean;
}

/** The CPU backend: the fallback where WebGPU is missing, and the kernels' oracle (with simd: false). */
export class CpuBackend implements Backend {
  readonly name = 'cpu' as const;
  readonly description: string;
  private readonly simd: SimdKernels | null;
  private readonly pool = new ArrayPool(128 << 20, 64 << 20);

  constructor(opts: CpuBackendOptions = {}) {
    this.simd = opts.simd === false ? null : SimdKernels.create();
    if (opts.simd === true && !this.simd) throw new Error('this JavaScript engine has no WebAssembly SIMD');
    this.description = this.simd ? 'CPU (WebAssembly SIMD)' : 'CPU (TypeScript)';
  }

  /** Whether the SIMD kernels are in use. */
  get usesSimd(): boolean {
    return this.simd !== null;
  }

  async upload(bytes: Uint8Array, dtype: Dtype, rows: number, cols: number): Promise<Mat> {
    const data = this.simd && dtype === 'BF16' && bytes.length % 2 === 0 ? this.simd.decodeBF16(bytes, this.pool.take(bytes.length / 2)) : decodeToF32(bytes, dtype);
    if (data.length !== rows * cols) throw new Error(`upload: ${data.length} elements for a ${rows}×${cols} matrix`);
    return new CpuMat(rows, cols, data);
  }
  async clone(m: Mat): Promise<Mat> {
    const c = asCpu(m);
    const data = this.pool.take(c.data.length);
    data.set(c.data);
    return new CpuMat(c.rows, c.cols, data);
  }
  async scaleColumns(m: Mat, gamma: Float32Array): Promise<void> {
    const c = asCpu(m);
    if (this.simd && c.cols % 4 === 0 && gamma.length >= c.cols) this.simd.scaleColumns(c.data, c.rows, c.cols, gamma);
    else scaleColumnsF32(c.data, c.rows, c.cols, gamma);
  }
  async rotateRows(m: Mat, spec: RotationSpec): Promise<void> {
    const c = asCpu(m);
    if (!this.simd) return rotateRowsF32(c.data, c.rows, c.cols, spec);
    const fwhtLength = checkSpec(spec);
    checkMatrix(c.data, c.rows, c.cols);
    if (spec.length !== c.cols) throw new InputError(`rotateRows: spec length ${spec.length} ≠ ${c.cols} columns`);
    this.simd.rotateRows(c.data, c.rows, c.cols, spec, fwhtLength);
  }
  async rotateColumns(m: Mat, spec: RotationSpec): Promise<void> {
    const c = asCpu(m);
    if (!this.simd) return rotateColumnsF32(c.data, c.rows, c.cols, spec);
    const fwhtLength = checkSpec(spec);
    checkMatrix(c.data, c.rows, c.cols);
    if (spec.length !== c.rows) throw new InputError(`rotateColumns: spec length ${spec.length} ≠ ${c.rows} rows`);
    this.simd.rotateColumns(c.data, c.rows, c.cols, spec, fwhtLength);
  }
  async rowAbsMax(m: Mat): Promise<Float32Array> {
    const c = asCpu(m);
    if (this.simd && c.cols % 4 === 0) return this.simd.rowAbsMax(c.data, c.rows, c.cols);
    return rowAbsMaxF32(c.data, c.rows, c.cols);
  }
  async mseRowErrors(
    m: Mat,
    rowBase: Float32Array,
    rowInvBase: Float32Array,
    alphas: Float32Array,
    invAlphas: Float32Array,
    qmin: number,
    qmax: number,
  ): Promise<Float32Array> {
    const c = asCpu(m);
    if (this.simd && rowBase.length >= c.rows && rowInvBase.length >= c.rows && invAlphas.length >= alphas.length) {
      return this.simd.mseRowErrors(c.data, c.rows, c.cols, rowBase, rowInvBase, alphas, invAlphas, qmin, qmax);
    }
    return mseRowErrorsF32(c.data, c.rows, c.cols, rowBase, rowInvBase, alphas, invAlphas, qmin, qmax);
  }
  async quantize(
    m: Mat,
    rowStep: Float32Array,
    rowInv: Float32Array,
    qmin: number,
    qmax: number,
    roundToF16: boolean,
  ): Promise<{ mat: Mat; codeCounts: Uint32Array }> {
    const c = asCpu(m);
    const useSimd = this.simd && c.cols % 4 === 0 && rowStep.length >= c.rows && rowInv.length >= c.rows && Number.isInteger(qmin) && Number.isInteger(qmax) && qmin <= qmax;
    const { values, codeCounts } = useSimd
      ? this.simd!.quantize(c.data, c.rows, c.cols, rowStep, rowInv, qmin, qmax, roundToF16, this.pool.take(c.data.length))
      : quantizeF32(c.data, c.rows, c.cols, rowStep, rowInv, qmin, qmax, roundToF16);
    return { mat: new CpuMat(c.rows, c.cols, values), codeCounts };
  }
  async quantizeToCodebook(
    m: Mat,
    rowStep: Float32Array,
    rowInv: Float32Array,
    codebook: Float32Array,
    roundToF16: boolean,
  ): Promise<{ mat: Mat; codeCounts: Uint32Array }> {
    const c = asCpu(m);
    checkCodebookArgs(c, rowStep, rowInv, codebook);
    const { values, codeCounts } = quantizeToCodebookF32(c.data, c.rows, c.cols, rowStep, rowInv, codebook, roundToF16);
    return { mat: new CpuMat(c.rows, c.cols, values), codeCounts };
  }
  async histogram(m: Mat, range: number, bins: number): Promise<Uint32Array> {
    const data = asCpu(m).data;
    if (!this.simd || !Number.isInteger(bins) || bins < 1) return histogramF32(data, range, bins);
    // The SIMD kernel takes the body; the plain one the < 4 elements left (same formula per element).
    const counts = new Uint32Array(bins);
    const r = Math.fround(range);
    const done = this.simd.histogramInto(data, r, Math.fround(bins / (2 * r)), bins, counts);
    const tail = histogramF32(data.subarray(done), range, bins);
    for (let b = 0; b < bins; b++) counts[b] += tail[b];
    return counts;
  }
  async rowSquaredErrors(a: Mat, b: Mat): Promise<{ diff: Float32Array; ref: Float32Array }> {
    const ca = asCpu(a);
    const cb = asCpu(b);
    if (!this.simd || cb.data.length !== ca.data.length) return rowSquaredErrorsF32(ca.data, cb.data, ca.rows, ca.cols);
    const diff = new Float32Array(ca.rows);
    const ref = new Float32Array(ca.rows);
    const done = this.simd.rowSquaredErrorsInto(ca.data, cb.data, ca.rows, ca.cols, diff, ref);
    if (done < ca.rows) {
      const o = done * ca.cols;
      const rest = rowSquaredErrorsF32(ca.data.subarray(o), cb.data.subarray(o), ca.rows - done, ca.cols);
      diff.set(rest.diff, done);
      ref.set(rest.ref, done);
    }
    return { diff, ref };
  }
  async takeRows(m: Mat, rows: Int32Array): Promise<Mat> {
    const c = asCpu(m);
    const out = this.pool.take(rows.length * c.cols);
    let prev = -1;
    rows.forEach((r, i) => {
      if (!Number.isInteger(r) || r <= prev || r >= c.rows) throw new Error(`takeRows: row ${r} after ${prev} of a ${c.rows}-row matrix`);
      prev = r;
      out.set(c.data.subarray(r * c.cols, (r + 1) * c.cols), i * c.cols);
    });
    return new CpuMat(rows.length, c.cols, out);
  }
  async read(m: Mat, dtype: 'F16' | 'F32'): Promise<Uint8Array> {
    const c = asCpu(m);
    if (dtype === 'F16') return this.simd ? this.simd.encodeF16(c.data) : encodeF16(c.data);
    return new Uint8Array(c.data.buffer.slice(c.data.byteOffset, c.data.byteOffset + c.data.byteLength));
  }
  release(m: Mat): void {
    const c = asCpu(m);
    this.pool.give(c.data);
    c.data = new Float32Array(0);
  }
  async dispose(): Promise<void> {
    this.pool.clear();
  }
}
