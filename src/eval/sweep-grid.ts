/**
 * The settings advisor's grid: which methods, codebooks and W8 budgets to try. A grid is written
 * as dimensions separated by ";" (or spaces), each `key=value,value,…`:
 *
 *   method=rtn,gptq;codebook=uniform,learned;w8=0,5,10
 *
 * Keys: `method` (rtn, gptq), `codebook` (uniform, learned), `w8` (percentages of the quantized
 * projection parameters kept at 8 bits, 0–100, an optional "%" sign). A dimension left out keeps
 * its default (DEFAULT_GRID); `default` alone is the default grid. Points are the cartesian
 * product in method → codebook → w8 order.
 */
import { InputError } from '../core/errors';
import type { CodebookKind, Method } from '../core/settings';

export interface SweepGrid {
  methods: Method[];
  codebooks: CodebookKind[];
  /** W8 budgets as fractions 0…1 (percent / 100). */
  w8Budgets: number[];
}

/** One point of the grid: the settings it changes. */
export interface SweepPoint {
  method: Method;
  codebook: CodebookKind;
  /** Fraction 0…1. */
  w8Budget: number;
}

/** Issue 12's grid: RTN / GPTQ × uniform / learned codebook × W8 budget 0 / 5 / 10 %. */
export const DEFAULT_GRID: Readonly<SweepGrid> = Object.freeze({
  methods: ['rtn', 'gptq'] as Method[],
  codebooks: ['uniform', 'learned'] as CodebookKind[],
  w8Budgets: [0, 0.05, 0.1],
});

/** Most points a grid may have (the product). */
export const MAX_GRID_POINTS = 64;

const METHODS: readonly Method[] = ['rtn', 'gptq'];
const CODEBOOKS: readonly CodebookKind[] = ['uniform', 'learned'];
const KEYS = ['method', 'codebook', 'w8'] as const;
type Key = (typeof KEYS)[number];

function bad(spec: string, why: string): never {
  throw new InputError(`--sweep ${JSON.stringify(spec)}: ${why}; expected e.g. 'method=rtn,gptq;codebook=uniform,learned;w8=0,5,10'`);
}

/** A W8 percentage ("5", "5%", "12.5") → a fraction; the fraction is percent / 100 (5 → 0.05 exactly as --w8-budget 5% gives). */
function parsePercent(spec: string, v: string): number {
  const text = v.endsWith('%') ? v.slice(0, -1) : v;
  const pct = Number(text);
  if (text === '' || !/^[0-9]*\.?[0-9]+$/.test(text) || !Number.isFinite(pct) || pct < 0 || pct > 100) {
    bad(spec, `w8 value ${JSON.stringify(v)} is not a percentage from 0 to 100`);
  }
  return pct / 100;
}

/** Parse a grid spec; undefined, '' or 'default' give DEFAULT_GRID. Bad specs throw InputError naming the part. */
export function parseSweepGrid(spec: string | undefined): SweepGrid {
  const grid: SweepGrid = { methods: [...DEFAULT_GRID.methods], codebooks: [...DEFAULT_GRID.codebooks], w8Budgets: [...DEFAULT_GRID.w8Budgets] };
  const text = (spec ?? '').trim();
  if (text === '' || text === 'default') return grid;
  const seen = new Set<Key>();
  for (const part of text.split(/[;\s]+/).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) bad(text, `${JSON.stringify(part)} is not key=values`);
    const key = part.slice(0, eq).trim().toLowerCase();
    if (!(KEYS as readonly string[]).includes(key)) bad(text, `unknown key ${JSON.stringify(key)} (keys: ${KEYS.join(', ')})`);
    const k = key as Key;
    if (seen.has(k)) bad(text, `${k} is given twice`);
    seen.add(k);
    const values = part.slice(eq + 1).split(',').map((v) => v.trim());
    if (values.some((v) => v === '')) bad(text, `${k} has an empty value`);
    if (k === 'method') {
      for (const v of values) if (!(METHODS as readonly string[]).includes(v)) bad(text, `method ${JSON.stringify(v)} is not one of ${METHODS.join(', ')}`);
      grid.methods = values as Method[];
    } else if (k === 'codebook') {
      for (const v of values) if (!(CODEBOOKS as readonly string[]).includes(v)) bad(text, `codebook ${JSON.stringify(v)} is not one of ${CODEBOOKS.join(', ')}`);
      grid.codebooks = values as CodebookKind[];
    } else {
      grid.w8Budgets = values.map((v) => parsePercent(text, v));
    }
    const list: readonly unknown[] = k === 'method' ? grid.methods : k === 'codebook' ? grid.codebooks : grid.w8Budgets;
    if (new Set(list).size !== list.length) bad(text, `${k} lists a value twice`);
  }
  const n = grid.methods.length * grid.codebooks.length * grid.w8Budgets.length;
  if (n > MAX_GRID_POINTS) bad(text, `${n} points; at most ${MAX_GRID_POINTS}`);
  return grid;
}

/** The grid's points, method → codebook → w8 (the table's row order). */
export function gridPoints(grid: SweepGrid): SweepPoint[] {
  const out: SweepPoint[] = [];
  for (const method of grid.methods) for (const codebook of grid.codebooks) for (const w8Budget of grid.w8Budgets) out.push({ method, codebook, w8Budget });
  return out;
}

/** A W8 fraction as the table writes it ("0", "5", "12.5"). */
export function w8Percent(f: number): string {
  return String(Math.round(f * 1e6) / 1e4);
}

/** The grid in its own syntax (parseSweepGrid(formatSweepGrid(g)) gives g back). */
export function formatSweepGrid(grid: SweepGrid): string {
  return `method=${grid.methods.join(',')};codebook=${grid.codebooks.join(',')};w8=${grid.w8Budgets.map(w8Percent).join(',')}`;
}

/** A point's label, e.g. "gptq / learned / W8 10 %". */
export function pointLabel(p: SweepPoint): string {
  return `${p.method} / ${p.codebook} / W8 ${w8Percent(p.w8Budget)} %`;
}
