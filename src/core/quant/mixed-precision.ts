/**
 * Mixed 4/8-bit precision: which projections keep 8 bits.
 *
 *  - By budget (`--w8-budget F`): projections ranked by calibration sensitivity — the relative
 *    error energy Σ‖Δy‖²/Σ‖y‖² of the *layer output* when that projection alone is quantized at
 *    4 bits (src/core/pipeline/gptq-layer.ts measureLayerSensitivity; a ratio, so a wide
 *    projection does not win by size alone) — and taken greedily in that order while the 8-bit
 *    parameters stay within F of all quantized projection parameters. Deterministic: ties by name.
 *    (The per-tensor tr(ΔHΔᵀ)/tr(WHWᵀ), sensitivityFromOutputError, ranked the outlier test
 *    model's projections worse: it cannot see what attention's softmax does with a q/k error.)
 *  - By explicit overrides (`--bits-override 'down_proj=8,layers.0.*=8'`): glob patterns on tensor
 *    names, last match wins; they sit on top of the budget choice.
 * Both end up as a ChooseQuant hook for buildPlan (src/core/qwen2/plan.ts).
 */
import { InputError } from '../errors';
import type { ChooseQuant, PlanItem, QuantChoice } from '../qwen2/plan';

/** One projection's 4-bit sensitivity on calibration data. */
export interface ProjectionSensitivity {
  /** Output tensor name (the `.weight`). */
  name: string;
  /** Parameters (rows × cols). */
  params: number;
  /** Relative squared error at 4 bits (layer output, or tr(ΔHΔᵀ)/tr(WHWᵀ)); larger = more sensitive. */
  sensitivity: number;
}

/** tr(ΔHΔᵀ) / tr(WHWᵀ) from gptq.ts `outputError` (0 when the reference is 0). */
export function sensitivityFromOutputError(e: { errorEnergy: number; referenceEnergy: number }): number {
  return e.referenceEnergy > 0 ? Math.max(0, e.errorEnergy) / e.referenceEnergy : 0;
}

