import type { Backend, Mat, RotationSpec } from '../../core/ports';
import type { Dtype } from '../../core/safetensors/types';
import { checkCodebookArgs } from '../../core/quant/codebook';
import { decodeToF32, encodeF16 } from '../../core/safetensors/dtype';
import { rotateColumnsF32, rotateRowsF32 } from '../../core/hadamard/rotation';
import {
  histogramF32,
  mseRowErrorsF32,
  quantizeF32,
  quantizeToCodebookF32,
  rowAbsMaxF32,
  rowSquaredErrorsF32,
  scaleColumnsF32,
} from './kernels';

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

/** Plain TypeScript backend: the fallback where WebGPU is missing, and the kernels' oracle. */
export class CpuBackend implements Backend {
  readonly name = 'cpu' as const;
  readonly description = 'CPU (TypeScript)';

  async upload(bytes: Uint8Array, dtype: Dtype, rows: number, cols: number): Promise<Mat> {
    const data = decodeToF32(bytes, dtype);
    if (data.length !== rows * cols) throw new Error(`upload: ${data.length} elements for a ${rows}×${cols} matrix`);
    return new CpuMat(rows, cols, data);
  }
  async clone(m: Mat): Promise<Mat> {
    const c = asCpu(m);
    return new CpuMat(c.rows, c.cols, c.data.slice());
  }
  async scaleColumns(m: Mat, gamma: Float32Array): Promise<void> {
    const c = asCpu(m);
    scaleColumnsF32(c.data, c.rows, c.cols, gamma);
  }
  async rotateRows(m: Mat, spec: RotationSpec): Promise<void> {
    const c = asCpu(m);
    rotateRowsF32(c.data, c.rows, c.cols, spec);
  }
  async rotateColumns(m: Mat, spec: RotationSpec): Promise<void> {
    const c = asCpu(m);
    rotateColumnsF32(c.data, c.rows, c.cols, spec);
  }
  async rowAbsMax(m: Mat): Promise<Float32Array> {
    const c = asCpu(m);
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
    const { values, codeCounts } = quantizeF32(c.data, c.rows, c.cols, rowStep, rowInv, qmin, qmax, roundToF16);
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
    return histogramF32(asCpu(m).data, range, bins);
  }
  async rowSquaredErrors(a: Mat, b: Mat): Promise<{ diff: Float32Array; ref: Float32Array }> {
    const ca = asCpu(a);
    return rowSquaredErrorsF32(ca.data, asCpu(b).data, ca.rows, ca.cols);
  }
  async read(m: Mat, dtype: 'F16' | 'F32'): Promise<Uint8Array> {
    const c = asCpu(m);
    if (dtype === 'F16') return encodeF16(c.data);
    return new Uint8Array(c.data.buffer.slice(c.data.byteOffset, c.data.byteOffset + c.data.byteLength));
  }
  release(m: Mat): void {
    const c = asCpu(m);
    c.data = new Float32Array(0);
  }
  async dispose(): Promise<void> {}
}
