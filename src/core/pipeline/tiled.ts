import type { Backend, Mat, RotationSpec, Spool, SpoolFactory } from '../ports';
import { throwIfAborted } from '../errors';
import { uniformCodebook } from '../quant/codebook';
import { errorStatsFromRows } from '../quant/metrics';
import { gridFor, ScaleChooser, type MseStage, type TensorScales } from '../quant/scales';
import { isDerivedHead, type PlanItem } from '../qwen2/plan';
import { DTYPE_BYTES, type Dtype } from '../safetensors/types';
import { itemBias, itemTransform } from './process-item';
import { matrixOutputs } from './outputs';
import { baselineSampleRows } from './quantize';
import { HISTOGRAM_BINS, type TensorReport } from './report';
import type { RunContext } from './run-context';
import { matrixReportFrom, addQuantizedFiguresFrom } from './tensor-report';
import { isIdentity, type MatrixTransform } from './transform';

/**
 * Tensors above this many bytes of f32 go through every stage in tiles (SPEC §3's math, tile
 * by tile): peak memory then depends on the tile, not on the vocabulary or the model.
 */
export const DEFAULT_TILE_BYTES = 32 * 2 ** 20;

/**
 * Whether a matrix item is processed in tiles. Norms are small; a learned codebook is fitted to
 * all of a tensor's values at once and GPTQ needs the whole matrix with its Hessian, so those
 * stay whole.
 */
export function isTiledItem(item: PlanItem, tileBytes: number): boolean {
  if (item.kind === 'norm') return false;
  if (item.rows * item.cols * 4 <= tileBytes) return false;
  if (item.quant && (item.quant.method !== 'rtn' || item.quant.codebook === 'learned')) return false;
  return true;
}

/** A spool in memory (the browser's, and the fallback where no other is given). */
export const memorySpool: SpoolFactory = async (size) => {
  let buf: Uint8Array | null = new Uint8Array(size);
  const check = (offset: number, length: number): Uint8Array => {
    if (!buf) throw new Error('memory spool: used after dispose');
    if (offset < 0 || length < 0 || offset + length > buf.length) throw new RangeError(`memory spool: [${offset}, ${offset + length}) outside ${buf.length} bytes`);
    return buf;
  };
  return {
    write: async (offset, bytes) => { check(offset, bytes.length).set(bytes, offset); },
    read: async (offset, length) => check(offset, length).slice(offset, offset + length),
    dispose: async () => { buf = null; },
  };
};

interface RowTile {
  r0: number;
  r1: number;
}

/** Rows per tile: as many whole rows as fit, a multiple of `align` (the column rotation's segment) when given. */
function tileRows(rows: number, cols: number, tileBytes: number, align: number): number {
  const fit = Math.max(1, Math.floor(tileBytes / (cols * 4)));
  return Math.min(rows, align > 1 ? Math.floor(fit / align) * align : fit);
}

/**
 * One matrix read tile by tile, as often as the passes need it: the original rows from the
 * source (or from a spool of the source bytes) and the transformed rows (fused and rotated
 * again, or from a spool of the transformed f32). A column rotation whose segment needs more
 * rows than a tile holds (o_proj, down_proj with a full rotation) is done once up front in
 * column slabs on a spool of the row-transformed f32; rows are then gathered from the slabs.
 */
class TiledMatrix {
  readonly tiles: RowTile[] = [];
  private readonly transformed: boolean;
  private readonly rowBytes: number;
  private readonly dtype: Dtype;
  private raw: Spool | null = null;
  private spooled: Spool | null = null;
  /** Column slabs [c0, c1) of the spooled transformed matrix (slab mode), or null (row-major spool). */
  private slabs: { c0: number; c1: number }[] | null = null;
  private readonly counted = new Set<number>();
  /** Row-major spool: the tiles whose transformed rows are written there. */
  private readonly spooledTiles = new Set<number>();
  private readonly colSpecs = new Map<number, RotationSpec>();

