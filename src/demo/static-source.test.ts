import { describe, expect, it } from 'vitest';
import { createStaticSource } from './static-source';
import type { DemoModel } from './catalog';

const bytes = Uint8Array.from({ length: 100 }, (_, i) => i);
const model: DemoModel = { name: 'm', title: 'm', description: '', files: [{ path: 'model.safetensors', size: 100 }], bytes: 100 };

function fakeFetch(honourRange: boolean, calls: string[]): typeof fetch {
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    const range = new Headers(init?.headers).get('Range');
    calls.push(`${url} ${range ?? ''}`);
    if (!url.endsWith('/demo/m/model.safetensors')) return new Response('no', { status: 404 });
    const m = range && honourRange ? /bytes=(\d+)-(\d+)/.exec(range) : null;
    if (m) return new Response(bytes.slice(Number(m[1]), Number(m[2]) + 1), { status: 206 });
    return new Response(bytes, { status: 200 });
  }) as typeof fetch;
}

describe('static demo source', () => {
  it('reads with range requests', async () => {
    const calls: string[] = [];
    const src = createStaticSource('http://x/demo/', model, fakeFetch(true, calls));
    expect(await src.listFiles()).toEqual(['model.safetensors']);
    const f = await src.open('model.safetensors');
    expect(Array.from(await f.read(10, 5))).toEqual([10, 11, 12, 13, 14]);
    expect(calls).toEqual(['http://x/demo/m/model.safetensors bytes=10-14']);
  });

  it('falls back to one whole-file fetch when the server ignores Range', async () => {
    const calls: string[] = [];
    const f = await createStaticSource('http://x/demo', model, fakeFetch(false, calls)).open('model.safetensors');
    expect(Array.from(await f.read(0, 3))).toEqual([0, 1, 2]);
    expect(Array.from(await f.read(97, 3))).toEqual([97, 98, 99]);
    expect(calls.filter((c) => c.endsWith(' ')).length).toBe(1);
  });

  it('names unknown files and out-of-range reads', async () => {
    const src = createStaticSource('http://x/demo/', model, fakeFetch(true, []));
    await expect(src.open('nope.json')).rejects.toThrow(/nope\.json is not part of the demo model m/);
    const f = await src.open('model.safetensors');
    await expect(f.read(90, 20)).rejects.toThrow(/outside its 100 bytes/);
  });
});
