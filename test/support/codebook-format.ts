// FORMAT.md's check of one quantized projection against its `.codebook` (learned or the integer
// grid), the way ANEMLL's SP loader reads it — for bundle tests with learned codebooks.
import { codebookProblem } from '../../src/core/quant/codebook';
import { roundToF16 } from '../../src/core/safetensors/dtype';
import { nearest } from './sp-format';

export interface CodebookTensorCheck {
  /** log2 of the codebook's length. */
  bits: number;
  /** What is wrong with the codebook itself (sorting, F16, spacing), or null. */
  codebookProblem: string | null;
  /** Weights whose weight / fp16(s_in·s_out) is not within 2^-9·max(1, |·|) of an entry. */
  offCodebook: number;
  /** Weights that ANEMLL's fp16 de-fuse snaps to another entry than the one they sit on. */
  misSnapped: number;
  /** Distinct entries used. */
  distinct: number;
  firstBad: string;
}

/**
 * weight [rows, cols], input_scales [1, cols], output_scales [rows, 1], codebook [2^b] as decoded
 * F32 values of the stored F16 tensors.
 */
export function checkCodebookTensor(weight: Float32Array, inputScales: Float32Array, outputScales: Float32Array, codebook: Float32Array, rows: number, cols: number): CodebookTensorCheck {
  const bits = Math.log2(codebook.length);
  let offCodebook = 0;
  let misSnapped = 0;
  let firstBad = '';
  const used = new Set<number>();
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = weight[r * cols + c];
      const step = roundToF16(Math.fround(inputScales[c] * outputScales[r])); // the loader's fp16(s_in·s_out)
      const q = v / step;
      const onEntry = nearest(codebook, q);
      const off = Math.abs(q - onEntry) > 2 ** -9 * Math.max(1, Math.abs(q));
      const snapped = nearest(codebook, roundToF16(v / step)); // W_q = fp16(weight / fp16(s_in·s_out)), nearest entry
      if (off) offCodebook++;
      if (snapped !== onEntry) misSnapped++;
      if (!firstBad && (off || snapped !== onEntry)) firstBad = `[${r}, ${c}]: weight ${v}, ÷ scales ${q}, nearest entry ${onEntry}, de-fused and snapped ${snapped}`;
      used.add(onEntry);
    }
  }
  return {
    bits,
    codebookProblem: Number.isInteger(bits) ? codebookProblem(codebook, codebook.length) : `has ${codebook.length} entries, not a power of two`,
    offCodebook, misSnapped, distinct: used.size, firstBad,
  };
}
