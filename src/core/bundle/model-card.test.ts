import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS } from '../settings';
import { modelCard, type ModelCardInput } from './model-card';

const base: ModelCardInput = {
  target: { model: 'Qwen/Qwen2.5-0.5B' }, modelArg: 'Qwen/Qwen2.5-0.5B', settings: DEFAULT_SETTINGS, reports: [],
  quantizedCount: 169, rotated: true, residualHadamard: 'H28⊗H32 = H896',
};

describe('model card: reproduction', () => {
  it('a Hub model: the link and the CLI call name the repo', () => {
    const card = modelCard(base);
    expect(card).toContain('`?model=Qwen%2FQwen2.5-0.5B&bits=4');
    expect(card).toContain('npm run quantize -- --model Qwen/Qwen2.5-0.5B --out <dir>');
  });

  it('a local folder: named as such, with every file hash, and no path that only existed on the maker\'s disk', () => {
    const card = modelCard({
      ...base, target: { model: 'tinystories-260k' }, modelArg: 'tinystories-260k',
      localFolder: { name: 'tinystories-260k', files: [['config.json', 'a'.repeat(64)], ['model.safetensors', 'b'.repeat(64)]] },
    });
    expect(card).toContain('The input was a local folder named `tinystories-260k` (not a Hub repo)');
    expect(card).toContain(`| config.json | \`${'a'.repeat(64)}\` |`);
    expect(card).toContain(`| model.safetensors | \`${'b'.repeat(64)}\` |`);
    expect(card).toContain('npm run quantize -- --model <path to tinystories-260k> --out <dir>');
    expect(card).not.toContain('--model tinystories-260k');
    expect(card).not.toContain('?model=');
    expect(card).toContain('`?bits=4&scheme=sp&clip=mse&rotation=full');
  });
});
