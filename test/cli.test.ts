/**
 * The CLI end to end (a real child process): a good run prints progress and the per-layer
 * summary; each SPEC §8 file-level fault gives its specific message, a non-zero exit and no
 * output folder (nor any leftover partial folder).
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeTinyQwen2, writeTinyQwen2 } from './support/tiny-qwen2';
import { startMockHub } from './support/mock-hub';
import { FIXTURE_DIR, FIXTURE_SKIP_REASON, HAVE_FIXTURE } from './support/bundle';
import { runCli } from './support/cli';

const tmp = mkdtempSync(join(tmpdir(), 'quarot-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const cli = (args: string[]) => runCli(args);

let n = 0;
async function tinyModel(opts: Partial<Parameters<typeof makeTinyQwen2>[0]> = {}): Promise<string> {
  const dir = join(tmp, `model-${n++}`);
  await writeTinyQwen2(dir, makeTinyQwen2({ hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2, vocab: 64, tie: true, seed: 3, ...opts }), { dtype: 'F32' });
  return dir;
}

/** Rewrite a safetensors file's JSON header (data section kept byte for byte). */
function editHeader(file: string, edit: (h: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>) => void): void {
  const buf = readFileSync(file);
  const len = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + len).toString('utf8'));
  edit(header);
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(file, Buffer.concat([prefix, json, buf.subarray(8 + len)]));
}

function expectNoBundle(out: string): void {
  expect(existsSync(out)).toBe(false);
  const leftovers = readdirSync(tmp).filter((f) => f.startsWith(`${out.split('/').pop()}.partial`));
  expect(leftovers).toEqual([]);
}

