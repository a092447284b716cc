/**
 * The worker's side of the settings advisor: opens the model and the backend from plain
 * descriptions, builds the calibration set once (when a grid point needs it) and the evaluation
 * text, and runs the sweep (src/eval/sweep.ts), streaming each point's figures to the page.
 * Nothing is saved: each point's bundle lives in memory until it is scored. Cancel aborts it.
 */
import { CancelledError, InputError } from '../core/errors';
import { usesCalibration } from '../core/link';
import type { PipelineCalibration } from '../core/pipeline/calibration';
import type { Backend } from '../core/ports';
import { Throttle } from '../core/progress';
import { buildPipelineCalibration } from '../eval/gptq-calibration';
import { pointSettings, runSweep } from '../eval/sweep';
import { gridPoints } from '../eval/sweep-grid';
import type { AdviceCallbacks, AdviceRequest, AdviceResult } from './protocol';
import { prepareText } from './quality';
import type { openBackend } from './backend';
import type { openSource } from './sources';

let current: AbortController | null = null;

export function cancelAdvice(): void {
  current?.abort();
}

export async function advise(
  req: AdviceRequest,
  cb: AdviceCallbacks,
  deps: { openSource: typeof openSource; openBackend: typeof openBackend; now: () => number },
): Promise<{ result: AdviceResult }> {
  current?.abort();
  const controller = new AbortController();
  current = controller;
  const signal = controller.signal;
  const throttle = new Throttle(100);
  let backend: Backend | null = null;
  const opened = await deps.openSource(req.source, { signal });
  try {
    backend = await deps.openBackend(req.backend, (m) => void cb.onNotice(m));
    let calibration: PipelineCalibration | undefined;
    if (gridPoints(req.grid).some((p) => usesCalibration(pointSettings(req.settings, p)))) {
      const c = req.calibration;
      if (!c) throw new InputError('GPTQ and W8-budget points need calibration data: choose a calibration source under Method (GPTQ), or advise on RTN points with W8 0 % only');
      const built = await buildPipelineCalibration({
        model: opened.source, modelName: req.target.model, spec: c.spec,
        file: c.file ? { text: await c.file.text(), name: c.fileName ?? 'calibration file' } : undefined,
        demoFiles: c.demoFiles, hubUrl: c.hubUrl, accessToken: c.token, signal,
      }, backend);
      calibration = built.calibration;
      void cb.onNotice(`Calibration: ${built.set.source}, ${built.set.nsamples} × ${built.set.seqlen} tokens`);
    }
    const text = await prepareText(req.text, signal);
    const { kept: _kept, ...result } = await runSweep({
      source: opened.source, target: opened.hub ? { ...req.target, revision: opened.hub.revision } : req.target, modelArg: req.modelArg,
      settings: req.settings, grid: req.grid, backend, calibration,
      evalText: { ...text, seqlen: req.seqlen, windows: req.windows },
      signal,
      onProgress: (p) => {
        if (throttle.ready(deps.now(), `${p.stage}:${p.point}`)) void cb.onProgress({ ...p, pipeline: undefined });
      },
      onPoint: (r) => void cb.onPoint(r),
    });
    return { result };
  } catch (e) {
    if (signal.aborted) throw new CancelledError();
    throw e;
  } finally {
    if (current === controller) current = null;
    opened.close();
    await backend?.dispose().catch(() => undefined);
  }
}
