/**
 * Mixed precision: ranking by sensitivity, the 8-bit set under a parameter budget, `--w8-budget`
 * and `--bits-override` parsing, and the ChooseQuant hooks on a real plan.
 */
import { describe, expect, it } from 'vitest';
import { InputError } from '../errors';
import { buildPlan, type QuantChoice } from '../qwen2/plan';
import { parseSettings } from '../settings';
import type { Qwen2Config } from '../qwen2/config';
import { qwen2Tensors } from '../qwen2/tensors';
import type { TensorInfo } from '../safetensors/types';
import {
  bitsOverrideChooser,
  checkOverridesMatch,
  chooseW8Set,
  overrideBitsFor,
  parseBitsOverride,
  parseW8Budget,
  rankBySensitivity,
  sensitivityFromOutputError,
  w8SetChooser,
  type ProjectionSensitivity,
} from './mixed-precision';

const P = (name: string, params: number, sensitivity: number): ProjectionSensitivity => ({ name, params, sensitivity });

describe('ranking and the W8 budget', () => {
  it('ranks most sensitive first, ties by name whatever the input order', () => {
    const items = [P('b', 10, 0.5), P('a', 10, 0.5), P('c', 5, 0.9), P('d', 1, 0)];
    const want = ['c', 'a', 'b', 'd'];
    expect(rankBySensitivity(items).map((i) => i.name)).toEqual(want);
    expect(rankBySensitivity([...items].reverse()).map((i) => i.name)).toEqual(want);
    expect(sensitivityFromOutputError({ errorEnergy: 2, referenceEnergy: 8 })).toBe(0.25);
    expect(sensitivityFromOutputError({ errorEnergy: 2, referenceEnergy: 0 })).toBe(0);
    expect(() => rankBySensitivity([P('a', 1, 1), P('a', 1, 2)])).toThrow(/listed twice/);
    expect(() => rankBySensitivity([P('a', 1, NaN)])).toThrow(/sensitivity NaN/);
    expect(() => rankBySensitivity([P('a', 0, 1)])).toThrow(/0 parameters/);
  });

  it('keeps the 8-bit parameters within the budget, greedy in rank order, skipping what does not fit', () => {
    const items = [P('big', 60, 0.9), P('mid', 30, 0.5), P('small', 10, 0.4), P('tiny', 5, 0.1)];
    // 105 parameters; 40 % = 42: big (60) does not fit, mid (30) does, small (10) does, tiny would make 45.
    const s = chooseW8Set(items, 0.4);
    expect(s.names).toEqual(['mid', 'small']);
    expect(s.params8).toBe(40);
    expect(s.totalParams).toBe(105);
    expect(s.fraction).toBeLessThanOrEqual(0.4);
    expect(chooseW8Set(items, 0).names).toEqual([]);
    expect(chooseW8Set(items, 1).names).toEqual(['big', 'mid', 'small', 'tiny']);
    // The budget can be a fraction of more parameters than the candidates (e.g. overridden ones).
    expect(chooseW8Set(items, 0.095, { totalParams: 1000 }).names).toEqual(['big', 'mid', 'tiny']); // 95: small (→ 100) is skipped, tiny fits
    expect(() => chooseW8Set(items, 1.5)).toThrow(/budget 1.5/);
    expect(() => chooseW8Set(items, 0.1, { totalParams: 50 })).toThrow(/below the candidates/);
  });

  it('every budget on random sensitivities is respected and the choice is order-independent', () => {
    let a = 7;
    const rnd = () => ((a = (Math.imul(a, 1103515245) + 12345) >>> 0) / 4294967296);
    const items = Array.from({ length: 40 }, (_, i) => P(`model.layers.${i >> 3}.p${i & 7}`, 1 + Math.floor(rnd() * 100), Math.floor(rnd() * 8) / 8));
    const total = items.reduce((s, i) => s + i.params, 0);
    for (const f of [0, 0.05, 0.1, 0.25, 0.5, 1]) {
      const s = chooseW8Set(items, f);
      expect(s.params8).toBeLessThanOrEqual(f * total);
      expect(s.params8).toBe(s.names.reduce((t, n) => t + items.find((i) => i.name === n)!.params, 0));
      expect(chooseW8Set([...items].reverse(), f).names).toEqual(s.names);
      // Nothing left out would still fit.
      const left = items.filter((i) => !s.names.includes(i.name));
      expect(left.every((i) => s.params8 + i.params > f * total)).toBe(true);
    }
  });

  it('parses --w8-budget as a fraction or a percentage, and says what it expects', () => {
    expect(parseW8Budget('0.1')).toBe(0.1);
    expect(parseW8Budget(0.05)).toBe(0.05);
    expect(parseW8Budget('10%')).toBe(0.1);
    expect(parseW8Budget('0')).toBe(0);
    for (const bad of ['', '%', 'ten', '1.5', '-0.1', '150%', null, true]) {
      expect(() => parseW8Budget(bad)).toThrow(InputError);
    }
    expect(() => parseW8Budget('1.5')).toThrow(/w8-budget: got "1.5"; expected a fraction .* from 0 to 1/);
  });
});

