/**
 * The settings advisor's page state and actions: which methods, codebooks and W8 budgets to try,
 * the live table the worker fills point by point, and "apply" (a row's settings into the app's
 * settings). Its own small store, so the main store stays as it is.
 */
import * as Comlink from 'comlink';
import { create } from 'zustand';
import type { CodebookKind, Method } from '../core/settings';
import type { SweepPointResult, SweepProgress } from '../eval/sweep';
import { gridPoints, type SweepGrid } from '../eval/sweep-grid';
import type { AdviceCallbacks, AdviceRequest, AdviceResult, WorkerError } from '../worker/protocol';
import { applySettings, currentDemo, currentTarget, sourceSpec } from './actions';
import { calibRequest } from './calibration';
import { resolveBackend } from './derive';
import { pipeline, session } from './session';
import { getApp } from './store';

/** The perplexity windows the advisor scores (on the built-in evaluation text, as the CLI's default). */
export const ADVISOR_SEQLEN = 256;
export const ADVISOR_WINDOWS = 8;

export interface AdvisorState {
  methods: Method[];
  codebooks: CodebookKind[];
  /** W8 budgets in percent. */
  w8: number[];
  status: 'idle' | 'running' | 'done' | 'error';
  progress: SweepProgress | null;
  rows: SweepPointResult[];
  /** The finished sweep (original's perplexity, best row). */
  result: AdviceResult | null;
  /** Points the running sweep has in all. */
  total: number;
  error: WorkerError | null;
  notices: string[];
  /** The row whose settings were applied last. */
  applied: number | null;
}

export const ADVISOR_METHODS: Method[] = ['rtn', 'gptq'];
export const ADVISOR_CODEBOOKS: CodebookKind[] = ['uniform', 'learned'];
export const ADVISOR_W8 = [0, 5, 10];

export const initialAdvisor: AdvisorState = {
  methods: [...ADVISOR_METHODS], codebooks: [...ADVISOR_CODEBOOKS], w8: [...ADVISOR_W8],
  status: 'idle', progress: null, rows: [], result: null, total: 0, error: null, notices: [], applied: null,
};

export const useAdvisor = create<AdvisorState>()(() => ({ ...initialAdvisor }));
const set = useAdvisor.setState;
const get = useAdvisor.getState;

function toggled<T>(list: T[], v: T, order: readonly T[]): T[] {
  return list.includes(v) ? list.filter((x) => x !== v) : order.filter((x) => x === v || list.includes(x));
}

export function toggleMethod(m: Method): void { set({ methods: toggled(get().methods, m, ADVISOR_METHODS) }); }
export function toggleCodebook(c: CodebookKind): void { set({ codebooks: toggled(get().codebooks, c, ADVISOR_CODEBOOKS) }); }
export function toggleW8(p: number): void { set({ w8: toggled(get().w8, p, ADVISOR_W8) }); }

/** The grid the checkboxes describe (percent → fraction exactly as --w8-budget N% gives). */
export function advisorGrid(st: AdvisorState = get()): SweepGrid {
  return { methods: st.methods, codebooks: st.codebooks, w8Budgets: st.w8.map((p) => p / 100) };
}

export function advisorPointCount(st: AdvisorState = get()): number {
  return gridPoints(advisorGrid(st)).length;
}

export async function startAdvice(): Promise<void> {
  if (get().status === 'running') return;
  const s = getApp();
  const fail = (message: string) => set({ status: 'error', error: { name: 'InputError', message }, progress: null });
  const source = sourceSpec();
  const t = currentTarget();
  if (!source || !t) return fail('Choose a model first: a demo model, a Hub repo id, or model files.');
  if (s.settings.bits === 16) return fail('16 bits quantizes nothing: choose 4 or 8 bits to compare settings.');
  const grid = advisorGrid();
  const n = gridPoints(grid).length;
  if (n === 0) return fail('Tick at least one method, one codebook and one W8 budget.');
  if (s.settings.bits === 8 && grid.w8Budgets.some((w) => w > 0)) return fail('A W8 budget keeps 4-bit projections at 8 bits, and 8-bit settings have none: tick only W8 0 %, or choose 4 bits.');
  const needsCalib = grid.methods.includes('gptq') || grid.w8Budgets.some((w) => w > 0);
  let calibration: AdviceRequest['calibration'];
  if (needsCalib) {
    const c = calibRequest(s.calib, currentDemo(), session.calibFile, { hubUrl: s.hubUrl || undefined, token: session.token || undefined });
    if (typeof c === 'string') return fail(c);
    calibration = c;
  }
  const req: AdviceRequest = {
    source, settings: s.settings, grid, target: t.target, modelArg: t.modelArg, calibration,
    backend: resolveBackend(s.backend, s.preflight.info, s.settings, s.calibration.backends).backend,
    text: { kind: 'builtin' }, seqlen: ADVISOR_SEQLEN, windows: ADVISOR_WINDOWS,
  };
  set({ status: 'running', progress: null, rows: [], result: null, total: n, error: null, notices: [], applied: null });
  const cb: AdviceCallbacks = {
    onProgress: (p) => { if (get().status === 'running') set({ progress: p }); },
    onPoint: (r) => { if (get().status === 'running') set({ rows: [...get().rows, r] }); },
    onNotice: (m) => set({ notices: [...get().notices, m] }),
  };
  const out = await pipeline().api().advise(req, Comlink.proxy(cb)).catch((e: unknown) => ({
    ok: false as const, error: { name: 'Error', message: `the worker failed: ${(e as Error)?.message ?? String(e)}` },
  }));
  if (!out.ok) {
    if (out.error.name === 'CancelledError') set({ status: 'idle', progress: null, notices: [...get().notices, 'Advice cancelled.'] });
    else set({ status: 'error', error: out.error, progress: null });
    return;
  }
  set({ status: 'done', progress: null, result: out.result, rows: out.result.points });
}

export async function cancelAdvice(): Promise<void> {
  if (get().status !== 'running') return;
  await pipeline().api().cancelAdvice();
}

/** A row's method, codebook and W8 budget into the app's settings (the rest were the same for every row). */
export function applyRow(index: number): void {
  const r = get().rows.find((x) => x.index === index);
  if (!r) return;
  applySettings({ method: r.point.method, codebook: r.point.codebook, w8Budget: r.point.w8Budget });
  set({ applied: index });
}
