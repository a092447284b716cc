/**
 * The precision map (layers × q,k,v,o,gate,up,down, plus embeddings and head, coloured by bits)
 * and the precision settings' checks and costs — pure, for src/ui/PrecisionMap.tsx and
 * src/ui/PrecisionSettings.tsx. Before the run the map is the plan (preflight: the run's bits and
 * the overrides; the W8 budget's picks are "chosen by calibration"); after it, what was written
 * (the tensor reports).
 */
import type { PlannedTensor } from '../core/pipeline/preflight';
import type { TensorReport } from '../core/pipeline/report';
import { parseBitsOverride } from '../core/quant/mixed-precision';
import { PROJECTIONS, type ProjName } from '../core/qwen2/plan';
import type { QuantSettings } from '../core/settings';
import { InputError } from '../core/errors';
import { formatBytes, formatCount } from './derive';

/** Column order of the map. */
export const MAP_PROJECTIONS: readonly ProjName[] = PROJECTIONS;

/** Short column heads: q, k, v, o, gate, up, down. */
export function projLabel(p: ProjName): string {
  return p.replace(/_proj$/, '');
}

/** 4 / 8 quantized, 16 unquantized, 'budget' = 4 or 8, decided by calibration during the run. */
export type CellBits = 4 | 8 | 16 | 'budget';

export interface PrecisionCell {
  name: string;
  /** Column label: "q" … "down", "embed", "head". */
  label: string;
  bits: CellBits;
  /** A learned (fitted) codebook. */
  learned: boolean;
  /** The cell's text: "4", "8", "16", "4/8", with "L" after it for a learned codebook. */
  text: string;
  params: number;
  /** An explicit override decided it. */
  overridden: boolean;
  tooltip: string;
}

export interface PrecisionMapView {
  source: 'planned' | 'result';
  layers: { layer: number; cells: (PrecisionCell | null)[] }[];
  /** Embeddings and the LM head (when written). */
  extras: PrecisionCell[];
  /** Cells per kind, for the legend. */
  counts: Record<'4' | '8' | '16' | 'budget', number>;
  /** Quantized projection parameters at 8 bits / all quantized projection parameters (result only; null before). */
  fraction8: number | null;
  learnedCount: number;
}

interface CellInput {
  name: string;
  kind: 'embedding' | 'lm_head' | 'projection';
  layer: number | null;
  proj: ProjName | null;
  rows: number;
  cols: number;
  bits: CellBits;
  learned: boolean;
  codebookSize: number | null;
  overridden: boolean;
}

function cellText(bits: CellBits, learned: boolean): string {
  return `${bits === 'budget' ? '4/8' : bits}${learned ? 'L' : ''}`;
}

function tooltip(c: CellInput, budgetPct: number): string {
  const bits = c.bits === 'budget'
    ? `4 or 8 bits — chosen by calibration (W8 budget ${budgetPct} %: the most sensitive projections get 8)`
    : c.bits === 16 ? 'unquantized (16-bit)' : `${c.bits} bits`;
  const codebook = c.bits === 16
    ? null
    : c.kind !== 'projection' ? 'integer grid (no codebook tensor)'
      : c.learned ? `learned codebook${c.codebookSize ? ` (${c.codebookSize} entries)` : ''}` : 'integer-grid codebook';
  return [c.name, bits, codebook, `${formatCount(c.rows * c.cols)} params (${c.rows}×${c.cols})`, c.overridden ? 'set by a bits override' : null].filter(Boolean).join(' · ');
}

function build(source: PrecisionMapView['source'], inputs: CellInput[], budgetPct: number): PrecisionMapView {
  const toCell = (c: CellInput): PrecisionCell => ({
    name: c.name,
    label: c.proj ? projLabel(c.proj) : c.kind === 'embedding' ? 'embed' : 'head',
    bits: c.bits,
    learned: c.learned,
    text: cellText(c.bits, c.learned),
    params: c.rows * c.cols,
    overridden: c.overridden,
    tooltip: tooltip(c, budgetPct),
  });
  const byLayer = new Map<number, (PrecisionCell | null)[]>();
  const extras: PrecisionCell[] = [];
  const counts = { '4': 0, '8': 0, '16': 0, budget: 0 };
  let p8 = 0;
  let pq = 0;
  let learnedCount = 0;
  for (const c of inputs) {
    const cell = toCell(c);
    counts[String(c.bits) as keyof typeof counts]++;
    if (c.learned) learnedCount++;
    if (c.kind === 'projection' && c.layer !== null && c.proj) {
      if (c.bits === 4 || c.bits === 8) pq += cell.params;
      if (c.bits === 8) p8 += cell.params;
      const row = byLayer.get(c.layer) ?? MAP_PROJECTIONS.map(() => null);
      row[MAP_PROJECTIONS.indexOf(c.proj)] = cell;
      byLayer.set(c.layer, row);
    } else {
      extras.push(cell);
    }
  }
  const layers = [...byLayer.entries()].sort((a, b) => a[0] - b[0]).map(([layer, cells]) => ({ layer, cells }));
  return { source, layers, extras, counts, fraction8: source === 'result' && pq > 0 ? p8 / pq : null, learnedCount };
}