describe('quantize CLI', () => {
  it.skipIf(!HAVE_FIXTURE)(`runs on the real tiny model with the defaults ${HAVE_FIXTURE ? '' : FIXTURE_SKIP_REASON}`, async () => {
    const out = join(tmp, 'fixture-w4');
    const r = await cli(['--model', FIXTURE_DIR, '--out', out]);
    expect(r.stderr).toContain('[1/');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/mean relative error [\d.]+ % \(plain RTN [\d.]+ %\)/);
    expect(r.stdout).toContain('quantized 36 tensors (4-bit sp/mse, rotation full)');
    expect(readdirSync(out).sort()).toEqual(
      ['README.md', 'config.json', 'generation_config.json', 'manifest.sha256', 'model.safetensors', 'quantization_config.json', 'tokenizer.json', 'tokenizer_config.json'],
    );
    // The summary has one line per layer.
    expect(r.stdout.split('\n').filter((l) => /^\d\s+\S+\/\S+/.test(l))).toHaveLength(5);
  });

  it.skipIf(!HAVE_FIXTURE)('--backend webgpu (Dawn) writes the same bytes as --backend cpu (manifest sha256)', async () => {
    const outs: { out: string; stderr: string }[] = [];
    for (const backend of ['cpu', 'webgpu'] as const) {
      const out = join(tmp, `fixture-${backend}`);
      const r = await cli(['--model', FIXTURE_DIR, '--out', out, '--backend', backend, '--quiet']);
      expect(r.code).toBe(0);
      outs.push({ out, stderr: r.stderr });
    }
    // On this machine Dawn finds the GL adapter (EGL_PLATFORM=surfaceless from npm test): no fallback.
    if (process.env.EGL_PLATFORM === 'surfaceless') expect(outs[1].stderr).not.toContain('using the CPU backend');
    const manifest = (o: string): string => readFileSync(join(o, 'manifest.sha256'), 'utf8');
    expect(manifest(outs[1].out)).toBe(manifest(outs[0].out));
    expect(manifest(outs[0].out)).toMatch(/^[0-9a-f]{64}  model\.safetensors$/m);
  });

  it('--model org/name streams from a hub (--hub-url) and gives the local run\'s bytes', async () => {
    const model = await tinyModel({ seed: 9 });
    const hub = await startMockHub({ repos: { 'org/tiny': { dir: model, revisions: { v1: 'a'.repeat(40) } } } });
    try {
      const viaHub = join(tmp, 'via-hub');
      const r = await cli(['--model', 'org/tiny', '--revision', 'v1', '--hub-url', hub.url, '--out', viaHub, '--quiet']);
      expect(r.stderr).not.toMatch(/^error/m);
      expect(r.code).toBe(0);
      const qc = JSON.parse(readFileSync(join(viaHub, 'quantization_config.json'), 'utf8'));
      expect(qc.source_repo).toBe('org/tiny');
      expect(qc.source_revision).toBe('a'.repeat(40));
      const local = join(tmp, 'via-folder');
      expect((await cli(['--model', model, '--out', local, '--quiet'])).code).toBe(0);
      expect(readFileSync(join(viaHub, 'model.safetensors')).equals(readFileSync(join(local, 'model.safetensors')))).toBe(true);
      const missing = await cli(['--model', 'org/nothing', '--hub-url', hub.url, '--out', join(tmp, 'z'), '--quiet']);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/org\/nothing/);
    } finally {
      await hub.close();
    }
  });

  it('--tile-mb: 2 KiB tiles streamed from a hub (temp-file spool) give the default run\'s bytes; the spool is removed; 0 is refused', async () => {
    const model = await tinyModel({ seed: 11 });
    const hub = await startMockHub({ repos: { 'org/tiled': { dir: model, revisions: { v1: 'b'.repeat(40) } } } });
    const spoolDir = mkdtempSync(join(tmp, 'spool-'));
    try {
      const tiled = join(tmp, 'tiled-hub');
      const r = await runCli(['--model', 'org/tiled', '--revision', 'v1', '--hub-url', hub.url, '--out', tiled, '--quiet', '--tile-mb', String(2048 / 2 ** 20)], {
        env: { ...process.env, TMPDIR: spoolDir },
      });
      expect(r.stderr).not.toMatch(/^error/m);
      expect(r.code).toBe(0);
      expect(readdirSync(spoolDir).filter((f) => f.startsWith('quarot-spool-'))).toEqual([]);
      const whole = join(tmp, 'whole-local');
      expect((await cli(['--model', model, '--out', whole, '--quiet'])).code).toBe(0);
      // The embedding (64 × 64 f32, 16 KiB) and every projection (≥ 64 × 64) are above 2 KiB: all tiled.
      expect(readFileSync(join(tiled, 'model.safetensors')).equals(readFileSync(join(whole, 'model.safetensors')))).toBe(true);
      const bad = await cli(['--model', model, '--out', join(tmp, 'tile0'), '--tile-mb', '0']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('--tile-mb 0: expected a positive number of MiB');
    } finally {
      await hub.close();
    }
  });

  it('shards above --max-shard-size with Hugging Face names and an index', async () => {
    const out = join(tmp, 'sharded');
    const r = await cli(['--model', await tinyModel(), '--out', out, '--max-shard-size', '60000', '--quiet']);
    expect(r.code).toBe(0);
    const files = readdirSync(out);
    const shards = files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
    expect(shards.length).toBeGreaterThan(1);
    const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8'));
    expect(new Set(Object.values(index.weight_map))).toEqual(new Set(shards));
  });

  const cases: [string, () => Promise<string>, RegExp][] = [
    ['truncated file', async () => {
      const d = await tinyModel();
      const f = join(d, 'model.safetensors');
      truncateSync(f, readFileSync(f).length - 1000);
      return d;
    }, /model\.safetensors.*(past the end|truncated|beyond)/i],
    ['offsets past the end', async () => {
      const d = await tinyModel();
      editHeader(join(d, 'model.safetensors'), (h) => {
        const t = h['model.norm.weight'];
        t.data_offsets = [t.data_offsets[0] + 10_000_000, t.data_offsets[1] + 10_000_000];
      });
      return d;
    }, /model\.norm\.weight.*model\.safetensors|model\.safetensors.*model\.norm\.weight/],
    ['overlapping tensors', async () => {
      const d = await tinyModel();
      editHeader(join(d, 'model.safetensors'), (h) => {
        const a = h['model.layers.0.input_layernorm.weight'];
        const b = h['model.layers.0.post_attention_layernorm.weight'];
        b.data_offsets = [a.data_offsets[0] + 4, a.data_offsets[1] + 4];
      });
      return d;
    }, /overlap/i],
    ['shapes that disagree with the config', async () => {
      const d = await tinyModel();
      const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
      writeFileSync(join(d, 'config.json'), JSON.stringify({ ...cfg, intermediate_size: 100 }));
      return d;
    }, /tensor model\.layers\.0\.mlp\.(down|gate|up)_proj\.weight in model\.safetensors has shape \[\d+, \d+\]; config\.json implies \[\d+, \d+\]/],
    ['a missing tensor', async () => {
      // Written without it (removing it from the header alone would leave a hole, refused earlier).
      const d = join(tmp, `model-${n++}`);
      const m = makeTinyQwen2({ hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2, vocab: 64, tie: true, seed: 3 });
      m.tensors.delete('model.layers.1.mlp.up_proj.weight');
      await writeTinyQwen2(d, m, { dtype: 'F32' });
      return d;
    }, /missing 1 tensor.*model\.layers\.1\.mlp\.up_proj\.weight/],
    ['a tensor removed from the header only (its bytes left as a hole)', async () => {
      const d = await tinyModel();
      editHeader(join(d, 'model.safetensors'), (h) => { delete h['model.layers.1.mlp.up_proj.weight']; });
      return d;
    }, /model\.safetensors: no tensor covers data bytes \[\d+, \d+\) between \S+ and \S+; safetensors requires the data section to be covered without holes/],
    ['an extra tensor', async () => {
      const d = join(tmp, `model-${n++}`);
      const m = makeTinyQwen2({ hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2, vocab: 64, tie: true, seed: 3 });
      m.tensors.set('model.layers.0.self_attn.rotary_emb.inv_freq', { shape: [8], data: new Float32Array(8) });
      await writeTinyQwen2(d, m, { dtype: 'F32' });
      return d;
    }, /unexpected tensor model\.layers\.0\.self_attn\.rotary_emb\.inv_freq in model\.safetensors/],
    ['a non-Qwen2 config', async () => {
      const d = await tinyModel();
      const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
      writeFileSync(join(d, 'config.json'), JSON.stringify({ ...cfg, model_type: 'llama' }));
      return d;
    }, /model_type is "llama"; expected "qwen2"/],
    ['a hidden size no Hadamard construction fits', async () => tinyModel({ hidden: 42, heads: 3, kvHeads: 1, intermediate: 64 }), /no Hadamard construction of order n = 42.*block size 2/],
    ['an unsupported dtype', async () => {
      const d = await tinyModel();
      editHeader(join(d, 'model.safetensors'), (h) => { h['model.norm.weight'].dtype = 'I32'; });
      return d;
    }, /unsupported dtype I32 for tensor model\.norm\.weight/],
  ];

  it.each(cases)('%s: specific error, exit 2, no bundle', async (_label, make, message) => {
    const model = await make();
    const out = join(tmp, `bad-${n++}`);
    const r = await cli(['--model', model, '--out', out, '--quiet']);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/^error: /m);
    expect(r.code).toBe(2);
    expectNoBundle(out);
  });

  it('bad settings are rejected before any work', async () => {
    const r = await cli(['--model', await tinyModel(), '--out', join(tmp, 'x'), '--bits', '3']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('setting bits: got "3"; expected 4, 8 or 16');
  });

  it('block size that does not divide the hidden size', async () => {
    const r = await cli(['--model', await tinyModel({ hidden: 48, heads: 4, intermediate: 64 }), '--out', join(tmp, 'y'), '--rotation', 'block', '--block-size', '32']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('block size 32 does not divide hidden_size 48');
  });
});
