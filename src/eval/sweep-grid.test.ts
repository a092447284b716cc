import { describe, expect, it } from 'vitest';
import { InputError } from '../core/errors';
import { parseW8Budget } from '../core/quant/mixed-precision';
import { DEFAULT_GRID, formatSweepGrid, gridPoints, MAX_GRID_POINTS, parseSweepGrid, pointLabel, w8Percent } from './sweep-grid';

describe('sweep grid', () => {
  it('no spec, "" and "default" give issue 12\'s grid: rtn/gptq × uniform/learned × W8 0/5/10 %, 12 points in method → codebook → w8 order', () => {
    for (const spec of [undefined, '', '  ', 'default']) expect(parseSweepGrid(spec)).toEqual({ methods: ['rtn', 'gptq'], codebooks: ['uniform', 'learned'], w8Budgets: [0, 0.05, 0.1] });
    const pts = gridPoints(parseSweepGrid(undefined));
    expect(pts).toHaveLength(12);
    expect(pts[0]).toEqual({ method: 'rtn', codebook: 'uniform', w8Budget: 0 });
    expect(pts[1]).toEqual({ method: 'rtn', codebook: 'uniform', w8Budget: 0.05 });
    expect(pts[3]).toEqual({ method: 'rtn', codebook: 'learned', w8Budget: 0 });
    expect(pts[11]).toEqual({ method: 'gptq', codebook: 'learned', w8Budget: 0.1 });
    expect(pointLabel(pts[11])).toBe('gptq / learned / W8 10 %');
  });

  it('a dimension left out keeps its default; ";" or spaces separate dimensions; w8 in percent with an optional "%"', () => {
    expect(parseSweepGrid('method=gptq')).toEqual({ methods: ['gptq'], codebooks: ['uniform', 'learned'], w8Budgets: [0, 0.05, 0.1] });
    expect(parseSweepGrid('method=rtn,gptq codebook=uniform  w8=0,10%')).toEqual({ methods: ['rtn', 'gptq'], codebooks: ['uniform'], w8Budgets: [0, 0.1] });
    expect(parseSweepGrid('w8=12.5;codebook=learned').w8Budgets).toEqual([0.125]);
    expect(gridPoints(parseSweepGrid('method=gptq;codebook=learned;w8=0,5'))).toEqual([
      { method: 'gptq', codebook: 'learned', w8Budget: 0 },
      { method: 'gptq', codebook: 'learned', w8Budget: 0.05 },
    ]);
  });

  it('a W8 percentage gives the same fraction as --w8-budget N% (so a point equals the run alone)', () => {
    for (const pct of ['0', '5', '10', '12.5', '33', '100']) {
      expect(parseSweepGrid(`w8=${pct}`).w8Budgets[0]).toBe(parseW8Budget(`${pct}%`));
    }
  });

  it('formatSweepGrid round-trips', () => {
    for (const spec of ['default', 'method=gptq;w8=0,12.5', 'codebook=learned;method=rtn,gptq;w8=100']) {
      const g = parseSweepGrid(spec);
      expect(parseSweepGrid(formatSweepGrid(g))).toEqual(g);
    }
    expect(formatSweepGrid(DEFAULT_GRID)).toBe('method=rtn,gptq;codebook=uniform,learned;w8=0,5,10');
    expect(w8Percent(0.05)).toBe('5');
  });

  it.each([
    ['method=awq', /method "awq" is not one of rtn, gptq/],
    ['codebook=nf4', /codebook "nf4" is not one of uniform, learned/],
    ['w8=-5', /w8 value "-5" is not a percentage from 0 to 100/],
    ['w8=150', /w8 value "150" is not a percentage from 0 to 100/],
    ['w8=ten', /w8 value "ten" is not a percentage/],
    ['w8=0x10', /w8 value "0x10" is not a percentage/],
    ['w8=', /w8 has an empty value/],
    ['method=rtn,,gptq', /method has an empty value/],
    ['method=rtn,rtn', /method lists a value twice/],
    ['w8=5,5%', /w8 lists a value twice/],
    ['method=rtn;method=gptq', /method is given twice/],
    ['bits=4', /unknown key "bits" \(keys: method, codebook, w8\)/],
    ['gptq', /"gptq" is not key=values/],
    ['=rtn', /"=rtn" is not key=values/],
  ])('refuses %j with a specific message', (spec, msg) => {
    let err: unknown;
    try {
      parseSweepGrid(spec);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toMatch(msg);
    expect((err as Error).message).toContain(`--sweep ${JSON.stringify(spec)}`);
  });

  it(`refuses more than ${MAX_GRID_POINTS} points`, () => {
    const w8 = Array.from({ length: 17 }, (_, i) => i).join(',');
    expect(() => parseSweepGrid(`w8=${w8}`)).toThrow(/68 points; at most 64/);
    expect(gridPoints(parseSweepGrid(`w8=${Array.from({ length: 16 }, (_, i) => i).join(',')}`))).toHaveLength(64);
  });
});