const pctOf = (s: QuantSettings): number => Number((s.w8Budget * 100).toPrecision(4));

/** The planned map, from the preflight's tensors and the settings (a 4-bit budget leaves its candidates to calibration). */
export function plannedPrecisionMap(tensors: readonly PlannedTensor[], s: QuantSettings): PrecisionMapView {
  const budget = s.bits === 4 && s.w8Budget > 0;
  return build('planned', tensors.map((t) => ({
    name: t.name, kind: t.kind, layer: t.layer, proj: t.proj, rows: t.rows, cols: t.cols,
    bits: budget && t.budgetCandidate ? 'budget' : t.bits,
    learned: t.codebook === 'learned',
    codebookSize: t.codebook === 'learned' && t.bits !== 16 ? 2 ** t.bits : null,
    overridden: t.overridden,
  })), pctOf(s));
}

/**
 * The map of what was written, from the run's tensor reports: each tensor's own bits and whether
 * its codebook was fitted (a report carries the entries when they are not the integer grid).
 * `planned` (the preflight's tensors, when at hand) only marks which cells an override set.
 */
export function resultPrecisionMap(reports: readonly TensorReport[], s: QuantSettings, planned?: readonly PlannedTensor[]): PrecisionMapView {
  const over = new Set((planned ?? []).filter((t) => t.overridden).map((t) => t.name));
  const inputs: CellInput[] = [];
  for (const r of reports) {
    if (r.kind === 'norm') continue;
    const bits: CellBits = r.quantized ? r.bits ?? (s.bits === 16 ? 16 : s.bits) : 16;
    inputs.push({
      name: r.name, kind: r.kind, layer: r.layer, proj: r.proj, rows: r.shape[0], cols: r.shape[1] ?? 1, bits,
      learned: r.codebook !== undefined, codebookSize: r.codebook?.length ?? null, overridden: over.has(r.name),
    });
  }
  return build('result', inputs, pctOf(s));
}

/** The bits-override text's own error (syntax, bits), as the CLI would say it; null when it parses or is empty. */
export function overrideTextError(text: string): string | null {
  if (text.trim() === '') return null;
  try {
    parseBitsOverride(text.trim());
    return null;
  } catch (e) {
    if (e instanceof InputError) return e.message;
    throw e;
  }
}

export interface BudgetCost {
  /** At most this many parameters go to 8 bits. */
  maxParams8: number;
  /** Of the 4-bit projection parameters it is a fraction of. */
  totalParams: number;
  /** Extra bytes on the device once palettized (8-bit indices instead of 4-bit: +½ byte per parameter). */
  palettizedBytes: number;
  /** Extra bytes of the safetensors bundle: each 8-bit codebook has 256 entries instead of 16. */
  bundleBytesMax: number;
  text: string;
}

/**
 * What a W8 budget costs: the bundle stores dequantized weights in the output dtype either way,
 * so it grows only by the larger codebooks; the palettized model on the Neural Engine grows by
 * ½ byte per parameter moved to 8 bits. It also needs calibration data (a sensitivity pass).
 */
export function budgetCost(budget: { totalParams: number; maxParams8: number }, candidates: number, s: QuantSettings): BudgetCost {
  const palettizedBytes = budget.maxParams8 / 2;
  const entryBytes = s.dtype === 'f32' ? 4 : 2;
  const bundleBytesMax = candidates * (256 - 16) * entryBytes;
  return {
    ...budget, palettizedBytes, bundleBytesMax,
    text: `at most ${formatCount(budget.maxParams8)} of ${formatCount(budget.totalParams)} projection parameters at 8 bits: ` +
      `+${formatBytes(palettizedBytes)} once palettized for the device; the bundle itself ` +
      `+${formatBytes(bundleBytesMax)} at most (256- instead of 16-entry codebooks; weights are stored dequantized either way). ` +
      'Needs calibration data: one extra pass (each projection alone at 4-bit RTN) ranks them by the layer-output error on it — not in the time estimate.',
  };
}
