/**
 * The page's handle on the pipeline worker. One worker lives for the session; if a cancelled
 * run does not stop in time (a long CPU kernel holds the worker), the worker is replaced.
 */
import * as Comlink from 'comlink';
import type { PipelineWorkerApi, QualityCallbacks, QualityRequest, RunCallbacks, RunRequest } from './protocol';

export type { PipelineWorkerApi } from './protocol';

const CANCEL_GRACE_MS = 5000;

export interface PipelineClient {
  api(): Comlink.Remote<PipelineWorkerApi>;
  run(req: RunRequest, cb: RunCallbacks): ReturnType<PipelineWorkerApi['run']>;
  /** Ask the run to stop; resolves once the worker has answered (or was replaced). */
  cancel(): Promise<void>;
  /**
   * The quality check of the last run's bundle (the worker holds it), or of a dropped pair.
   * Cancelled through its signal only: replacing the worker would lose the bundle it holds.
   */
  checkQuality(req: QualityRequest, cb: QualityCallbacks): ReturnType<PipelineWorkerApi['checkQuality']>;
  checkQualityFiles(...args: Parameters<PipelineWorkerApi['checkQualityFiles']>): ReturnType<PipelineWorkerApi['checkQualityFiles']>;
}

function failed(e: unknown) {
  return { ok: false as const, error: { name: 'Error', message: `the worker failed: ${(e as Error)?.message ?? String(e)}` } };
}

function spawn(): { worker: Worker; remote: Comlink.Remote<PipelineWorkerApi> } {
  const worker = new Worker(new URL('./pipeline.worker.ts', import.meta.url), { type: 'module', name: 'quarot-pipeline' });
  return { worker, remote: Comlink.wrap<PipelineWorkerApi>(worker) };
}

export function createPipelineClient(): PipelineClient {
  let w = spawn();
  let running: { settle: (v: Awaited<ReturnType<PipelineWorkerApi['run']>>) => void } | null = null;

  return {
    api: () => w.remote,
    run(req, cb) {
      return new Promise((resolve) => {
        const mine = { settle: resolve };
        running = mine;
        w.remote.run(req, Comlink.proxy(cb)).then(
          (v) => { if (running === mine) running = null; resolve(v); },
          (e: unknown) => { if (running === mine) running = null; resolve({ ok: false, error: { name: 'Error', message: `the worker failed: ${(e as Error)?.message ?? String(e)}` } }); },
        );
      });
    },
    checkQuality(req, cb) {
      return w.remote.checkQuality(req, Comlink.proxy(cb)).catch(failed);
    },
    checkQualityFiles(original, bundle, req, cb) {
      return w.remote.checkQualityFiles(original, bundle, req, Comlink.proxy(cb)).catch(failed);
    },
    async cancel() {
      const r = running;
      if (!r) return;
      void w.remote.cancel();
      // The run normally ends with CancelledError within one tensor; if not, stop the worker outright.
      setTimeout(() => {
        if (running !== r) return;
        running = null;
        w.worker.terminate();
        w = spawn();
        r.settle({ ok: false, error: { name: 'CancelledError', message: 'cancelled (the worker was stopped)' } });
      }, CANCEL_GRACE_MS);
    },
  };
}
