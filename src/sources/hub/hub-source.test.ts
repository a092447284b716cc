import { downloadFile, listFiles, modelInfo } from '@huggingface/hub';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startMockHub, type MockHub } from '../../../test/support/mock-hub';
import { CancelledError, InputError } from '../../core/errors';
import { createHubSource, FileChangedError, stripUrlCredentials, type HubProgress } from './hub-source';

const REPO = 'mock-org/qwen-tiny';
const SHA_V1 = '1111111111111111111111111111111111111111';
const TOKEN = 'hf_secretTokenValue123';
const MB = 1024 * 1024;

let root: string;
let hub: MockHub;
let big: Uint8Array;

function makeDir(name: string, files: Record<string, string | Uint8Array>): string {
  const dir = join(root, name);
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), c);
  }
  return dir;
}

const qwenConfig = JSON.stringify({ model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'] });

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'mockhub-'));
  big = new Uint8Array(randomBytes(6 * MB + 12345));
  const modelDir = makeDir('model', {
    'config.json': qwenConfig,
    'model.safetensors': big,
    'tokenizer.json': '{}',
    'sub/notes.txt': 'hello',
  });
  hub = await startMockHub({
    repos: {
      [REPO]: { dir: modelDir, revisions: { v1: SHA_V1 } },
      'mock-org/gated': { dir: modelDir, gated: { tokens: [TOKEN] } },
      'mock-org/private': { dir: modelDir, private: { tokens: [TOKEN] } },
      'mock-org/llama': { dir: makeDir('llama', { 'config.json': JSON.stringify({ model_type: 'llama' }), 'model.safetensors': 'x' }) },
      'mock-org/pytorch': { dir: makeDir('pt', { 'config.json': qwenConfig, 'pytorch_model.bin': 'x' }) },
      'mock-org/sharded-missing': {
        dir: makeDir('sharded', {
          'config.json': qwenConfig,
          'model.safetensors.index.json': JSON.stringify({
            weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' },
          }),
          'model-00001-of-00002.safetensors': 'x',
        }),
      },
    },
  });
});

afterAll(async () => {
  await hub?.close();
  rmSync(root, { recursive: true, force: true });
});

afterEach(() => {
  hub.setFaults([]);
  hub.setFile(REPO, 'model.safetensors', big);
  hub.log.length = 0;
});

const fast = { retryBaseMs: 5 };

describe('the real @huggingface/hub client against the mock hub', () => {
  it('resolves a revision to its sha, lists files, reads a range', async () => {
    const info = await modelInfo({ name: REPO, revision: 'v1', additionalFields: ['sha'], hubUrl: hub.url });
    expect(info.sha).toBe(SHA_V1);
    const main = await modelInfo({ name: REPO, additionalFields: ['sha'], hubUrl: hub.url });
    expect(main.sha).toMatch(/^[0-9a-f]{40}$/);
    expect(hub.log.some((e) => e.path === `/api/models/${REPO}/revision/v1`)).toBe(true);

    const entries = [];
    for await (const f of listFiles({ repo: REPO, revision: SHA_V1, recursive: true, hubUrl: hub.url })) entries.push(f);
    expect(entries.filter((e) => e.type === 'file').map((e) => e.path).sort()).toEqual([
      'config.json',
      'model.safetensors',
      'sub/notes.txt',
      'tokenizer.json',
    ]);
    expect(entries.find((e) => e.path === 'model.safetensors')?.size).toBe(big.length);
    expect(entries.find((e) => e.path === 'sub')?.type).toBe('directory');
    expect(hub.log.some((e) => e.path === `/api/models/${REPO}/tree/${SHA_V1}` && e.search.includes('recursive=true'))).toBe(true);

    const blob = await downloadFile({ repo: REPO, revision: SHA_V1, path: 'model.safetensors', hubUrl: hub.url, xet: false });
    expect(blob?.size).toBe(big.length);
    const part = new Uint8Array(await blob!.slice(1000, 5000).arrayBuffer());
    expect(Buffer.from(part).equals(Buffer.from(big.subarray(1000, 5000)))).toBe(true);
    const ranged = hub.log.filter((e) => e.path.endsWith('/model.safetensors'));
    expect(ranged.map((e) => [e.range, e.status])).toEqual([
      ['bytes=0-0', 206],
      ['bytes=1000-4999', 206],
    ]);
    expect(await downloadFile({ repo: REPO, revision: SHA_V1, path: 'nope.bin', hubUrl: hub.url, xet: false })).toBeNull();
  });
});

