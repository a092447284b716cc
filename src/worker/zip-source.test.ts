import { describe, expect, it } from 'vitest';
import { createZipSink } from '../sinks/zip-sink';
import { readZipEntries, zipModelSource } from './zip-source';

async function zipOf(files: Record<string, Uint8Array>, zip64Threshold?: number): Promise<Blob> {
  const chunks: Uint8Array[] = [];
  const sink = createZipSink({ onChunk: (c) => void chunks.push(c.slice()), zip64Threshold });
  for (const [p, d] of Object.entries(files)) {
    const w = await sink.createFile(p, d.length);
    await w.write(d);
    await w.close();
  }
  await sink.finalize();
  return new Blob(chunks as BlobPart[]);
}

const files = {
  'config.json': new TextEncoder().encode('{"model_type":"qwen2"}'),
  'model.safetensors': Uint8Array.from({ length: 3000 }, (_, i) => (i * 31) & 0xff),
};

describe('reading the app\'s own bundle zip in place', () => {
  it.each([['plain zip', undefined], ['Zip64 records (threshold lowered)', 100]] as const)('%s: entries, sizes and tensor reads', async (_, threshold) => {
    const blob = await zipOf(files, threshold);
    const entries = await readZipEntries(blob);
    expect(entries.map((e) => [e.path, e.size])).toEqual([['config.json', 22], ['model.safetensors', 3000], ['manifest.sha256', expect.any(Number)]]);
    const src = zipModelSource(blob, entries, 'bundle.zip');
    const st = await src.open('model.safetensors');
    expect(Array.from(await st.read(1000, 5))).toEqual(Array.from(files['model.safetensors'].subarray(1000, 1005)));
    await expect(st.read(2999, 2)).rejects.toThrow(/outside its 3000 bytes/);
  });

  it('refuses what is not a zip', async () => {
    await expect(readZipEntries(new Blob([new Uint8Array(100)]))).rejects.toThrow(/not a zip archive/);
  });
});
