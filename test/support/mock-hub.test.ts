// The mock hub's HTTP behaviour itself (lives in e2e/mock-hub; tested here because Vitest only collects src/ and test/).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMockHub, type MockHub } from './mock-hub';

let hub: MockHub;
let dir: string;
const body = new Uint8Array(1000).map((_, i) => i % 251);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mh-'));
  mkdirSync(join(dir, 'a', 'b'), { recursive: true });
  writeFileSync(join(dir, 'model.safetensors'), body);
  writeFileSync(join(dir, 'a', 'b', 'c.txt'), 'c');
  hub = await startMockHub({ repos: { 'o/r': { dir, revisions: { 'refs/pr/1': 'a'.repeat(40) } } } });
});
afterAll(async () => {
  await hub.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('mock hub', () => {
  it('serves ranges with Content-Range/ETag/Accept-Ranges and honours If-Range', async () => {
    const u = `${hub.url}/o/r/resolve/main/model.safetensors`;
    const r = await fetch(u, { headers: { Range: 'bytes=10-19' } });
    expect(r.status).toBe(206);
    expect(r.headers.get('content-range')).toBe('bytes 10-19/1000');
    expect(r.headers.get('accept-ranges')).toBe('bytes');
    const etag = r.headers.get('etag')!;
    expect([...new Uint8Array(await r.arrayBuffer())]).toEqual([...body.subarray(10, 20)]);
    const same = await fetch(u, { headers: { Range: 'bytes=990-', 'If-Range': etag } });
    expect(same.status).toBe(206);
    expect((await same.arrayBuffer()).byteLength).toBe(10);
    const stale = await fetch(u, { headers: { Range: 'bytes=990-', 'If-Range': '"old"' } });
    expect(stale.status).toBe(200);
    expect((await stale.arrayBuffer()).byteLength).toBe(1000);
    expect((await fetch(u, { headers: { Range: 'bytes=5000-' } })).status).toBe(416);
    const head = await fetch(`${hub.url}/o/r/raw/main/model.safetensors`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('1000');
    const missing = await fetch(`${hub.url}/o/r/resolve/main/nope`);
    expect([missing.status, missing.headers.get('x-error-code')]).toEqual([404, 'EntryNotFound']);
    const badRev = await fetch(`${hub.url}/o/r/resolve/nope/model.safetensors`);
    expect([badRev.status, badRev.headers.get('x-error-code')]).toEqual([404, 'RevisionNotFound']);
    const prRev = await fetch(`${hub.url}/o/r/resolve/${encodeURIComponent('refs/pr/1')}/model.safetensors`, { method: 'HEAD' });
    expect(prRev.headers.get('x-repo-commit')).toBe('a'.repeat(40));
    expect(hub.log.find((e) => e.ifRange === '"old"')?.status).toBe(200);
  });

  it('lists trees (recursive or not, sub-paths) and model info', async () => {
    const j = async (p: string) => (await fetch(hub.url + p)).json();
    expect((await j('/api/models/o/r/tree/main')).map((e: { path: string; type: string }) => `${e.type}:${e.path}`)).toEqual(['file:model.safetensors', 'directory:a']);
    expect((await j('/api/models/o/r/tree/main?recursive=true')).map((e: { path: string }) => e.path)).toEqual(['a/b/c.txt', 'model.safetensors', 'a', 'a/b']);
    expect((await j('/api/models/o/r/tree/main/a/b')).map((e: { path: string }) => e.path)).toEqual(['a/b/c.txt']);
    const lfs = (await j('/api/models/o/r/tree/main'))[0];
    expect(lfs.lfs.size).toBe(1000);
    expect((await j('/api/models/o/r')).sha).toMatch(/^[0-9a-f]{40}$/);
    expect((await fetch(`${hub.url}/api/models/x/y`)).status).toBe(404);
  });
});
