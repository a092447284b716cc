import type { Backend, Mat } from '../ports';
import type { Bits, Clip, Scheme } from '../settings';
import { roundToF16 } from '../safetensors/dtype';

/** The symmetric integer grid of a bit width: Q ∈ [qmin, qmax], qmax = 2^(b−1) − 1. */
export function gridFor(bits: Bits): { qmin: number; qmax: number } {
  const qmax = 2 ** (bits - 1) - 1;
  return { qmin: -qmax - 1, qmax };
}

/**
 * MSE clip search, coarse to fine. Stage 1 tries α = 0.20, 0.24, …, 1.00 (21 values) times the
 * absmax step; stage 2 refines around each row's (or the tensor's) best with ρ = 0.96 … 1.04 in
 * steps of 0.01 (9 values): 30 evaluations resolve α to ~1 % over [0.19, 1.04], like a dense
 * 80-value grid (SPEC §3) at 3× less work. Inverses are precomputed on the host so no backend
 * ever divides (GPU division is not correctly rounded; multiplication is).
 */
export const MSE_ALPHAS: Float32Array = Float32Array.from({ length: 21 }, (_, k) => 0.2 + 0.04 * k);
export const MSE_INV_ALPHAS: Float32Array = MSE_ALPHAS.map((a) => 1 / a);
export const MSE_REFINE: Float32Array = Float32Array.from({ length: 9 }, (_, j) => 0.96 + 0.01 * j);
export const MSE_INV_REFINE: Float32Array = MSE_REFINE.map((a) => 1 / a);

/** What is stored for one quantized tensor and how its rows were stepped. */
export interface TensorScales {
  /** F16-representable value of every `input_scales` entry (one value: per-tensor or SP factor c). */
  inputScale: number;
  /** F16-representable `output_scales`, one per row. */
  outputScales: Float32Array;
  /** Effective per-row step the loader recovers: fp16(input_scale · output_scale_r). */
  rowStep: Float32Array;
  /** fround(1 / rowStep) (0 where rowStep is 0). */
  rowInv: Float32Array;
  /** Chosen clip ratio per row (equal across rows for per_tensor); 1 for absmax. */
  alphas: Float32Array;
}

const F16_MIN_SUBNORMAL = 2 ** -24;

/** One MSE stage's candidates: the per-row SSE of each is asked of the matrix (rows × alphas.length). */
export interface MseStage {
  rowBase: Float32Array;
  rowInvBase: Float32Array;
  alphas: Float32Array;
  invAlphas: Float32Array;
  qmin: number;
  qmax: number;
}

/**
 * The scale choice from streamed statistics: built from the per-row absmax, it asks for at most
 * two MSE stages (the per-row SSE of each candidate, which a caller may compute tile by tile
 * over row ranges and put together in row order) and then lays the scales out. Exactly the f32
 * (and host f64) arithmetic of `chooseScales`, which is this chooser run on a whole matrix.
 */
export class ScaleChooser {
  private readonly rows: number;
  private readonly qmin: number;
  private readonly qmax: number;
  private readonly rowBase: Float32Array;
  private readonly rowInvBase: Float32Array;
  private readonly delta: Float64Array;
  private readonly alphas: Float32Array;
  private coarse: Int32Array | null = null;
  private base2: Float32Array | null = null;
  private invBase2: Float32Array | null = null;
  private stageIndex: number;