describe('createHubSource', () => {
  it('resolves the revision, lists files, and reads random ranges byte-exactly', async () => {
    const src = await createHubSource({ repo: REPO, revision: 'v1', hubUrl: hub.url, ...fast });
    expect(src.revision).toBe(SHA_V1);
    expect(src.label).toBe(`${REPO}@${SHA_V1}`);
    expect((await src.listFiles()).sort()).toEqual(['config.json', 'model.safetensors', 'sub/notes.txt', 'tokenizer.json']);
    const f = await src.open('model.safetensors');
    expect(f.size).toBe(big.length);
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 40; i++) {
      const off = Math.floor(rnd() * big.length);
      const len = Math.floor(rnd() * Math.min(big.length - off, 3 * MB));
      const got = await f.read(off, len);
      expect(got.length).toBe(len);
      expect(Buffer.from(got).equals(Buffer.from(big.subarray(off, off + len)))).toBe(true);
    }
    // Header-sized reads at the start share one request.
    hub.log.length = 0;
    const f2 = await (await createHubSource({ repo: REPO, revision: 'v1', hubUrl: hub.url })).open('model.safetensors');
    hub.log.length = 0;
    await f2.read(0, 8);
    await f2.read(8, 30000);
    expect(hub.log.filter((e) => e.method === 'GET').length).toBe(1);
  });

  it('coalesces planned ranges into few large requests with at most inFlight outstanding', async () => {
    const src = await createHubSource({ repo: REPO, hubUrl: hub.url, inFlight: 2, maxRequestBytes: 2 * MB, ...fast });
    const f = await src.open('model.safetensors');
    // 60 "tensors" of ~100 KB, back to back with small gaps.
    const ranges = [];
    let off = 1000;
    while (ranges.length < 60) {
      ranges.push({ offset: off, length: 100_000 });
      off += 100_000 + 16;
    }
    hub.log.length = 0;
    let maxActive = 0;
    const origFetchCount = hub.log.length;
    await src.prefetch('model.safetensors', ranges);
    for (const r of ranges) {
      maxActive = Math.max(maxActive, src.progress().active);
      const got = await f.read(r.offset, r.length);
      expect(Buffer.from(got).equals(Buffer.from(big.subarray(r.offset, r.offset + r.length)))).toBe(true);
    }
    const gets = hub.log.slice(origFetchCount).filter((e) => e.method === 'GET' && e.path.endsWith('model.safetensors') && e.range !== 'bytes=0-0');
    // 6 MB in 2 MiB blocks → 3 requests instead of 60.
    expect(gets.length).toBe(3);
    expect(maxActive).toBeLessThanOrEqual(2);
    const p = src.progress();
    expect(p.totalBytes).toBe(60 * 100_000);
    expect(p.bytes).toBeGreaterThanOrEqual(60 * 100_000);
  });

  it('survives connection cuts at several byte positions, resuming with If-Range', async () => {
    const cuts = [1, 65_536, 1_000_003, 3 * MB, big.length - 1];
    hub.setFaults(cuts.map((atByte) => ({ kind: 'drop' as const, path: 'model.safetensors', atByte })));
    const progress: HubProgress[] = [];
    const src = await createHubSource({ repo: REPO, hubUrl: hub.url, onProgress: (p) => progress.push(p), ...fast });
    hub.log.length = 0;
    const all = await src.readFile('model.safetensors');
    expect(Buffer.from(all).equals(Buffer.from(big))).toBe(true);
    const gets = hub.log.filter((e) => e.method === 'GET' && e.path.endsWith('model.safetensors') && e.range !== 'bytes=0-0');
    expect(gets.filter((e) => e.cut).length).toBe(cuts.length);
    expect(gets.length).toBe(cuts.length + 1);
    // Every resume asks for the rest of the file, pinned to the ETag.
    for (const g of gets) expect(g.ifRange).toMatch(/^"[0-9a-f]{64}"$/);
    expect(gets.slice(1).map((g) => g.range)).toEqual(cuts.map((c) => `bytes=${c}-${big.length - 1}`));
    expect(src.progress().retries).toBe(cuts.length);
    expect(progress.length).toBeGreaterThan(0);
  });

  it('retries 5xx bursts with back-off, and gives up with a clear message after maxRetries', async () => {
    hub.setFaults([{ kind: 'status', path: 'model.safetensors', status: 503, times: 3 }]);
    const src = await createHubSource({ repo: REPO, hubUrl: hub.url, maxRetries: 5, ...fast });
    const f = await src.open('model.safetensors');
    const got = await f.read(MB, MB);
    expect(Buffer.from(got).equals(Buffer.from(big.subarray(MB, 2 * MB)))).toBe(true);
    expect(src.progress().retries).toBe(3);

    hub.setFaults([{ kind: 'status', path: 'model.safetensors', status: 502, times: 100 }]);
    await expect(f.read(2 * MB, 10)).rejects.toThrow(
      /^Could not download model\.safetensors from mock-org\/qwen-tiny on 127\.0\.0\.1:\d+: HTTP 502 \(bytes 2097152-2097161; 6 attempts in a row brought no data, 6 failed in all\)\. Check the connection and run again\.$/,
    );
    hub.setFaults([]);
    const src2 = await createHubSource({ repo: REPO, hubUrl: hub.url, maxRetries: 2, ...fast });
    const f2 = await src2.open('model.safetensors');
    hub.setFaults([{ kind: 'status', path: 'model.safetensors', status: 500, times: 100 }]);
    hub.log.length = 0;
    await expect(f2.read(2 * MB, 10)).rejects.toThrow(/HTTP 500 .*3 attempts in a row brought no data/);
    expect(hub.log.length).toBe(3);
    // Metadata calls retry too: a 503 burst on the open probe is absorbed.
    hub.setFaults([{ kind: 'status', path: 'config.json', status: 503, times: 2 }]);
    const src3 = await createHubSource({ repo: REPO, hubUrl: hub.url, ...fast });
    expect(new TextDecoder().decode(await src3.readFile('config.json'))).toContain('qwen2');
  });

  it('finishes over a connection that drops every 64 KiB but keeps progressing (attempts without progress are what count)', async () => {
    // Before: the cap was on all attempts of a request (maxRetries × 4 = 20), so a 6 MB file cut
    // every 64 KiB failed after 21 attempts although every attempt delivered data.
    hub.setFaults([{ kind: 'dropEvery', path: 'model.safetensors', everyBytes: 64 * 1024 }]);
    const src = await createHubSource({ repo: REPO, hubUrl: hub.url, retryBaseMs: 1 });
    hub.log.length = 0;
    const all = await src.readFile('model.safetensors');
    expect(Buffer.from(all).equals(Buffer.from(big))).toBe(true);
    const gets = hub.log.filter((e) => e.method === 'GET' && e.path.endsWith('model.safetensors') && e.range !== 'bytes=0-0');
    expect(gets.length).toBe(Math.ceil(big.length / (64 * 1024)));
    expect(gets.filter((e) => e.cut).length).toBe(gets.length - 1);
    expect(src.progress().retries).toBe(gets.length - 1);
  });

  it('reads from a server that ignores Range (200 with the whole file), and says so', async () => {
    // Before: the library's bytes=0-0 probe got a 200 without Content-Range and failed with
    // "Could not reach … Expected size information".
    const plain = await startMockHub({ repos: { [REPO]: { dir: join(root, 'model') } }, ignoreRange: true });
    try {
      const notices: string[] = [];
      const src = await createHubSource({ repo: REPO, hubUrl: plain.url, onNotice: (m) => notices.push(m), ...fast });
      const f = await src.open('model.safetensors');
      expect(f.size).toBe(big.length);
      const got = await f.read(3 * MB + 7, MB);
      expect(Buffer.from(got).equals(Buffer.from(big.subarray(3 * MB + 7, 4 * MB + 7)))).toBe(true);
      expect(Buffer.from(await src.readFile('model.safetensors')).equals(Buffer.from(big))).toBe(true);
      expect(plain.log.filter((e) => e.range !== undefined).every((e) => e.status === 200)).toBe(true);
      expect(notices.some((m) => /ignores HTTP Range requests/.test(m))).toBe(true);
    } finally {
      await plain.close();
    }
  });

  it('notices a stalled connection, abandons it after stallTimeoutMs and resumes; gives up with a message when it stays stalled', async () => {
    const notices: string[] = [];
    const src = await createHubSource({ repo: REPO, hubUrl: hub.url, stallTimeoutMs: 600, onNotice: (m) => notices.push(m), ...fast });
    const f = await src.open('model.safetensors');
    hub.setFaults([{ kind: 'stall', path: 'model.safetensors', atByte: MB + 100_000 }]);
    const got = await f.read(MB, MB);
    expect(Buffer.from(got).equals(Buffer.from(big.subarray(MB, 2 * MB)))).toBe(true);
    expect(notices.some((m) => /^waiting for 127\.0\.0\.1:\d+: no data for 0\.[23] s while reading model\.safetensors \(gives up after 0\.6 s\)$/.test(m))).toBe(true);
    expect(notices.some((m) => /no data from 127\.0\.0\.1:\d+ for 0\.6 s while reading model\.safetensors; retrying/.test(m))).toBe(true);
    const resumed = hub.log.filter((e) => e.range === `bytes=${MB + 100_000}-${2 * MB - 1}`);
    expect(resumed).toHaveLength(1);

    const src2 = await createHubSource({ repo: REPO, hubUrl: hub.url, stallTimeoutMs: 300, maxRetries: 1, ...fast });
    const f2 = await src2.open('model.safetensors');
    hub.setFaults([{ kind: 'stall', path: 'model.safetensors', atByte: 2 * MB + 1, times: 10 }]);
    await expect(f2.read(2 * MB, MB)).rejects.toThrow(/^Could not download model\.safetensors .*: no data for 0\.3 s \(stalled connection\) \(bytes 2097153-3145727; 2 attempts in a row brought no data/);
  });

  it('strips credentials from hub URLs', () => {
    expect(stripUrlCredentials('http://user:hf_abc@host:8080/x')).toEqual({ url: 'http://host:8080/x', token: 'hf_abc' });
    expect(stripUrlCredentials('https://hf_abc@host/')).toEqual({ url: 'https://host/', token: 'hf_abc' });
    expect(stripUrlCredentials('https://user:p%40ss@host')).toEqual({ url: 'https://host', token: 'p@ss' });
    expect(stripUrlCredentials('https://host/a@b')).toEqual({ url: 'https://host/a@b' });
    expect(stripUrlCredentials('https://huggingface.co')).toEqual({ url: 'https://huggingface.co' });
  });

  it('takes credentials in the hub URL as the token and never sends or shows them in a URL', async () => {
    const url = hub.url.replace('http://', `http://user:${TOKEN}@`);
    hub.log.length = 0;
    const g = await createHubSource({ repo: 'mock-org/gated', hubUrl: url });
    expect(g.revision).toMatch(/^[0-9a-f]{40}$/);
    expect(await g.readFile('config.json')).toBeInstanceOf(Uint8Array);
    expect(hub.log.every((e) => e.auth)).toBe(true);
    const err = await createHubSource({ repo: 'mock-org/nothing', hubUrl: url }).catch((e: Error) => e);
    expect(String((err as Error).message)).not.toContain(TOKEN);
  });

  it('never splices two versions: an ETag change fails the ByteSource and restarts readFile from scratch', async () => {
    const v2 = new Uint8Array(randomBytes(big.length + 777));
    hub.setFaults([{ kind: 'etagChange', path: 'model.safetensors', atByte: 2 * MB, newContent: v2 }]);
    const src = await createHubSource({ repo: REPO, hubUrl: hub.url, ...fast });
    hub.log.length = 0;
    const all = await src.readFile('model.safetensors');
    expect(all.length).toBe(v2.length);
    expect(Buffer.from(all).equals(Buffer.from(v2))).toBe(true);
    expect(src.progress().restarts).toBe(1);
    const gets = hub.log.filter((e) => e.method === 'GET' && e.path.endsWith('model.safetensors') && e.range !== 'bytes=0-0');
    // cut at 2 MiB; resume with If-Range gets 200 (new version) → abandoned; fresh probe; full read of v2.
    expect(gets[0].cut).toBe(true);
    expect(gets[1].status).toBe(200);
    expect(gets[1].range).toBe(`bytes=${2 * MB}-${big.length - 1}`);
    expect(gets.at(-1)!.range).toBe(`bytes=0-${v2.length - 1}`);

    // ByteSource level: bytes already handed out were v1, so the reader refuses to continue.
    hub.setFile(REPO, 'model.safetensors', big);
    const src2 = await createHubSource({ repo: REPO, hubUrl: hub.url, ...fast });
    const f = await src2.open('model.safetensors');
    const first = await f.read(0, 1000);
    expect(Buffer.from(first).equals(Buffer.from(big.subarray(0, 1000)))).toBe(true);
    hub.setFile(REPO, 'model.safetensors', v2);
    const err = await f.read(MB, 1000).catch((e) => e);
    expect(err).toBeInstanceOf(FileChangedError);
    expect(err.message).toMatch(/model\.safetensors changed on the Hub while it was being read/);
    await expect(f.read(0, 10)).rejects.toBeInstanceOf(FileChangedError);
    // Reopening gives the new version.
    const g = await src2.open('model.safetensors');
    expect(g.size).toBe(v2.length);
    expect(Buffer.from(await g.read(MB, 1000)).equals(Buffer.from(v2.subarray(MB, MB + 1000)))).toBe(true);
  });

  it('gives specific messages for 401, 403 and 404s, never containing the token', async () => {
    const msg = async (p: Promise<unknown>) => {
      const e = (await p.catch((x) => x)) as Error;
      expect(e).toBeInstanceOf(InputError);
      expect(e.message).not.toContain(TOKEN);
      expect(e.message).not.toContain('secretToken');
      return e.message;
    };
    expect(await msg(createHubSource({ repo: 'mock-org/gated', hubUrl: hub.url }))).toMatch(/mock-org\/gated needs a Hugging Face access token \(HTTP 401\): the repository is gated or private/);
    expect(await msg(createHubSource({ repo: 'mock-org/gated', hubUrl: hub.url, token: 'hf_otherToken' }))).toMatch(
      /Access to mock-org\/gated is forbidden \(HTTP 403\): the repository is gated and this token has not been granted access/,
    );
    expect(await msg(createHubSource({ repo: 'mock-org/private', hubUrl: hub.url }))).toMatch(/needs a Hugging Face access token \(HTTP 401\)/);
    expect(await msg(createHubSource({ repo: 'mock-org/private', hubUrl: hub.url, token: 'hf_otherToken' }))).toMatch(/the Hugging Face token was not accepted/);
    expect(await msg(createHubSource({ repo: 'mock-org/nothing', hubUrl: hub.url, token: TOKEN }))).toMatch(/Repository "mock-org\/nothing" was not found/);
    expect(await msg(createHubSource({ repo: REPO, revision: 'v9', hubUrl: hub.url, token: TOKEN }))).toMatch(/Revision "v9" does not exist in mock-org\/qwen-tiny/);
    const src = await createHubSource({ repo: REPO, hubUrl: hub.url, token: TOKEN });
    expect(await msg(src.open('missing.safetensors'))).toMatch(/File "missing.safetensors" was not found in mock-org\/qwen-tiny at revision [0-9a-f]{40}/);
    expect(await msg(createHubSource({ repo: 'mock-org/llama', hubUrl: hub.url }))).toMatch(/not a Qwen2 model: .*model_type "llama"/);
    expect(await msg(createHubSource({ repo: 'mock-org/pytorch', hubUrl: hub.url }))).toMatch(/has no \.safetensors files \(only PyTorch/);
    expect(await msg(createHubSource({ repo: 'mock-org/sharded-missing', hubUrl: hub.url }))).toMatch(/missing model-00002-of-00002\.safetensors/);
    expect(await msg(createHubSource({ repo: REPO, hubUrl: hub.url, token: 'not-a-token' }))).toMatch(/must start with "hf_"/);

    // With the right token the gated repo works, and the token went only into headers.
    hub.log.length = 0;
    const g = await createHubSource({ repo: 'mock-org/gated', hubUrl: hub.url, token: TOKEN });
    expect(g.revision).toMatch(/^[0-9a-f]{40}$/);
    expect(hub.log.every((e) => e.auth && !e.path.includes(TOKEN) && !e.search.includes(TOKEN))).toBe(true);
  });

  it('cancels promptly through the AbortSignal, with no requests after the abort', async () => {
    hub.setFaults([{ kind: 'slow', path: 'model.safetensors', bytesPerSec: 2 * MB }]);
    const ctl = new AbortController();
    const src = await createHubSource({ repo: REPO, hubUrl: hub.url, signal: ctl.signal, ...fast });
    const f = await src.open('model.safetensors');
    await src.prefetch('model.safetensors', [{ offset: 0, length: 3 * MB }, { offset: 3 * MB, length: 3 * MB }]);
    const reading = f.read(0, 3 * MB);
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    ctl.abort();
    await expect(reading).rejects.toBeInstanceOf(CancelledError);
    expect(Date.now() - t0).toBeLessThan(200);
    const n = hub.log.length;
    await expect(f.read(5 * MB, 100)).rejects.toBeInstanceOf(CancelledError);
    await new Promise((r) => setTimeout(r, 300));
    expect(hub.log.length).toBe(n);
    expect(hub.log.filter((e) => e.time > t0 + 5).length).toBe(0);
  });
});
