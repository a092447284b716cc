/**
 * Issue 4 end to end: a sharded model streamed from the (mock) Hub through the real
 * @huggingface/hub client gives the same bundle as the local folder, also through connection
 * cuts; a file changing mid-run restarts the run (never splices versions); HTTP errors are
 * specific; cancel stops work and network promptly.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMockHub, type MockHub } from './support/mock-hub';
import { CpuBackend } from '../src/backends/cpu/cpu-backend';
import { CancelledError } from '../src/core/errors';
import { runPipeline } from '../src/core/pipeline/run';
import { runPipelineWithRestarts } from '../src/core/pipeline/restart';
import { parseSettings } from '../src/core/settings';
import { memoryModelSource, memorySink } from './support/memory';
import { createHubSource } from '../src/sources/hub/hub-source';
import { makeTinyQwen2, writeTinyQwen2 } from './support/tiny-qwen2';
import { readFolder } from './support/bundle';

const REPO = 'test-org/tiny-qwen2';
const tmp = mkdtempSync(join(tmpdir(), 'quarot-hub-'));
const dir = join(tmp, 'model');
let hub: MockHub;
let local: Record<string, Uint8Array>;
const fast = { retryBaseMs: 5, maxRequestBytes: 64 * 1024 };
const settings = parseSettings({ bits: 4 });
const target = { model: REPO, revision: 'pinned' };

beforeAll(async () => {
  const m = makeTinyQwen2({ hidden: 64, intermediate: 172, layers: 3, heads: 8, kvHeads: 4, vocab: 512, tie: true, seed: 21, outliers: true });
  await writeTinyQwen2(dir, m, { dtype: 'BF16', shards: 3 });
  local = readFolder(dir);
  hub = await startMockHub({ repos: { [REPO]: { dir }, 'gated/model': { dir, gated: { tokens: ['hf_secret123'] } } } });
});
afterAll(async () => {
  await hub?.close();
  rmSync(tmp, { recursive: true, force: true });
});

const digest = (files: Record<string, Uint8Array>): Record<string, string> =>
  Object.fromEntries(Object.entries(files).map(([k, v]) => [k, createHash('sha256').update(v).digest('hex')]));

async function localBundle(files: Record<string, Uint8Array>) {
  const sink = memorySink();
  await runPipeline({ source: memoryModelSource(files), sink, settings, backend: new CpuBackend(), target });
  return digest(sink.files);
}

async function hubBundle(extra: Partial<Parameters<typeof createHubSource>[0]> = {}) {
  const source = await createHubSource({ repo: REPO, hubUrl: hub.url, ...fast, ...extra });
  const sink = memorySink();
  const result = await runPipeline({ source, sink, settings, backend: new CpuBackend(), target });
  return { files: digest(sink.files), result };
}

describe('pipeline over the mock Hub', () => {
  it('sharded BF16 model: byte-identical to the local-folder run, with coalesced range reads', async () => {
    expect(Object.keys(local).filter((f) => f.endsWith('.safetensors'))).toHaveLength(3);
    hub.log.length = 0;
    const { files, result } = await hubBundle({ maxRequestBytes: 32 * 1024 * 1024 });
    expect(files).toEqual(await localBundle(local));
    const ranged = hub.log.filter((e) => e.method === 'GET' && e.path.endsWith('.safetensors'));
    // Coalesced: per shard one header read and one or two data requests, not one per tensor (51 source tensors).
    expect(ranged.length).toBeLessThanOrEqual(9);
    expect(result.plan.tensorCount).toBe(30); // 3 layers × (7 projections + 2 norms) + embedding, final norm, head
    expect(result.bytesRead).toBeGreaterThan(0);
  });

  it.each([0.01, 0.4, 0.9])('connection cut at %f of a shard: still byte-identical', async (fraction) => {
    const shard = 'model-00002-of-00003.safetensors';
    const atByte = Math.floor(local[shard].length * fraction);
    hub.setFaults([{ kind: 'drop', path: shard, atByte, times: 2 }]);
    hub.log.length = 0;
    const { files } = await hubBundle();
    hub.setFaults([]);
    expect(hub.log.some((e) => e.cut)).toBe(true);
    expect(hub.log.some((e) => e.ifRange)).toBe(true);
    expect(files).toEqual(await localBundle(local));
  });

  it('a shard changing mid-run restarts the run: the bundle is the new version, never a splice', async () => {
    const shard = 'model-00001-of-00003.safetensors';
    const original = hub.fileContent(REPO, shard);
    // Same layout, different bytes: perturb one BF16 value deep in the data section.
    const changed = original.slice();
    changed[changed.length - 2] ^= 0x40;
    hub.setFaults([{ kind: 'etagChange', path: shard, atByte: 40_000, newContent: changed }]);
    const source = await createHubSource({ repo: REPO, hubUrl: hub.url, ...fast });
    const restarts: string[] = [];
    let sink = memorySink();
    await runPipelineWithRestarts(
      { source, settings, backend: new CpuBackend(), target },
      async () => (sink = memorySink()),
      2,
      (e) => restarts.push(e.message),
    );
    hub.setFaults([]);
    expect(restarts).toHaveLength(1);
    expect(restarts[0]).toContain(`${shard} changed on the Hub`);
    const expected = await localBundle({ ...local, [shard]: changed });
    expect(digest(sink.files)).toEqual(expected);
    expect(digest(sink.files)).not.toEqual(await localBundle(local));
    hub.setFile(REPO, shard, original);
  });

  it('HTTP errors: 404 repo, 404 revision, 401 gated without token — each its own message, no token echoed', async () => {
    await expect(createHubSource({ repo: 'nobody/nothing', hubUrl: hub.url, ...fast })).rejects.toThrow(/nobody\/nothing.*(not found|404)/i);
    await expect(createHubSource({ repo: REPO, revision: 'no-such-branch', hubUrl: hub.url, ...fast })).rejects.toThrow(/no-such-branch/);
    const gated = createHubSource({ repo: 'gated/model', hubUrl: hub.url, ...fast, token: 'hf_wrongtoken' });
    await expect(gated).rejects.toThrow(/gated|403|401|access/i);
    await gated.catch((e: Error) => expect(e.message).not.toContain('hf_wrongtoken'));
    // With the right token it streams.
    const src = await createHubSource({ repo: 'gated/model', hubUrl: hub.url, token: 'hf_secret123', ...fast });
    expect(await src.listFiles()).toContain('config.json');
  });

  it('cancel stops the run and the network promptly, and aborts the sink', async () => {
    hub.setFaults([{ kind: 'slow', bytesPerSec: 200_000 }]);
    const controller = new AbortController();
    const source = await createHubSource({ repo: REPO, hubUrl: hub.url, ...fast, signal: controller.signal });
    const sink = memorySink();
    const run = runPipeline({ source, sink, settings, backend: new CpuBackend(), target, signal: controller.signal });
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    controller.abort();
    await expect(run).rejects.toBeInstanceOf(CancelledError);
    expect(Date.now() - t0).toBeLessThan(1000);
    const after = hub.log.length;
    await new Promise((r) => setTimeout(r, 300));
    hub.setFaults([]);
    expect(hub.log.length).toBe(after);
    expect(sink.aborted).toBe(true);
    expect(sink.finalized).toBe(false);
  });
});
