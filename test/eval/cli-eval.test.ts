/**
 * The eval CLI end to end (a child process, like a user runs it): --json figures on the real
 * tiny model equal an in-process computation, --update-card edits README.md and keeps
 * manifest.sha256 valid, bad input exits 2 with a clear message.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQwen2Cpu } from '../../src/eval/forward-cpu';
import { evaluate } from '../../src/eval/perplexity';
import { dimsFromConfig } from '../../src/core/qwen2/config';
import { loadWeights, readFolder, runInMemory, weightSource } from '../support/bundle';
import { FIXTURE_DIR, HAS_FIXTURE, fixtureJson, fixtureSuite } from '../support/fixture';

const ROOT = resolve(__dirname, '../..');
const tmp = mkdtempSync(join(tmpdir(), 'quarot-eval-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function evalCli(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/eval.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(!HAS_FIXTURE)(fixtureSuite('eval CLI on tinystories-260k'), () => {
  const bundle = join(tmp, 'w8');
  const tokens = join(FIXTURE_DIR, 'eval.tokens.json');
  let files: Record<string, Uint8Array>;

  beforeAll(async () => {
    files = (await runInMemory(readFolder(FIXTURE_DIR), { bits: 8 }, { model: 'tinystories-260k' })).files;
    mkdirSync(bundle, { recursive: true });
    for (const [p, d] of Object.entries(files)) writeFileSync(join(bundle, p), d);
    // A manifest like the fs sink writes, so --update-card has one to keep valid.
    const sha = (d: Uint8Array) => createHash('sha256').update(d).digest('hex');
    writeFileSync(join(bundle, 'manifest.sha256'), Object.keys(files).sort().map((p) => `${sha(files[p])}  ${p}\n`).join(''));
  });

  it('--json: ppl/KL/top-1 equal the in-process computation; --update-card keeps the manifest valid', async () => {
    const r = evalCli(['--model', FIXTURE_DIR, '--bundle', bundle, '--tokens', tokens, '--seqlen', '256', '--windows', '4', '--json', '--prompt', 'Once upon a time', '--gen', '20', '--update-card']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    const ids = fixtureJson<{ ids: number[] }>('eval.tokens.json').ids;
    const a = createQwen2Cpu(dimsFromConfig(fixtureJson('config.json')), weightSource(await loadWeights(readFolder(FIXTURE_DIR))));
    const b = createQwen2Cpu(dimsFromConfig(JSON.parse(new TextDecoder().decode(files['config.json']))), weightSource(await loadWeights(files)));
    const ref = await evaluate(a, b, ids, 256, 4);
    expect(out).toMatchObject({ windows: 4, seqlen: 256, predictions: 1020, device: 'cpu' });
    expect(out.ppl_original).toBeCloseTo(ref.pplA, 10);
    expect(out.ppl_quantized).toBeCloseTo(ref.pplB!, 10);
    expect(out.kl_mean).toBeCloseTo(ref.klMean!, 12);
    expect(out.top1_agreement).toBeCloseTo(ref.top1Agreement!, 12);
    expect(Math.abs(out.ppl_quantized / out.ppl_original - 1)).toBeLessThan(0.01);
    expect(out.generation.quantizedIds).toEqual(out.generation.originalIds);

    const readme = readFileSync(join(bundle, 'README.md'), 'utf8');
    expect(readme).toContain('## Quality check');
    expect(readme).toContain(`| perplexity, original | ${ref.pplA.toPrecision(6)} |`);
    expect(readme.indexOf('## Quality check')).toBeLessThan(readme.indexOf('## Reproduce'));
    const manifest = readFileSync(join(bundle, 'manifest.sha256'), 'utf8');
    for (const line of manifest.trim().split('\n')) {
      const [hash, p] = line.split('  ');
      expect(createHash('sha256').update(readFileSync(join(bundle, p))).digest('hex')).toBe(hash);
    }
  });

  it('human-readable output by default, text input', async () => {
    const text = join(tmp, 'story.txt');
    writeFileSync(text, readFileSync(join(FIXTURE_DIR, 'eval.txt'), 'utf8').slice(0, 3000));
    const r = evalCli(['--model', FIXTURE_DIR, '--bundle', bundle, '--text', text, '--seqlen', '128', '--windows', '2']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/perplexity {2}original [\d.]+ {3}quantized [\d.]+/);
    expect(r.stdout).toMatch(/2 of \d+ windows × 128 tokens \(254 predictions\), cpu/);
  });

  it.each([
    [['--bundle', 'x', '--tokens', 'y'], /--model and --bundle are required/],
    [['--model', FIXTURE_DIR, '--bundle', FIXTURE_DIR], /exactly one of --text FILE, --tokens FILE, --wikitext or --builtin-text/],
    [['--model', FIXTURE_DIR, '--bundle', FIXTURE_DIR, '--tokens', join(FIXTURE_DIR, 'eval.tokens.json'), '--seqlen', '64'], /--seqlen 64: expected an integer from 128 to 2048/],
    [['--model', FIXTURE_DIR, '--bundle', FIXTURE_DIR, '--tokens', join(FIXTURE_DIR, 'config.json')], /"ids": expected an array/],
    [['--model', FIXTURE_DIR, '--bundle', join(tmp, 'nope'), '--tokens', join(FIXTURE_DIR, 'eval.tokens.json')], /--bundle .*nope: not a folder/],
    [['--model', FIXTURE_DIR, '--bundle', FIXTURE_DIR, '--tokens', join(FIXTURE_DIR, 'eval.tokens.json'), '--device', 'tpu'], /--device tpu: expected cpu or webgpu/],
    [['--model', FIXTURE_DIR, '--bundle', FIXTURE_DIR, '--bogus'], /Unknown option '--bogus'/],
  ])('bad input %# → exit 2 with a clear message', (args, msg) => {
    const r = evalCli(args as string[]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(msg as RegExp);
  });
});