/** Most sensitive first; equal sensitivities by name, so the order never depends on the input order. */
export function rankBySensitivity(items: readonly ProjectionSensitivity[]): ProjectionSensitivity[] {
  const seen = new Set<string>();
  for (const it of items) {
    if (seen.has(it.name)) throw new RangeError(`rankBySensitivity: ${it.name} is listed twice`);
    seen.add(it.name);
    if (!Number.isInteger(it.params) || it.params < 1) throw new RangeError(`rankBySensitivity: ${it.name} has ${it.params} parameters`);
    if (!(it.sensitivity >= 0) || !Number.isFinite(it.sensitivity)) throw new RangeError(`rankBySensitivity: ${it.name} has sensitivity ${it.sensitivity}; expected a finite number ≥ 0`);
  }
  return [...items].sort((a, b) => b.sensitivity - a.sensitivity || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export interface W8Selection {
  /** The projections kept at 8 bits, most sensitive first. */
  names: string[];
  /** Their parameters. */
  params8: number;
  /** All quantized projection parameters the budget is a fraction of. */
  totalParams: number;
  /** params8 / totalParams (≤ the budget). */
  fraction: number;
}

/**
 * The 8-bit set under a budget: at most `budget` (0…1) of `totalParams` (default: the candidates'
 * parameters) at 8 bits. Greedy in sensitivity order; a projection that does not fit is skipped
 * and smaller, less sensitive ones may still fit after it.
 */
export function chooseW8Set(items: readonly ProjectionSensitivity[], budget: number, opts: { totalParams?: number } = {}): W8Selection {
  if (!(budget >= 0 && budget <= 1)) throw new RangeError(`chooseW8Set: budget ${budget} must be a fraction from 0 to 1`);
  const ranked = rankBySensitivity(items);
  const candidates = ranked.reduce((s, it) => s + it.params, 0);
  const totalParams = opts.totalParams ?? candidates;
  if (!(totalParams >= candidates)) throw new RangeError(`chooseW8Set: totalParams ${totalParams} is below the candidates' ${candidates}`);
  const limit = budget * totalParams;
  const names: string[] = [];
  let params8 = 0;
  for (const it of ranked) {
    if (params8 + it.params <= limit) {
      names.push(it.name);
      params8 += it.params;
    }
  }
  return { names, params8, totalParams, fraction: totalParams > 0 ? params8 / totalParams : 0 };
}

/**
 * `--w8-budget` from untrusted input: a fraction 0…1 ("0.1") or a percentage ("10%").
 */
export function parseW8Budget(raw: unknown): number {
  const text = typeof raw === 'number' ? String(raw) : typeof raw === 'string' ? raw.trim() : '';
  const pct = text.endsWith('%');
  const v = Number(pct ? text.slice(0, -1) : text);
  const f = pct ? v / 100 : v;
  if (text === '' || text === '%' || !Number.isFinite(v) || !(f >= 0 && f <= 1)) {
    throw new InputError(`setting w8-budget: got ${JSON.stringify(raw)}; expected a fraction of the quantized projection parameters from 0 to 1 (e.g. 0.1) or a percentage (e.g. 10%)`);
  }
  return f;
}

/** A ChooseQuant giving 8 bits to the named tensors and leaving every other choice as it is. */
export function w8SetChooser(names: Iterable<string>, then?: ChooseQuant): ChooseQuant {
  const set = new Set(names);
  return (item, defaultChoice) => {
    const base = then ? then(item, defaultChoice) : defaultChoice;
    if (!base || !set.has(item.name)) return base;
    return { ...base, bits: 8 };
  };
}

// ── explicit overrides ───────────────────────────────────────────────────────────────────────

export type OverrideBits = 4 | 8 | 16;

export interface BitsOverrideRule {
  /** The pattern as written. */
  pattern: string;
  /** 4 or 8; 16 keeps the tensor unquantized (plain F16). */
  bits: OverrideBits;
  /** The pattern as a whole-string match (`*` any run of characters, dots included; `?` one). */
  regex: RegExp;
}

const OVERRIDE_EXAMPLE = "e.g. --bits-override 'down_proj=8,layers.0.*=8'";

/**
 * Parse `pattern=bits[,pattern=bits…]`. A pattern is a glob (`*`, `?`) over letters, digits and
 * `_ . -`, matched against a tensor's name: the full name (`model.layers.0.mlp.down_proj.weight`),
 * the short name without `model.` and `.weight` (`layers.0.mlp.down_proj`), or any dot-separated
 * tail of the short name (`mlp.down_proj`, `down_proj`). Bits: 4, 8 or 16 (unquantized).
 */
export function parseBitsOverride(spec: string): BitsOverrideRule[] {
  if (typeof spec !== 'string' || spec.trim() === '') throw new InputError(`--bits-override is empty; expected pattern=bits pairs separated by commas, ${OVERRIDE_EXAMPLE}`);
  const rules: BitsOverrideRule[] = [];
  spec.split(',').forEach((raw, i) => {
    const entry = raw.trim();
    const where = `--bits-override entry ${i + 1} (${JSON.stringify(entry)})`;
    if (entry === '') throw new InputError(`${where} is empty (a doubled or trailing comma?); ${OVERRIDE_EXAMPLE}`);
    const eq = entry.indexOf('=');
    if (eq < 0) throw new InputError(`${where} has no "=bits"; expected pattern=bits, ${OVERRIDE_EXAMPLE}`);
    const pattern = entry.slice(0, eq).trim();
    const bitsText = entry.slice(eq + 1).trim();
    if (pattern === '') throw new InputError(`${where} has no pattern before "="; ${OVERRIDE_EXAMPLE}`);
    if (!/^[A-Za-z0-9_.*?-]+$/.test(pattern)) {
      throw new InputError(`${where}: pattern ${JSON.stringify(pattern)} may only hold letters, digits, "_", ".", "-" and the wildcards "*" and "?"`);
    }
    if (bitsText !== '4' && bitsText !== '8' && bitsText !== '16') {
      throw new InputError(`${where}: bits ${JSON.stringify(bitsText)} must be 4, 8 or 16 (16 = leave unquantized)`);
    }
    const body = pattern.replace(/[.\-]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    rules.push({ pattern, bits: Number(bitsText) as OverrideBits, regex: new RegExp(`^${body}$`) });
  });
  return rules;
}

/** The strings a pattern is matched against (see parseBitsOverride). */
function matchForms(name: string): string[] {
  const short = name.replace(/^model\./, '').replace(/\.weight$/, '');
  const forms = [name, short];
  const parts = short.split('.');
  for (let i = 1; i < parts.length; i++) forms.push(parts.slice(i).join('.'));
  return forms;
}

/** Whether a rule's pattern matches the tensor name. */
export function overrideMatches(rule: BitsOverrideRule, name: string): boolean {
  return matchForms(name).some((f) => rule.regex.test(f));
}

/** The bits the last matching rule gives the tensor, or undefined when none matches. */
export function overrideBitsFor(rules: readonly BitsOverrideRule[], name: string): OverrideBits | undefined {
  let bits: OverrideBits | undefined;
  for (const r of rules) if (overrideMatches(r, name)) bits = r.bits;
  return bits;
}

/**
 * A ChooseQuant applying the overrides on top of `then` (e.g. a budget's w8SetChooser) — explicit
 * overrides win. Only items the plan would quantize reach the hook, so a pattern cannot quantize
 * the LM head or a norm.
 */
export function bitsOverrideChooser(rules: readonly BitsOverrideRule[], then?: ChooseQuant): ChooseQuant {
  return (item: Readonly<PlanItem>, defaultChoice: QuantChoice) => {
    const base = then ? then(item, defaultChoice) : defaultChoice;
    const bits = overrideBitsFor(rules, item.name);
    if (bits === undefined) return base;
    if (bits === 16) return null;
    return { ...(base ?? defaultChoice), bits };
  };
}

/**
 * Throws an InputError naming every rule that matches none of `names` (the plan's quantizable
 * tensors), so a typo does not pass silently.
 */
export function checkOverridesMatch(rules: readonly BitsOverrideRule[], names: readonly string[]): void {
  const unmatched = rules.filter((r) => !names.some((n) => overrideMatches(r, n)));
  if (unmatched.length > 0) {
    const example = names.find((n) => n.includes('layers.0.')) ?? names[0];
    throw new InputError(
      `--bits-override: ${unmatched.map((r) => JSON.stringify(r.pattern)).join(', ')} match${unmatched.length === 1 ? 'es' : ''} no quantized tensor of this model` +
        (example ? ` (names look like ${example}; patterns match the full name, layers.N.module.proj, or a tail such as down_proj)` : ''),
    );
  }
}