  constructor(rowAbsMax: Float32Array, bits: Bits, private readonly scheme: Scheme, clip: Clip) {
    const { qmin, qmax } = gridFor(bits);
    this.qmin = qmin;
    this.qmax = qmax;
    const rows = (this.rows = rowAbsMax.length);
    let tensorMax = 0;
    for (let r = 0; r < rows; r++) if (rowAbsMax[r] > tensorMax) tensorMax = rowAbsMax[r];
    // The range each row's step is based on: its own max (sp) or the tensor's (per_tensor).
    const rowRange = scheme === 'sp' ? rowAbsMax : new Float32Array(rows).fill(tensorMax);
    this.rowBase = new Float32Array(rows);
    this.rowInvBase = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      const mr = rowRange[r];
      this.rowBase[r] = mr / qmax;
      this.rowInvBase[r] = mr > 0 ? qmax / mr : 0;
    }
    // Per row: the step and its inverse (the same for every row with per_tensor), and α chosen.
    this.delta = new Float64Array(rows);
    this.alphas = new Float32Array(rows).fill(1);
    for (let r = 0; r < rows; r++) this.delta[r] = this.rowBase[r];
    this.stageIndex = clip === 'mse' && tensorMax > 0 ? 0 : 2;
  }

  /** The next MSE stage to evaluate, or null once the scales are known. */
  next(): MseStage | null {
    const { qmin, qmax } = this;
    if (this.stageIndex === 0) return { rowBase: this.rowBase, rowInvBase: this.rowInvBase, alphas: MSE_ALPHAS, invAlphas: MSE_INV_ALPHAS, qmin, qmax };
    if (this.stageIndex === 1) return { rowBase: this.base2!, rowInvBase: this.invBase2!, alphas: MSE_REFINE, invAlphas: MSE_INV_REFINE, qmin, qmax };
    return null;
  }

  /** The per-row SSE (rows × N, row-major) of the stage `next()` gave. */
  submit(sse: Float32Array): void {
    const rows = this.rows;
    const stage = this.next();
    if (!stage) throw new Error('ScaleChooser.submit: no MSE stage is pending');
    const n = stage.alphas.length;
    if (sse.length !== rows * n) throw new Error(`ScaleChooser.submit: ${sse.length} errors, expected ${rows} rows × ${n}`);
    const pick = new Int32Array(rows);
    if (this.scheme === 'sp') {
      for (let r = 0; r < rows; r++) pick[r] = argminFromTop(sse, r * n, n);
    } else {
      // Per-tensor totals: row sums added in row order in f64 on the host (identical on every backend).
      const totals = new Float64Array(n);
      for (let r = 0; r < rows; r++) for (let k = 0; k < n; k++) totals[k] += sse[r * n + k];
      pick.fill(argminFromTop(totals, 0, n));
    }
    if (this.stageIndex === 0) {
      this.coarse = pick;
      this.base2 = new Float32Array(rows);
      this.invBase2 = new Float32Array(rows);
      for (let r = 0; r < rows; r++) {
        this.base2[r] = this.rowBase[r] * MSE_ALPHAS[pick[r]];
        this.invBase2[r] = this.rowInvBase[r] * MSE_INV_ALPHAS[pick[r]];
      }
    } else {
      for (let r = 0; r < rows; r++) {
        this.delta[r] = Math.fround(this.base2![r] * MSE_REFINE[pick[r]]);
        this.alphas[r] = MSE_ALPHAS[this.coarse![r]] * MSE_REFINE[pick[r]];
      }
    }
    this.stageIndex++;
  }

  /** The scales, laid out as ANEMLL's input/output scales per FORMAT.md ("Where the scales go"). */
  result(): TensorScales {
    if (this.next()) throw new Error('ScaleChooser.result: an MSE stage is still pending');
    const { rows, delta } = this;
    const outputScales = new Float32Array(rows);
    let inputScale: number;
    if (this.scheme === 'per_tensor') {
      // Δ in input_scales, output_scales = 1 (FORMAT.md: keeps the loader's raw outputs near true size).
      inputScale = delta[0] > 0 ? roundToF16(Math.max(delta[0], F16_MIN_SUBNORMAL)) : 1;
      outputScales.fill(1);
    } else {
      // SP: c = geometric mean of the nonzero row steps in input_scales, Δ_r / c in output_scales.
      let logSum = 0;
      let count = 0;
      for (let r = 0; r < rows; r++) if (delta[r] > 0) { logSum += Math.log(delta[r]); count++; }
      inputScale = count > 0 ? roundToF16(Math.max(Math.exp(logSum / count), F16_MIN_SUBNORMAL)) : 1;
      for (let r = 0; r < rows; r++) {
        outputScales[r] = delta[r] > 0 ? roundToF16(Math.max(delta[r] / inputScale, F16_MIN_SUBNORMAL)) : 1;
      }
    }
    const rowStep = new Float32Array(rows);
    const rowInv = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      // The loader divides by fp16(s_in · s_out): quantize on exactly that step.
      const step = roundToF16(Math.fround(inputScale * outputScales[r]));
      rowStep[r] = step;
      rowInv[r] = step > 0 ? 1 / step : 0;
    }
    return { inputScale, outputScales, rowStep, rowInv, alphas: this.alphas };
  }
}

/**
 * Choose quantization steps for a matrix already on the backend (after any rotation):
 * absmax or MSE-optimal clip, per tensor or per row (SP), then lay them out as ANEMLL's
 * input/output scales per FORMAT.md ("Where the scales go").
 */
export async function chooseScales(
  backend: Backend,
  m: Mat,
  rowAbsMax: Float32Array,
  bits: Bits,
  scheme: Scheme,
  clip: Clip,
): Promise<TensorScales> {
  const chooser = new ScaleChooser(rowAbsMax, bits, scheme, clip);
  for (let st = chooser.next(); st; st = chooser.next()) {
    chooser.submit(await backend.mseRowErrors(m, st.rowBase, st.rowInvBase, st.alphas, st.invAlphas, st.qmin, st.qmax));
  }
  return chooser.result();
}

/** Index of the smallest value; on ties the larger α (higher index) wins. */
function argminFromTop(values: ArrayLike<number>, offset: number, n: number): number {
  let best = n - 1;
  let bestValue = values[offset + n - 1];
  for (let k = n - 2; k >= 0; k--) {
    const v = values[offset + k];
    if (v < bestValue) { bestValue = v; best = k; }
  }
  return best;
}
