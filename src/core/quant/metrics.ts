/** Error of a quantized tensor against its reference, from per-row squared sums. */
export interface ErrorStats {
  /** ‖W − Ŵ‖ / ‖W‖ */
  relError: number;
  /** 10·log10(‖W‖² / ‖W − Ŵ‖²), Infinity when exact. */
  sqnrDb: number;
  /** Set when the figures are an estimate from this many sampled rows (of `rows`), not the whole matrix. */
  sampled?: { rows: number; of: number };
}

/** Sums rows in order in f64 on the host, so every backend reports identical figures. */
export function errorStatsFromRows(diff: Float32Array, ref: Float32Array): ErrorStats {
  let d = 0;
  let w = 0;
  for (let r = 0; r < diff.length; r++) { d += diff[r]; w += ref[r]; }
  const relError = w > 0 ? Math.sqrt(d / w) : 0;
  const sqnrDb = d > 0 ? 10 * Math.log10(w / d) : Infinity;
  return { relError, sqnrDb };
}
