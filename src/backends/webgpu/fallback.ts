import type { Backend, GptqEngine, Mat, RotationSpec } from '../../core/ports';
import { cpuGptqEngine } from '../../core/quant/gptq-engine';
import type { Dtype } from '../../core/safetensors/types';
import { isGpuUnavailable } from './errors';

/*
 * A Backend that runs on `primary` (WebGPU) and, the first time any call fails with
 * GpuUnavailableError (device lost, out of memory), moves for good to `fallback` (CPU).
 *
 * Nothing partial is copied off the failed device. Instead every Mat handed out remembers how
 * it was made — the source bytes of its `upload` (kept by reference: callers must not modify
 * them afterwards), the `clone`, `quantize` or `quantizeToCodebook` it came from, and the in-place operations applied
 * since (scaleColumns, rotateRows, rotateColumns). On the switch each live Mat is rebuilt on the
 * fallback by replaying that log, then the failed call is repeated there. Backends are
 * bit-identical, so the replayed state — and the bundle — is the same as if the GPU had not
 * failed. The recipe of a released Mat is kept while a Mat derived from it lives.
 */

type Op =
  | { op: 'scaleColumns'; gamma: Float32Array }
  | { op: 'rotateRows'; spec: RotationSpec }
  | { op: 'rotateColumns'; spec: RotationSpec };

type Origin =
  | { kind: 'upload'; bytes: Uint8Array; dtype: Dtype; rows: number; cols: number }
  | { kind: 'clone'; of: Recipe; upTo: number }
  | {
      kind: 'quantize'; of: Recipe; upTo: number;
      rowStep: Float32Array; rowInv: Float32Array; qmin: number; qmax: number; roundToF16: boolean;
    }
  | {
      kind: 'quantizeToCodebook'; of: Recipe; upTo: number;
      rowStep: Float32Array; rowInv: Float32Array; codebook: Float32Array; roundToF16: boolean;
    };

interface Recipe {
  origin: Origin;
  ops: Op[];
}

class FallbackMat implements Mat {
  released = false;
  constructor(
    readonly rows: number,
    readonly cols: number,
    public inner: Mat,
    public onPrimary: boolean,
    readonly recipe: Recipe,
  ) {}
}

export type FallbackNotice = (message: string) => void;

export interface FallbackBackend extends Backend {
  /** True once the work has moved to the fallback backend. */
  readonly fellBack: boolean;
  /** The backend doing the work now (the primary until a failure, then the fallback). */
  readonly active: Backend;
}