  private constructor(
    private readonly ctx: RunContext,
    private readonly item: PlanItem,
    private readonly transform: MatrixTransform,
    tileBytes: number,
  ) {
    this.transformed = !isIdentity(transform);
    const info = ctx.prep.model.tensors.get(item.source)!.info;
    this.dtype = info.dtype;
    this.rowBytes = item.cols * DTYPE_BYTES[info.dtype];
    const seg = transform.colRot?.segment ?? 1;
    const slabMode = transform.colRot !== null && tileRows(item.rows, item.cols, tileBytes, 1) < seg;
    const n = tileRows(item.rows, item.cols, tileBytes, slabMode ? 1 : seg);
    for (let r0 = 0; r0 < item.rows; r0 += n) this.tiles.push({ r0, r1: Math.min(item.rows, r0 + n) });
    if (slabMode) {
      const width = Math.max(1, Math.floor(tileBytes / (item.rows * 4)));
      this.slabs = [];
      for (let c0 = 0; c0 < item.cols; c0 += width) this.slabs.push({ c0, c1: Math.min(item.cols, c0 + width) });
    }
  }

  static async open(ctx: RunContext, item: PlanItem, transform: MatrixTransform, tileBytes: number): Promise<TiledMatrix> {
    const t = new TiledMatrix(ctx, item, transform, tileBytes);
    try {
      const factory = ctx.spool;
      const f32Bytes = item.rows * item.cols * 4;
      if (factory) t.raw = await factory(item.rows * t.rowBytes);
      if (t.slabs) {
        t.spooled = await (factory ?? memorySpool)(f32Bytes);
        await t.buildSlabs();
      } else if (factory && t.transformed) {
        t.spooled = await factory(f32Bytes);
      }
      return t;
    } catch (e) {
      await t.dispose();
      throw e;
    }
  }

  private get backend(): Backend {
    return this.ctx.backend;
  }

  /** The source bytes of a tile: read from the source once (counted), then from the raw spool if there is one. */
  private async sourceBytes(i: number): Promise<Uint8Array> {
    const { r0, r1 } = this.tiles[i];
    const first = !this.counted.has(i);
    if (!first && this.raw) return this.raw.read(r0 * this.rowBytes, (r1 - r0) * this.rowBytes);
    const bytes = await this.ctx.reader.readRows(this.item.source, r0, r1 - r0, first && !isDerivedHead(this.item));
    this.counted.add(i);
    if (first && this.raw) await this.raw.write(r0 * this.rowBytes, bytes);
    return bytes;
  }

  private async original(i: number): Promise<Mat> {
    const { r0, r1 } = this.tiles[i];
    return this.backend.upload(await this.sourceBytes(i), this.dtype, r1 - r0, this.item.cols);
  }

  /** γ and the row rotation, in place (row-local). */
  private async rowTransform(m: Mat): Promise<void> {
    const { gamma, rowRot } = this.transform;
    if (gamma) await this.backend.scaleColumns(m, gamma);
    if (rowRot) await this.backend.rotateRows(m, rowRot);
  }

  /** The column rotation restricted to tile i's rows (the tile holds whole segments). */
  private colSpec(i: number): RotationSpec {
    let s = this.colSpecs.get(i);
    if (!s) {
      const spec = this.transform.colRot!;
      const { r0, r1 } = this.tiles[i];
      s = r0 === 0 && r1 === spec.length ? spec : { ...spec, length: r1 - r0, signs: spec.signs.subarray(r0, r1) };
      this.colSpecs.set(i, s);
    }
    return s;
  }

  /** Slab mode: row-transform every tile into the slab-major spool, then rotate each column slab there. */
  private async buildSlabs(): Promise<void> {
    const { item, backend } = this;
    const spool = this.spooled!;
    const slabs = this.slabs!;
    for (let i = 0; i < this.tiles.length; i++) {
      throwIfAborted(this.ctx.signal);
      const { r0, r1 } = this.tiles[i];
      const n = r1 - r0;
      const m = await this.original(i);
      let host: Float32Array;
      try {
        await this.rowTransform(m);
        const b = await backend.read(m, 'F32');
        host = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
      } finally {
        backend.release(m);
      }
      for (const { c0, c1 } of slabs) {
        const w = c1 - c0;
        const part = new Float32Array(n * w);
        for (let r = 0; r < n; r++) part.set(host.subarray(r * item.cols + c0, r * item.cols + c1), r * w);
        await spool.write((item.rows * c0 + r0 * w) * 4, new Uint8Array(part.buffer));
      }
    }
    for (const { c0, c1 } of slabs) {
      throwIfAborted(this.ctx.signal);
      const w = c1 - c0;
      const m = await backend.upload(await spool.read(item.rows * c0 * 4, item.rows * w * 4), 'F32', item.rows, w);
      try {
        await backend.rotateColumns(m, this.transform.colRot!);
        await spool.write(item.rows * c0 * 4, await backend.read(m, 'F32'));
      } finally {
        backend.release(m);
      }
    }
  }

