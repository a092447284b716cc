import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS, describeVsPlainRtn, isPlainRtn, parseSettings, parseSettingsByKey, plainRtnSettings, validBlockSizes, type QuantSettings } from './settings';

describe('parseSettings', () => {
  it('fills defaults and keeps the defaults object frozen', () => {
    expect(parseSettings({})).toEqual(DEFAULT_SETTINGS);
    expect(Object.isFrozen(DEFAULT_SETTINGS)).toBe(true);
    expect(parseSettings({})).not.toBe(DEFAULT_SETTINGS);
  });

  it('accepts the string forms of CLI flags and URL parameters', () => {
    expect(parseSettings({ bits: '8', scheme: 'per_tensor', clip: 'absmax', rotation: 'block', blockSize: '32', seed: '7', quantizeEmbeddings: '0', dtype: 'f32', method: 'gptq', actOrder: 'false', damp: '0.05', codebook: 'learned', w8Budget: '10%', bitsOverride: ' down_proj=8 ', inputScales: 'fitted' })).toEqual({
      bits: 8, scheme: 'per_tensor', clip: 'absmax', rotation: 'block', blockSize: 32, seed: 7, quantizeEmbeddings: false, dtype: 'f32', method: 'gptq', actOrder: false, damp: 0.05, codebook: 'learned', w8Budget: 0.1, bitsOverride: 'down_proj=8', inputScales: 'fitted',
    });
    expect(DEFAULT_SETTINGS.inputScales).toBe('uniform');
    expect(parseSettings({ quantizeEmbeddings: 'true' }).quantizeEmbeddings).toBe(true);
    expect(parseSettings({ quantizeEmbeddings: false }).quantizeEmbeddings).toBe(false);
    expect(parseSettings({ bits: 16 }).bits).toBe(16);
  });

  it.each([
    [{ bits: '3' }, /setting bits: got "3"; expected 4, 8 or 16/],
    [{ scheme: 'per_channel' }, /setting scheme: got "per_channel"; expected per_tensor or sp/],
    [{ clip: 'max' }, /setting clip/],
    [{ method: 'awq' }, /setting method: got "awq"; expected rtn or gptq/],
    [{ actOrder: 'yes' }, /setting act-order: got "yes"; expected true or false/],
    [{ damp: '2' }, /setting damp: got "2"; expected a number from 0 to 1/],
    [{ damp: '' }, /setting damp/],
    [{ codebook: 'kmeans' }, /setting codebook: got "kmeans"; expected uniform or learned/],
    [{ w8Budget: '1.5' }, /setting w8-budget: got "1.5"/],
    [{ inputScales: 'per_column' }, /setting input-scales: got "per_column"; expected uniform or fitted/],
    [{ bitsOverride: 'down_proj=5' }, /--bits-override entry 1 \("down_proj=5"\): bits "5" must be 4, 8 or 16/],
    [{ rotation: 'half' }, /setting rotation: got "half"; expected full, block or none/],
    [{ blockSize: '48' }, /setting block-size: got "48"; expected a power of two/],
    [{ blockSize: '1' }, /setting block-size/],
    [{ blockSize: 131072 }, /setting block-size/],
    [{ seed: '-1' }, /setting seed: got "-1"; expected an integer from 0 to 4294967295/],
    [{ seed: '1.5' }, /setting seed/],
    [{ quantizeEmbeddings: 'yes' }, /setting quantize-embeddings: got "yes"; expected true or false/],
    [{ dtype: 'bf16' }, /setting dtype/],
  ])('rejects %o', (raw, msg) => {
    expect(() => parseSettings(raw as Record<string, unknown>)).toThrow(msg);
  });
});

describe('validBlockSizes', () => {
  it('lists every power of two from 2 that divides the hidden size', () => {
    expect(validBlockSizes(92)).toEqual([2, 4]);
    expect(validBlockSizes(896)).toEqual([2, 4, 8, 16, 32, 64, 128]); // Qwen2.5-0.5B
    expect(validBlockSizes(1536)).toEqual([2, 4, 8, 16, 32, 64, 128, 256, 512]); // 1.5B
    expect(validBlockSizes(64)).toEqual([2, 4, 8, 16, 32, 64]);
    expect(validBlockSizes(7)).toEqual([]);
    expect(validBlockSizes(16384)).toEqual([2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]);
  });
});

