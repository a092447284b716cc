/**
 * Block-size comparison for one tensor: the same source weights quantized after plain RTN (no
 * fusion, no rotation), block rotations of 16…256 and the full rotation, with the run's bits,
 * scheme, clip and seed. Uses the pipeline's own pieces (plan, rotations, scales, backend), so
 * the "full" (or chosen block) row equals what the run reports for that tensor.
 */
import type { Backend, Mat, RotationSpec } from '../core/ports';
import { InputError, throwIfAborted } from '../core/errors';
import { factorHadamardSize } from '../core/hadamard/factor';
import { headRotation, residualRotation } from '../core/hadamard/rotation';
import { prepareRun } from '../core/pipeline/run';
import { buildPlan, type PlanItem } from '../core/qwen2/plan';
import { errorStatsFromRows } from '../core/quant/metrics';
import { chooseScales, gridFor } from '../core/quant/scales';
import { decodeToF32 } from '../core/safetensors/dtype';
import type { ModelSource } from '../core/ports';
import { readTensorBytes } from '../core/safetensors/read-tensor';
import { BLOCK_SIZES, type QuantSettings } from '../core/settings';
import type { BlockComparison, CompareRow } from './protocol';

export async function compareBlockSizes(
  source: ModelSource,
  settings: QuantSettings,
  backend: Backend,
  tensor: string,
  signal?: AbortSignal,
): Promise<BlockComparison> {
  // Headers and config only; rotation 'none' so no Hadamard size is validated here.
  const prep = await prepareRun(source, { ...settings, rotation: 'none' }, signal);
  const { config, model } = prep;
  // The rotated plan says what fusion/rotation this tensor gets (the block size does not matter to that).
  const rotatedPlan = buildPlan(config, { ...settings, rotation: 'block', blockSize: 16, bits: settings.bits === 16 ? 4 : settings.bits }, model.tensors);
  const item = rotatedPlan.items.find((it) => it.name === tensor);
  if (!item) throw new InputError(`no tensor named ${tensor} in this model`, { tensor });
  if (item.kind === 'norm') throw new InputError(`${tensor} is a norm vector; only weight matrices are quantized`, { tensor });
  const bits: 4 | 8 = settings.bits === 8 ? 8 : 4;
  const { qmin, qmax } = gridFor(bits);

  const read = async (name: string): Promise<{ bytes: Uint8Array; dtype: 'F32' | 'F16' | 'BF16' }> => {
    const t = model.tensors.get(name);
    if (!t) throw new InputError(`tensor ${name} is missing`, { tensor: name });
    return { bytes: await readTensorBytes(model.files.get(t.file)!.source, t.info, signal), dtype: t.info.dtype };
  };
  const src = await read(item.source);
  const gammaValues = item.fuseNorm ? await read(item.fuseNorm).then((g) => decodeToF32(g.bytes, g.dtype)) : null;

  const variants: { label: string; rotation: CompareRow['rotation']; blockSize: number | null }[] = [{ label: 'plain RTN', rotation: 'none', blockSize: null }];
  const skipped: string[] = [];
  for (const b of BLOCK_SIZES) {
    if (b > config.hidden || config.hidden % b !== 0) skipped.push(`block ${b}: does not divide hidden size ${config.hidden}`);
    else variants.push({ label: `block ${b}`, rotation: 'block', blockSize: b });
  }
  try {
    factorHadamardSize(config.hidden);
    variants.push({ label: `full (${config.hidden})`, rotation: 'full', blockSize: null });
  } catch (e) {
    skipped.push(`full: ${(e as Error).message}`);
  }

  const rows: CompareRow[] = [];
  const w0 = await backend.upload(src.bytes, src.dtype, item.rows, item.cols);
  try {
    for (const v of variants) {
      throwIfAborted(signal);
      rows.push({ ...v, ...(await quantizeVariant(backend, w0, item, v, gammaValues, config, settings, bits, qmin, qmax)) });
    }
  } finally {
    backend.release(w0);
  }
  return { tensor, bits, rows, skipped };
}

async function quantizeVariant(
  backend: Backend,
  w0: Mat,
  item: PlanItem,
  v: { rotation: CompareRow['rotation']; blockSize: number | null },
  gamma: Float32Array | null,
  config: { hidden: number; headDim: number; heads: number; kvHeads: number },
  settings: QuantSettings,
  bits: 4 | 8,
  qmin: number,
  qmax: number,
): Promise<{ relError: number; sqnrDb: number }> {
  const w = await backend.clone(w0);
  const extra: Mat[] = [w];
  try {
    if (v.rotation !== 'none') {
      const residual = residualRotation(config.hidden, v.rotation === 'full' ? 'full' : 'block', v.blockSize ?? 0, settings.seed);
      const spec = (kind: PlanItem['rotateRows'], length: number): RotationSpec | null => {
        if (!kind) return null;
        if (kind === 'residual') return residual;
        return headRotation(config.headDim, length / config.headDim, settings.seed);
      };
      if (gamma) await backend.scaleColumns(w, gamma);
      const r = spec(item.rotateRows, item.cols);
      if (r) await backend.rotateRows(w, r);
      const c = spec(item.rotateCols, item.rows);
      if (c) await backend.rotateColumns(w, c);
    }
    const rowMax = await backend.rowAbsMax(w);
    const scales = await chooseScales(backend, w, rowMax, bits, settings.scheme, settings.clip);
    const q = await backend.quantize(w, scales.rowStep, scales.rowInv, qmin, qmax, settings.dtype !== 'f32');
    extra.push(q.mat);
    const e = await backend.rowSquaredErrors(w, q.mat);
    return errorStatsFromRows(e.diff, e.ref);
  } finally {
    for (const m of extra) backend.release(m);
  }
}