  /** Tile i's transformed rows from the spool. */
  private async fromSpool(i: number): Promise<Mat> {
    const { r0, r1 } = this.tiles[i];
    const n = r1 - r0;
    const cols = this.item.cols;
    const spool = this.spooled!;
    if (!this.slabs) return this.backend.upload(await spool.read(r0 * cols * 4, n * cols * 4), 'F32', n, cols);
    const out = new Float32Array(n * cols);
    for (const { c0, c1 } of this.slabs) {
      const w = c1 - c0;
      const b = await spool.read((this.item.rows * c0 + r0 * w) * 4, n * w * 4);
      const part = new Float32Array(b.buffer, b.byteOffset, n * w);
      for (let r = 0; r < n; r++) out.set(part.subarray(r * w, (r + 1) * w), r * cols + c0);
    }
    return this.backend.upload(new Uint8Array(out.buffer), 'F32', n, cols);
  }

  /** Whether tile i's transformed rows are in the spool already. */
  private inSpool(i: number): boolean {
    return this.spooled !== null && (this.slabs !== null || this.spooledTiles.has(i));
  }

  /**
   * One pass over the tiles in row order: `fn` gets the original rows (when `w0` is asked for)
   * and the transformed ones (when `w` is; the same Mat as the original for an untransformed
   * item), released after it returns.
   */
  async pass(need: { w0: boolean; w: boolean }, fn: (t: RowTile, w0: Mat | null, w: Mat | null) => Promise<void>): Promise<void> {
    const { backend } = this;
    for (let i = 0; i < this.tiles.length; i++) {
      throwIfAborted(this.ctx.signal);
      let w0: Mat | null = null;
      let w: Mat | null = null;
      try {
        const wFromSpool = need.w && this.transformed && this.inSpool(i);
        if (need.w0 || (need.w && !wFromSpool)) w0 = await this.original(i);
        if (need.w) {
          if (!this.transformed) w = w0;
          else if (wFromSpool) w = await this.fromSpool(i);
          else {
            w = await backend.clone(w0!);
            await this.rowTransform(w);
            if (this.transform.colRot) await backend.rotateColumns(w, this.colSpec(i));
            if (this.spooled) {
              await this.spooled.write(this.tiles[i].r0 * this.item.cols * 4, await backend.read(w, 'F32'));
              this.spooledTiles.add(i);
            }
          }
        }
        if (w0 && !need.w0 && w !== w0) {
          backend.release(w0);
          w0 = null;
        }
        await fn(this.tiles[i], w0, w);
      } finally {
        if (w0) backend.release(w0);
        if (w && w !== w0) backend.release(w);
      }
    }
  }

  async dispose(): Promise<void> {
    await this.raw?.dispose();
    await this.spooled?.dispose();
    this.raw = this.spooled = null;
  }
}

const maxOf = (a: Float32Array): number => a.reduce((m, v) => (v > m ? v : m), 0);
const addInto = (acc: Uint32Array, part: Uint32Array): void => {
  for (let i = 0; i < acc.length; i++) acc[i] += part[i];
};

/**
 * A matrix item through every stage in row tiles, writing the weight in pieces; the same bytes
 * and report as the whole-matrix path (processMatrixItem). Passes: (1) per-row absmax of the
 * original and the transformed rows; (2) the histograms over the shared range and the first MSE
 * stage (of the transformed rows and, for the baseline, of the originals); (3) the second MSE
 * stage; (4) quantize, errors, histogram of the written values, encode and write. With absmax
 * clipping, or unquantized, (2) and (4) are one pass. Returns the weight's bytes only when asked
 * (the calibration stream starts from the embedding as stored).
 */