export function createFallbackBackend(primary: Backend, fallback: Backend, onNotice: FallbackNotice = () => undefined): FallbackBackend {
  let usePrimary = true;
  const live = new Set<FallbackMat>();

  const asFb = (m: Mat, what: string): FallbackMat => {
    if (!(m instanceof FallbackMat)) throw new Error(`${what}: matrix belongs to another backend`);
    if (m.released) throw new Error(`${what}: matrix used after release`);
    return m;
  };

  /** A fresh fallback Mat in the state `recipe` had after its first `upTo` operations. */
  async function rebuild(recipe: Recipe, upTo: number): Promise<Mat> {
    const o = recipe.origin;
    let m: Mat;
    if (o.kind === 'upload') {
      m = await fallback.upload(o.bytes, o.dtype, o.rows, o.cols);
    } else if (o.kind === 'clone') {
      m = await rebuild(o.of, o.upTo);
    } else {
      const parent = await rebuild(o.of, o.upTo);
      try {
        m = o.kind === 'quantize'
          ? (await fallback.quantize(parent, o.rowStep, o.rowInv, o.qmin, o.qmax, o.roundToF16)).mat
          : (await fallback.quantizeToCodebook(parent, o.rowStep, o.rowInv, o.codebook, o.roundToF16)).mat;
      } finally {
        fallback.release(parent);
      }
    }
    for (const op of recipe.ops.slice(0, upTo)) {
      if (op.op === 'scaleColumns') await fallback.scaleColumns(m, op.gamma);
      else if (op.op === 'rotateRows') await fallback.rotateRows(m, op.spec);
      else await fallback.rotateColumns(m, op.spec);
    }
    return m;
  }

  async function switchOver(err: unknown): Promise<void> {
    usePrimary = false;
    onNotice(`GPU unavailable (${err instanceof Error ? err.message : String(err)}); continuing on ${fallback.description}`);
    for (const fm of live) {
      if (!fm.onPrimary) continue;
      try {
        primary.release(fm.inner);
      } catch {
        // the device is gone; nothing to free
      }
      fm.inner = await rebuild(fm.recipe, fm.recipe.ops.length);
      fm.onPrimary = false;
    }
    await primary.dispose().catch(() => undefined);
  }

  /** Run `f` on the active backend; on a GPU failure switch over and run it on the fallback. */
  async function call<T>(f: (b: Backend, onPrimary: boolean) => Promise<T>): Promise<T> {
    if (usePrimary) {
      try {
        return await f(primary, true);
      } catch (e) {
        if (!isGpuUnavailable(e)) throw e;
        await switchOver(e);
      }
    }
    return f(fallback, false);
  }

  const wrap = (inner: Mat, onPrimary: boolean, recipe: Recipe): FallbackMat => {
    const fm = new FallbackMat(inner.rows, inner.cols, inner, onPrimary, recipe);
    live.add(fm);
    return fm;
  };

  const mutate = async (m: Mat, what: string, op: Op): Promise<void> => {
    const fm = asFb(m, what);
    await call(async (b) => {
      if (op.op === 'scaleColumns') await b.scaleColumns(fm.inner, op.gamma);
      else if (op.op === 'rotateRows') await b.rotateRows(fm.inner, op.spec);
      else await b.rotateColumns(fm.inner, op.spec);
    });
    fm.recipe.ops.push(op);
  };

  // GPTQ: the primary's engine while on the primary. A GPU failure in GPTQ's updates switches
  // over and redoes that tensor on the CPU (its inputs are all on the host); a Hessian being
  // accumulated on a lost device cannot be recovered (its rows are gone), so that error stands.
  const primaryGptq = primary.gptq;
  const gptq: GptqEngine | undefined = primaryGptq && {
    get description() {
      return usePrimary ? primaryGptq.description : cpuGptqEngine.description;
    },
    hessian: (dim, name) => (usePrimary ? primaryGptq : cpuGptqEngine).hessian(dim, name),
    quantize: (w, rows, cols, h, opts) => call((b, onPrimary) => (onPrimary ? primaryGptq : cpuGptqEngine).quantize(w, rows, cols, h, opts)),
  };

  const backend: FallbackBackend = {
    name: primary.name,
    gptq,
    get description() {
      return usePrimary ? primary.description : `${fallback.description} (fell back from ${primary.description})`;
    },
    get fellBack() {
      return !usePrimary;
    },
    get active() {
      return usePrimary ? primary : fallback;
    },
    async upload(bytes, dtype, rows, cols) {
      return call(async (b, onPrimary) =>
        wrap(await b.upload(bytes, dtype, rows, cols), onPrimary, { origin: { kind: 'upload', bytes, dtype, rows, cols }, ops: [] }),
      );
    },
    async clone(m) {
      const fm = asFb(m, 'clone');
      return call(async (b, onPrimary) =>
        wrap(await b.clone(fm.inner), onPrimary, { origin: { kind: 'clone', of: fm.recipe, upTo: fm.recipe.ops.length }, ops: [] }),
      );
    },
    scaleColumns: (m, gamma) => mutate(m, 'scaleColumns', { op: 'scaleColumns', gamma: gamma.slice() }),
    rotateRows: (m, spec) => mutate(m, 'rotateRows', { op: 'rotateRows', spec }),
    rotateColumns: (m, spec) => mutate(m, 'rotateColumns', { op: 'rotateColumns', spec }),
    async rowAbsMax(m) {
      const fm = asFb(m, 'rowAbsMax');
      return call((b) => b.rowAbsMax(fm.inner));
    },
    async mseRowErrors(m, rowBase, rowInvBase, alphas, invAlphas, qmin, qmax) {
      const fm = asFb(m, 'mseRowErrors');
      return call((b) => b.mseRowErrors(fm.inner, rowBase, rowInvBase, alphas, invAlphas, qmin, qmax));
    },
    async quantize(m, rowStep, rowInv, qmin, qmax, roundToF16) {
      const fm = asFb(m, 'quantize');
      const origin: Origin = {
        kind: 'quantize', of: fm.recipe, upTo: fm.recipe.ops.length,
        rowStep: rowStep.slice(), rowInv: rowInv.slice(), qmin, qmax, roundToF16,
      };
      return call(async (b, onPrimary) => {
        const r = await b.quantize(fm.inner, rowStep, rowInv, qmin, qmax, roundToF16);
        return { mat: wrap(r.mat, onPrimary, { origin, ops: [] }), codeCounts: r.codeCounts };
      });
    },
    async quantizeToCodebook(m, rowStep, rowInv, codebook, roundToF16) {
      const fm = asFb(m, 'quantizeToCodebook');
      const origin: Origin = {
        kind: 'quantizeToCodebook', of: fm.recipe, upTo: fm.recipe.ops.length,
        rowStep: rowStep.slice(), rowInv: rowInv.slice(), codebook: codebook.slice(), roundToF16,
      };
      return call(async (b, onPrimary) => {
        const r = await b.quantizeToCodebook(fm.inner, rowStep, rowInv, codebook, roundToF16);
        return { mat: wrap(r.mat, onPrimary, { origin, ops: [] }), codeCounts: r.codeCounts };
      });
    },
    async histogram(m, range, bins) {
      const fm = asFb(m, 'histogram');
      return call((b) => b.histogram(fm.inner, range, bins));
    },
    async rowSquaredErrors(a, b2) {
      const fa = asFb(a, 'rowSquaredErrors');
      const fb = asFb(b2, 'rowSquaredErrors');
      return call((b) => b.rowSquaredErrors(fa.inner, fb.inner));
    },
    async read(m, dtype) {
      const fm = asFb(m, 'read');
      return call((b) => b.read(fm.inner, dtype));
    },
    release(m) {
      const fm = asFb(m, 'release');
      fm.released = true;
      live.delete(fm);
      try {
        (fm.onPrimary ? primary : fallback).release(fm.inner);
      } catch (e) {
        if (!fm.onPrimary) throw e;
      }
    },
    async dispose() {
      if (usePrimary) await primary.dispose();
      await fallback.dispose();
    },
  };
  return backend;
}