describe('parseSettingsByKey', () => {
  it('keeps every valid value and names each bad one, the default in its place', () => {
    const r = parseSettingsByKey({ bits: '4', codebook: 'learned', w8Budget: '150%', bitsOverride: 'down_proj=5,o_proj=8', method: 'gptq', clip: 'max' });
    expect(r.settings).toEqual({ ...DEFAULT_SETTINGS, codebook: 'learned', method: 'gptq' });
    expect(r.problems.map((p) => [p.key, p.value])).toEqual([['w8Budget', '150%'], ['bitsOverride', 'down_proj=5,o_proj=8'], ['clip', 'max']]);
    expect(r.problems[0].message).toMatch(/setting w8-budget: got "150%"/);
    expect(r.problems[1].message).toMatch(/entry 1 \("down_proj=5"\): bits "5" must be 4, 8 or 16/);
    expect(r.problems[2].message).toMatch(/setting clip: got "max"; expected absmax or mse/);
  });

  it('equals parseSettings when nothing is wrong', () => {
    const raw = { bits: '8', rotation: 'block', blockSize: '32', w8Budget: '0.05', bitsOverride: 'layers.0.*=8' };
    expect(parseSettingsByKey(raw)).toEqual({ settings: parseSettings(raw), problems: [] });
  });
});

describe('plainRtnSettings', () => {
  it('drops rotation, GPTQ, the learned codebook, the budget and the overrides; keeps bits, scheme, clip, embeddings, dtype', () => {
    const run: QuantSettings = { ...DEFAULT_SETTINGS, bits: 4, clip: 'absmax', rotation: 'block', blockSize: 16, seed: 9, quantizeEmbeddings: false, dtype: 'f32', method: 'gptq', actOrder: false, damp: 0.1, codebook: 'learned', w8Budget: 0.1, bitsOverride: 'down_proj=8' };
    expect(plainRtnSettings(run)).toEqual({ ...run, rotation: 'none', method: 'rtn', actOrder: true, damp: 0.01, codebook: 'uniform', w8Budget: 0, bitsOverride: '' });
    expect(plainRtnSettings({ ...run, inputScales: 'fitted' }).inputScales).toBe('uniform');
    expect(plainRtnSettings(plainRtnSettings(run))).toEqual(plainRtnSettings(run));
  });
});

describe('isPlainRtn / describeVsPlainRtn', () => {
  it('plain RTN is rotation none, RTN, the grid, no 4-bit budget, no overrides', () => {
    const plain: QuantSettings = { ...DEFAULT_SETTINGS, rotation: 'none' };
    expect(isPlainRtn(plain)).toBe(true);
    expect(isPlainRtn(DEFAULT_SETTINGS)).toBe(false);
    expect(isPlainRtn({ ...plain, method: 'gptq' })).toBe(false);
    expect(isPlainRtn({ ...plain, codebook: 'learned' })).toBe(false);
    expect(isPlainRtn({ ...plain, w8Budget: 0.1 })).toBe(false);
    expect(isPlainRtn({ ...plain, bits: 8, w8Budget: 0.1 })).toBe(true); // the budget does nothing at 8 bits
    expect(isPlainRtn({ ...plain, bitsOverride: 'down_proj=8' })).toBe(false);
    expect(isPlainRtn({ ...plain, inputScales: 'fitted' })).toBe(false);
  });

  it('names what differs', () => {
    expect(describeVsPlainRtn(DEFAULT_SETTINGS)).toBe('rotation full');
    expect(describeVsPlainRtn({ ...DEFAULT_SETTINGS, rotation: 'none', method: 'gptq', codebook: 'learned', w8Budget: 0.1, bitsOverride: 'x=8' })).toBe('rotation none, GPTQ, learned codebook, 10 % at 8 bits, bits overrides');
    expect(describeVsPlainRtn({ ...DEFAULT_SETTINGS, inputScales: 'fitted' })).toBe('rotation full, fitted input scales');
    expect(describeVsPlainRtn({ ...DEFAULT_SETTINGS, rotation: 'block', blockSize: 32, bits: 8, w8Budget: 0.1 })).toBe('rotation block 32');
  });
});
