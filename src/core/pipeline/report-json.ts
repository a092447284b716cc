import type { PipelineResult } from './run';

/** The run's report as plain JSON (typed arrays become number arrays). */
export function reportToJson(result: PipelineResult): unknown {
  return {
    backend: result.backend,
    elapsedMs: result.elapsedMs,
    bytesRead: result.bytesRead,
    bytesWritten: result.bytesWritten,
    plan: result.plan,
    files: result.files,
    tensors: result.reports.map((r) => ({
      ...r,
      codeCounts: r.codeCounts ? Array.from(r.codeCounts) : undefined,
      histogram: r.histogram
        ? {
            range: r.histogram.range,
            before: Array.from(r.histogram.before),
            after: Array.from(r.histogram.after),
            quantized: r.histogram.quantized ? Array.from(r.histogram.quantized) : undefined,
          }
        : undefined,
    })),
  };
}