export async function processTiledItem(ctx: RunContext, index: number, keepWeight: boolean): Promise<{ report: TensorReport; weightBytes: Uint8Array | null }> {
  const { backend } = ctx;
  const items = ctx.prep.plan.items;
  const item = items[index];
  const outDtype = ctx.prep.plan.outputDtype;
  if (isDerivedHead(item) && ctx.embeddingCopy) {
    backend.release(ctx.embeddingCopy); // this head re-reads the embedding's rows instead
    ctx.embeddingCopy = null;
  }
  ctx.reader.readAhead(items[index + 1]);
  const transform = itemTransform(ctx, item);
  const transformed = !isIdentity(transform);
  const rows = item.rows;
  if (transformed) ctx.emit('transform');
  const m = await TiledMatrix.open(ctx, item, transform, ctx.tileBytes);
  try {
    const rowMax0 = new Float32Array(rows);
    const rowMax = transformed ? new Float32Array(rows) : rowMax0;
    await m.pass({ w0: true, w: transformed }, async (t, w0, w) => {
      rowMax0.set(await backend.rowAbsMax(w0!), t.r0);
      if (transformed) rowMax.set(await backend.rowAbsMax(w!), t.r0);
    });
    const absmaxBefore = maxOf(rowMax0);
    const absmaxAfter = maxOf(rowMax);
    const range = Math.max(absmaxBefore, absmaxAfter) || 1;
    const before = new Uint32Array(HISTOGRAM_BINS);
    const after = transformed ? new Uint32Array(HISTOGRAM_BINS) : before;
    const histograms = async (w0: Mat, w: Mat): Promise<void> => {
      addInto(before, await backend.histogram(w0, range, HISTOGRAM_BINS));
      if (transformed) addInto(after, await backend.histogram(w, range, HISTOGRAM_BINS));
    };

    const q = item.quant;
    if (q) ctx.emit('quantize');
    const chooser = q ? new ScaleChooser(rowMax, q.bits, q.scheme, q.clip) : null;
    // The honest baseline: plain RTN of the original rows, same scheme and clip (quantize.ts
    // baselineError) — on the same sampled rows as there for large matrices, where the backend can take rows.
    const pick = q && transformed && backend.takeRows ? baselineSampleRows(rows, item.cols, rowMax0) : null;
    const baseRows = pick ? pick.length : rows;
    const baseChooser = q && transformed ? new ScaleChooser(pick ? Float32Array.from(pick, (r) => rowMax0[r]) : rowMax0, q.bits, q.scheme, q.clip) : null;
    /** The baseline's rows [lo, hi) inside tile t, and the original w0 rows or a copy of the sampled ones. */
    const baseTile = async (t: RowTile, w0: Mat): Promise<{ lo: number; hi: number; mat: Mat; copy: boolean }> => {
      if (!pick) return { lo: t.r0, hi: t.r1, mat: w0, copy: false };
      let lo = 0;
      while (lo < pick.length && pick[lo] < t.r0) lo++;
      let hi = lo;
      while (hi < pick.length && pick[hi] < t.r1) hi++;
      if (hi === lo) return { lo, hi, mat: w0, copy: false };
      return { lo, hi, mat: await backend.takeRows!(w0, pick.subarray(lo, hi).map((r) => r - t.r0)), copy: true };
    };
    let histDone = false;
    const mse = async (mat: Mat, st: MseStage, t: RowTile): Promise<Float32Array> =>
      backend.mseRowErrors(mat, st.rowBase.subarray(t.r0, t.r1), st.rowInvBase.subarray(t.r0, t.r1), st.alphas, st.invAlphas, st.qmin, st.qmax);
    for (;;) {
      const st = chooser?.next() ?? null;
      const bst = baseChooser?.next() ?? null;
      if (!st && !bst) break;
      const sse = st ? new Float32Array(rows * st.alphas.length) : null;
      const bsse = bst ? new Float32Array(baseRows * bst.alphas.length) : null;
      const hist = !histDone;
      await m.pass({ w0: hist || bst !== null, w: true }, async (t, w0, w) => {
        if (hist) await histograms(w0!, w!);
        if (st) sse!.set(await mse(w!, st, t), t.r0 * st.alphas.length);
        if (bst) {
          const b = await baseTile(t, w0!);
          try {
            if (b.hi > b.lo) bsse!.set(await mse(b.mat, bst, { r0: b.lo, r1: b.hi }), b.lo * bst.alphas.length);
          } finally {
            if (b.copy) backend.release(b.mat);
          }
        }
      });
      histDone = true;
      if (st) chooser!.submit(sse!);
      if (bst) baseChooser!.submit(bsse!);
    }

    const scales: TensorScales | null = chooser?.result() ?? null;
    const baseScales: TensorScales | null = baseChooser?.result() ?? null;
    const grid = q ? gridFor(q.bits) : null;
    const f16 = outDtype === 'F16';
    const diff = new Float32Array(rows);
    const ref = new Float32Array(rows);
    const bdiff = new Float32Array(baseRows);
    const bref = new Float32Array(baseRows);
    const codeCounts = grid ? new Uint32Array(grid.qmax - grid.qmin + 1) : null;
    const quantHist = new Uint32Array(HISTOGRAM_BINS);
    const stream = ctx.outputs.stream(item.name);
    const kept: Uint8Array[] = [];
    const hist = !histDone;
    ctx.emit('write');
    await m.pass({ w0: hist || baseScales !== null, w: true }, async (t, w0, w) => {
      if (hist) await histograms(w0!, w!);
      const sub = (a: Float32Array): Float32Array => a.subarray(t.r0, t.r1);
      let bytes: Uint8Array;
      if (scales && grid) {
        const qq = await backend.quantize(w!, sub(scales.rowStep), sub(scales.rowInv), grid.qmin, grid.qmax, f16);
        try {
          addInto(codeCounts!, qq.codeCounts);
          const e = await backend.rowSquaredErrors(w!, qq.mat);
          diff.set(e.diff, t.r0);
          ref.set(e.ref, t.r0);
          addInto(quantHist, await backend.histogram(qq.mat, range, HISTOGRAM_BINS));
          bytes = await backend.read(qq.mat, outDtype);
        } finally {
          backend.release(qq.mat);
        }
        if (baseScales) {
          const b = await baseTile(t, w0!);
          try {
            if (b.hi > b.lo) {
              const qb = await backend.quantize(b.mat, baseScales.rowStep.subarray(b.lo, b.hi), baseScales.rowInv.subarray(b.lo, b.hi), grid.qmin, grid.qmax, f16);
              try {
                const e = await backend.rowSquaredErrors(b.mat, qb.mat);
                bdiff.set(e.diff, b.lo);
                bref.set(e.ref, b.lo);
              } finally {
                backend.release(qb.mat);
              }
            }
          } finally {
            if (b.copy) backend.release(b.mat);
          }
        }
      } else {
        bytes = await backend.read(w!, outDtype);
      }
      if (keepWeight) kept.push(bytes);
      await stream.write(bytes);
    });
    await stream.end();

    // The report, key for key as the whole-matrix path builds it.
    const report = matrixReportFrom(item, transformed, absmaxBefore, absmaxAfter, { range, before, after });
    let codebook: Float32Array | undefined;
    if (q && scales && grid) {
      if (transformed) {
        const e = errorStatsFromRows(bdiff, bref);
        report.baselineError = pick ? { ...e, sampled: { rows: pick.length, of: rows } } : e;
      }
      report.error = errorStatsFromRows(diff, ref);
      if (!transformed) report.baselineError = report.error;
      codebook = uniformCodebook(q.bits);
      addQuantizedFiguresFrom(report, quantHist, { codeCounts: codeCounts!, scales, qmin: grid.qmin, qmax: grid.qmax, codebook });
    }
    const bias = await itemBias(ctx, item);
    const rest = matrixOutputs(item, { weightBytes: new Uint8Array(0), report, scales: scales ?? undefined, codebook }, bias, ctx.outputs.encode).slice(1);
    await ctx.outputs.queue(rest);
    ctx.report(report);
    let weightBytes: Uint8Array | null = null;
    if (keepWeight) {
      weightBytes = new Uint8Array(kept.reduce((s, b) => s + b.length, 0));
      let o = 0;
      for (const b of kept) { weightBytes.set(b, o); o += b.length; }
    }
    return { report, weightBytes };
  } finally {
    await m.dispose();
  }
}
