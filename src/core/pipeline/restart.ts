import type { BundleSink } from '../ports';
import { runPipeline, type PipelineOptions, type PipelineResult } from './run';

/**
 * Run the pipeline; if a source file changes on the server mid-run (a Hub source throws
 * FileChangedError — its ETag moved), the bundle would mix two versions of the model, so the
 * run starts over from the headers with a fresh sink (the failed one was aborted by
 * runPipeline). Re-opening a file gives its new version.
 */
export async function runPipelineWithRestarts(
  opts: Omit<PipelineOptions, 'sink'>,
  makeSink: () => Promise<BundleSink>,
  maxRestarts = 2,
  onRestart?: (reason: Error, attempt: number) => void,
): Promise<PipelineResult> {
  for (let attempt = 0; ; attempt++) {
    const sink = await makeSink();
    try {
      return await runPipeline({ ...opts, sink });
    } catch (err) {
      if (!(err instanceof Error) || err.name !== 'FileChangedError' || attempt >= maxRestarts) throw err;
      onRestart?.(err, attempt + 1);
    }
  }
}