describe('--bits-override', () => {
  const q = (l: number, p: string) => `model.layers.${l}.${['gate_proj', 'up_proj', 'down_proj'].includes(p) ? 'mlp' : 'self_attn'}.${p}.weight`;

  it('matches full names, short names and dotted tails with globs; the last match wins', () => {
    const rules = parseBitsOverride(' down_proj=8 , layers.0.*=8,layers.0.self_attn.q_proj=4,embed_tokens=16');
    expect(rules.map((r) => [r.pattern, r.bits])).toEqual([['down_proj', 8], ['layers.0.*', 8], ['layers.0.self_attn.q_proj', 4], ['embed_tokens', 16]]);
    expect(overrideBitsFor(rules, q(3, 'down_proj'))).toBe(8);
    expect(overrideBitsFor(rules, q(0, 'k_proj'))).toBe(8);
    expect(overrideBitsFor(rules, q(0, 'q_proj'))).toBe(4);
    expect(overrideBitsFor(rules, q(1, 'q_proj'))).toBeUndefined();
    expect(overrideBitsFor(rules, 'model.embed_tokens.weight')).toBe(16);
    // "layers.1*" is a glob: layers 1 and 10–19, not 2.
    const glob = parseBitsOverride('layers.1*=8,mlp.*_proj=8,model.layers.2.self_attn.v_proj.weight=8,?_proj=8');
    expect(overrideBitsFor(glob, q(12, 'o_proj'))).toBe(8);
    expect(overrideBitsFor(glob, q(2, 'up_proj'))).toBe(8);
    expect(overrideBitsFor(glob, q(2, 'v_proj'))).toBe(8);
    expect(overrideBitsFor(glob, q(3, 'k_proj'))).toBe(8);
    expect(overrideBitsFor(glob, q(2, 'down_proj'))).toBe(8);
    expect(overrideBitsFor(parseBitsOverride('layers.1*=8'), q(2, 'o_proj'))).toBeUndefined();
    // A dot in a pattern is literal.
    expect(overrideBitsFor(parseBitsOverride('layers.1=8'), 'model.layersx1.mlp.up_proj.weight')).toBeUndefined();
  });

  it('refuses bad specs with what was wrong and an example', () => {
    const cases: [string, RegExp][] = [
      ['', /is empty; expected pattern=bits/],
      ['down_proj', /entry 1 \("down_proj"\) has no "=bits"/],
      ['down_proj=8,,up_proj=8', /entry 2 \(""\) is empty/],
      ['down_proj=8,', /entry 2 \(""\) is empty/],
      ['=8', /no pattern before "="/],
      ['down_proj=6', /bits "6" must be 4, 8 or 16/],
      ['down_proj=', /bits "" must be 4, 8 or 16/],
      ['layers[0]=8', /may only hold letters/],
      ['down proj=8', /may only hold letters/],
    ];
    for (const [spec, msg] of cases) {
      expect(() => parseBitsOverride(spec), spec).toThrow(InputError);
      expect(() => parseBitsOverride(spec), spec).toThrow(msg);
    }
    const rules = parseBitsOverride('down_proj=8,dwn_proj=8,layers.9.*=8');
    const names = [q(0, 'down_proj'), q(1, 'down_proj'), q(0, 'q_proj')];
    expect(() => checkOverridesMatch(rules, names)).toThrow(/"dwn_proj", "layers.9.\*" match no quantized tensor .*model\.layers\.0\.mlp\.down_proj\.weight/);
    expect(() => checkOverridesMatch(parseBitsOverride('down_proj=8'), names)).not.toThrow();
  });

  it('as ChooseQuant hooks in buildPlan: overrides over the budget set, 16 = unquantized, codebook shape follows the bits', () => {
    const cfg: Qwen2Config = {
      hidden: 64, intermediate: 128, layers: 2, heads: 4, kvHeads: 2, headDim: 16, vocab: 96,
      ropeTheta: 10000, rmsNormEps: 1e-6, tieWordEmbeddings: true, raw: {},
    };
    const tensors = new Map<string, { file: string; info: TensorInfo }>();
    let begin = 0;
    for (const t of qwen2Tensors(cfg, { lmHead: false })) {
      const n = t.shape.reduce((a, b) => a * b, 1) * 2;
      tensors.set(t.name, { file: 'model.safetensors', info: { name: t.name, dtype: 'F16', shape: t.shape, begin, end: begin + n } satisfies TensorInfo });
      begin += n;
    }
    const settings = parseSettings({ bits: 4 });
    const budget = w8SetChooser([q(1, 'o_proj'), q(0, 'down_proj')]);
    const choose = bitsOverrideChooser(parseBitsOverride('down_proj=4,layers.0.self_attn.*=8,layers.1.mlp.up_proj=16'), budget);
    const plan = buildPlan(cfg, settings, tensors, { choose });
    const bits = (name: string) => plan.items.find((i) => i.name === name)!.quant?.bits ?? null;
    expect(bits(q(1, 'o_proj'))).toBe(8); // budget
    expect(bits(q(0, 'down_proj'))).toBe(4); // override beats the budget
    expect(bits(q(0, 'k_proj'))).toBe(8); // override
    expect(bits(q(1, 'up_proj'))).toBeNull(); // 16: unquantized
    expect(bits(q(1, 'gate_proj'))).toBe(4); // default
    const ko = plan.items.find((i) => i.name === q(0, 'k_proj'))!;
    expect(ko.outputs.find((o) => o.name.endsWith('.codebook'))!.shape).toEqual([256]);
    const choice: QuantChoice = { bits: 4, scheme: 'sp', clip: 'mse', method: 'rtn', codebook: 'learned' };
    expect(w8SetChooser(['x'])({ name: 'x' } as never, choice)).toEqual({ ...choice, bits: 8 });
  });
});
