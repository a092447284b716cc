import type { Backend, Mat, RotationSpec } from '../ports';
import { decodeToF32 } from '../safetensors/dtype';

/** The function-preserving transform of one matrix (SPEC §3 steps 1–3). */
export interface MatrixTransform {
  /** RMSNorm γ fused into the columns. */
  gamma: Float32Array | null;
  /** Along every row (input side). */
  rowRot: RotationSpec | null;
  /** Along every column (output side). */
  colRot: RotationSpec | null;
}

export const isIdentity = (t: MatrixTransform): boolean => t.gamma === null && t.rowRot === null && t.colRot === null;

/** A transformed copy of `w0` (which is left as it is): γ fused, then rows, then columns rotated. */
export async function transformMatrix(backend: Backend, w0: Mat, t: MatrixTransform): Promise<Mat> {
  const w = await backend.clone(w0);
  if (t.gamma) await backend.scaleColumns(w, t.gamma);
  if (t.rowRot) await backend.rotateRows(w, t.rowRot);
  if (t.colRot) await backend.rotateColumns(w, t.colRot);
  return w;
}

/** An output-side rotation of a bias vector ((I ⊗ R2ᵀ)·b for v_proj), on the backend like the weights. */
export async function transformBias(backend: Backend, bias: Float32Array, rot: RotationSpec | null): Promise<Float32Array> {
  if (!rot) return bias;
  const m = await backend.upload(new Uint8Array(bias.buffer, bias.byteOffset, bias.byteLength), 'F32', bias.length, 1);
  try {
    await backend.rotateColumns(m, rot);
    return decodeToF32(await backend.read(m, 'F32'), 'F32');
  } finally {
    backend.release(m);
  }
}
