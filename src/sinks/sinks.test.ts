import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { afterAll, describe, expect, it } from 'vitest';
import type { BundleSink } from '../core/ports';
import { fakeRoot, FakeDir } from '../../test/support/fake-fs-handle';
import { createFsSink } from './fs-sink-node';
import { COMPLETE_MARKER, createDirectorySink, createOpfsSink } from './handle-sink';
import { memorySink } from '../../test/support/memory';
import { formatSha256Manifest, Sha256, sha256Hex } from './sha256';
import { createZipSink } from './zip-sink';

const root = mkdtempSync(join(tmpdir(), 'sinks-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const nodeSha = (d: Uint8Array) => createHash('sha256').update(d).digest('hex');

/** A small valid safetensors file: header JSON + data. */
function safetensors(dataLen: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify({ t: { dtype: 'F32', shape: [dataLen / 4], data_offsets: [0, dataLen] } }));
  const out = new Uint8Array(8 + json.length + dataLen);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 8);
  out.set(randomBytes(dataLen), 8 + json.length);
  return out;
}

const bundle: Record<string, Uint8Array> = {
  'model.safetensors': safetensors(1 << 20),
  'config.json': new TextEncoder().encode('{"model_type":"qwen2"}'),
  'tokenizer/vocab.json': new Uint8Array(randomBytes(5000)),
  'README.md': new Uint8Array(0),
};

/** Write the bundle in uneven chunks, announcing sizes. */
async function writeBundle(sink: BundleSink, files = bundle): Promise<void> {
  for (const [p, d] of Object.entries(files)) {
    const w = await sink.createFile(p, d.length);
    for (let o = 0; o < d.length; o += 77_777) await w.write(d.subarray(o, Math.min(d.length, o + 77_777)));
    await w.close();
  }
}

function expectedManifest(files = bundle): string {
  return formatSha256Manifest(Object.entries(files).map(([p, d]) => [p, nodeSha(d)]));
}

describe('sha256', () => {
  it('matches node:crypto at block edges and on several MB, in any chunking', () => {
    for (const n of [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000]) {
      const d = new Uint8Array(randomBytes(n));
      expect(sha256Hex(d)).toBe(nodeSha(d));
    }
    const big = new Uint8Array(randomBytes(5 * 1024 * 1024 + 13));
    const h = new Sha256();
    for (let o = 0, step = 1; o < big.length; o += step, step = (step * 7 + 3) % 100_003) h.update(big.subarray(o, Math.min(big.length, o + step)));
    expect(h.hex()).toBe(nodeSha(big));
    expect(sha256Hex(new TextEncoder().encode('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

describe('memory sink', () => {
  it('collects files, verifies on finalize, zips, and forgets everything on abort', async () => {
    const s = memorySink();
    await writeBundle(s);
    await s.finalize();
    expect(s.state).toBe('complete');
    for (const [p, d] of Object.entries(bundle)) expect(Buffer.from(s.files[p]).equals(Buffer.from(d))).toBe(true);
    const un = unzipSync(s.toZip());
    expect(Object.keys(un).sort()).toEqual(Object.keys(bundle).sort());

    const s2 = memorySink();
    const w = await s2.createFile('a.bin', 10);
    await w.write(new Uint8Array(5));
    await expect(w.close()).rejects.toThrow(/a\.bin got 5 bytes but 10 were announced/);
    await expect(s2.createFile('../x', 1)).rejects.toThrow(/invalid bundle path/);
    await s2.abort();
    expect(Object.keys(s2.files).length).toBe(0);
    await expect(s2.createFile('b', 1)).rejects.toThrow(/aborted/);

    const s3 = memorySink();
    await writeBundle(s3, { 'model.safetensors': new Uint8Array([255, 255, 255, 255, 0, 0, 0, 0, 1, 2]) });
    await expect(s3.finalize()).rejects.toThrow(/model\.safetensors: written header length/);
  });
});

describe('zip sink', () => {
  it('streams a store-mode zip that unzips to identical files, deterministically', async () => {
    const run = async () => {
      const chunks: Uint8Array[] = [];
      const s = createZipSink({ onChunk: async (c) => void chunks.push(c.slice()) });
      await writeBundle(s);
      await s.finalize();
      expect(s.bytesWritten).toBe(chunks.reduce((a, c) => a + c.length, 0));
      return Buffer.concat(chunks);
    };
    const zip = await run();
    const un = unzipSync(new Uint8Array(zip));
    expect(Object.keys(un).sort()).toEqual([...Object.keys(bundle), 'manifest.sha256'].sort());
    for (const [p, d] of Object.entries(bundle)) expect(Buffer.from(un[p]).equals(Buffer.from(d))).toBe(true);
    // manifest.sha256 lists every other entry with its real hash, as `sha256sum -c` reads it.
    const lines = new TextDecoder().decode(un['manifest.sha256']).trimEnd().split('\n');
    expect(lines.map((l) => l.split('  ')[1])).toEqual(Object.keys(bundle).sort());
    for (const l of lines) {
      const [hex, path] = l.split('  ');
      expect(hex).toBe(createHash('sha256').update(un[path]).digest('hex'));
    }
    // Store mode: the archive is barely larger than the data.
    const total = Object.values(bundle).reduce((a, d) => a + d.length, 0);
    expect(zip.length).toBeGreaterThan(total);
    expect(zip.length).toBeLessThan(total + 1500);
    expect((await run()).equals(zip)).toBe(true);
  });

  it('deflates with a level, writes to a WritableStream, aborts the stream', async () => {
    const chunks: Uint8Array[] = [];
    let closed = false;
    const ws = new WritableStream<Uint8Array>({ write: (c) => void chunks.push(c.slice()), close: () => void (closed = true) });
    const s = createZipSink({ writable: ws, level: 6 });
    const text = new TextEncoder().encode('hello quarot '.repeat(10000));
    await writeBundle(s, { 'a.txt': text });
    await s.finalize();
    expect(closed).toBe(true);
    const zip = Buffer.concat(chunks);
    expect(zip.length).toBeLessThan(text.length / 10);
    expect(Buffer.from(unzipSync(new Uint8Array(zip))['a.txt']).equals(Buffer.from(text))).toBe(true);

    let abortReason: unknown;
    const ws2 = new WritableStream<Uint8Array>({ abort: (r) => void (abortReason = r) });
    const s2 = createZipSink({ writable: ws2 });
    const w = await s2.createFile('x.bin');
    await w.write(new Uint8Array(100));
    await s2.abort('cancelled');
    expect(abortReason).toBe('cancelled');
    await expect(s2.createFile('y', 1)).rejects.toThrow(/aborted/);
  });

  /** Python's zipfile reads the archive (central directory, Zip64 records, CRCs): [name, size] per entry. */
  function pythonReads(zip: Uint8Array): [string, number][] {
    const dir = mkdtempSync(join(tmpdir(), 'zip64-'));
    try {
      const file = join(dir, 'bundle.zip');
      writeFileSync(file, zip);
      const script = 'import sys, zipfile, json\nz = zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\nprint(json.dumps([[i.filename, i.file_size] for i in z.infolist()]))';
      return JSON.parse(execFileSync('python3', ['-c', script, file], { encoding: 'utf8', maxBuffer: 64 << 20 }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  const collect = async (opts: { zip64Threshold?: number; manifest?: boolean }, files: Record<string, Uint8Array>) => {
    const chunks: Uint8Array[] = [];
    const s = createZipSink({ ...opts, onChunk: (c) => void chunks.push(c.slice()) });
    await writeBundle(s, files);
    await s.finalize();
    return new Uint8Array(Buffer.concat(chunks));
  };

  it('writes Zip64 records where sizes or offsets need them (threshold lowered); python and unzip read it back', async () => {
    const files = { 'model.safetensors': bundle['model.safetensors'], 'big.bin': new Uint8Array(5000).map((_, i) => i * 7), 'config.json': bundle['config.json'] };
    const zip = await collect({ zip64Threshold: 1000 }, files);
    const view = new DataView(zip.buffer);
    // The Zip64 end-of-central-directory record and its locator precede the classic end record.
    expect(view.getUint32(zip.length - 22, true)).toBe(0x06054b50);
    expect(view.getUint32(zip.length - 22 - 20, true)).toBe(0x07064b50);
    expect(view.getUint32(zip.length - 22 - 20 - 56, true)).toBe(0x06064b50);
    const read = pythonReads(zip);
    expect(read).toEqual([...Object.entries(files).map(([p, d]) => [p, d.length]), ['manifest.sha256', expect.any(Number)]]);
    const dir = mkdtempSync(join(tmpdir(), 'unzip-'));
    try {
      writeFileSync(join(dir, 'b.zip'), zip);
      execFileSync('unzip', ['-q', join(dir, 'b.zip'), '-d', join(dir, 'out')]);
      for (const [p, d] of Object.entries(files)) expect(readFileSync(join(dir, 'out', p)).equals(Buffer.from(d))).toBe(true);
      // The manifest verifies with sha256sum -c, as the README says.
      expect(execFileSync('sha256sum', ['-c', 'manifest.sha256'], { cwd: join(dir, 'out'), encoding: 'utf8' })).toMatch(/big\.bin: OK/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stays plain zip under the limits, and crosses 65535 entries with real Zip64 records', async () => {
    const small = await collect({}, { 'a.txt': new Uint8Array([1, 2, 3]) });
    expect(new DataView(small.buffer).getUint32(small.length - 22 - 20, true)).not.toBe(0x07064b50);
    const many: Record<string, Uint8Array> = {};
    for (let i = 0; i < 65_600; i++) many[`f${i}`] = new Uint8Array([i & 0xff]);
    const zip = await collect({ manifest: false }, many);
    const view = new DataView(zip.buffer);
    expect(view.getUint16(zip.length - 22 + 10, true)).toBe(0xffff); // classic count saturated
    expect(view.getUint32(zip.length - 22 - 20, true)).toBe(0x07064b50);
    const read = pythonReads(zip);
    expect(read.length).toBe(65_600);
    expect(read[65_599]).toEqual(['f65599', 1]);
  });
});

describe('fs sink (node)', () => {
  it('writes into a partial folder, verifies, writes manifest.sha256, renames', async () => {
    const out = join(root, 'bundle1');
    const s = await createFsSink({ out });
    expect(s.partialDir.startsWith(out + '.partial-')).toBe(true);
    await writeBundle(s);
    expect(existsSync(out)).toBe(false);
    await s.finalize();
    expect(existsSync(s.partialDir)).toBe(false);
    for (const [p, d] of Object.entries(bundle)) expect(readFileSync(join(out, p)).equals(Buffer.from(d))).toBe(true);
    const manifest = readFileSync(join(out, 'manifest.sha256'), 'utf8');
    expect(manifest).toBe(expectedManifest());
    expect(manifest.split('\n')[0]).toMatch(/^[0-9a-f]{64} {2}README\.md$/);
    expect(readdirSync(root).filter((n) => n.startsWith('bundle1'))).toEqual(['bundle1']);
  });

  it('refuses a non-empty <out> unless overwrite, accepts an empty one', async () => {
    const out = join(root, 'bundle2');
    mkdirSync(out);
    writeFileSync(join(out, 'old.txt'), 'old');
    await expect(createFsSink({ out })).rejects.toThrow(/already exists and is not empty/);
    const s = await createFsSink({ out, overwrite: true });
    await writeBundle(s);
    await s.finalize();
    expect(existsSync(join(out, 'old.txt'))).toBe(false);
    expect(readdirSync(root).filter((n) => n.startsWith('bundle2'))).toEqual(['bundle2']);
    const empty = join(root, 'bundle3');
    mkdirSync(empty);
    const s3 = await createFsSink({ out: empty });
    await writeBundle(s3);
    await s3.finalize();
    expect(readFileSync(join(empty, 'manifest.sha256'), 'utf8')).toBe(expectedManifest());
  });

  it('leaves nothing named <out> after abort or a failed verification', async () => {
    const out = join(root, 'bundle4');
    const s = await createFsSink({ out });
    const w = await s.createFile('model.safetensors');
    await w.write(new Uint8Array(1000));
    await s.abort(new Error('cancelled'));
    expect(readdirSync(root).filter((n) => n.startsWith('bundle4'))).toEqual([]);

    const s2 = await createFsSink({ out });
    await writeBundle(s2, { 'model.safetensors': new Uint8Array([10, 0, 0, 0, 0, 0, 0, 0, 123, 120, 120, 120, 120, 120, 120, 120, 120, 120]) });
    await expect(s2.finalize()).rejects.toThrow(/model\.safetensors: written safetensors header is not valid JSON/);
    expect(readdirSync(root).filter((n) => n.startsWith('bundle4'))).toEqual([]);
  });
});

describe('browser handle sinks (fake FileSystemDirectoryHandle)', () => {
  it('directory sink: partial folder, verify, manifest, move()', async () => {
    const r = fakeRoot({ dirMove: true });
    const s = await createDirectorySink(r, 'qwen-w4');
    await writeBundle(s);
    expect([...r.children.keys()]).toEqual([s.partialName]);
    await s.finalize();
    expect(s.completion).toBe('moved');
    expect([...r.children.keys()]).toEqual(['qwen-w4']);
    const files = (r.children.get('qwen-w4') as FakeDir).flat();
    for (const [p, d] of Object.entries(bundle)) expect(Buffer.from(files.get(p)!).equals(Buffer.from(d))).toBe(true);
    expect(new TextDecoder().decode(files.get('manifest.sha256'))).toBe(expectedManifest());
    expect(files.has(COMPLETE_MARKER)).toBe(false);
  });

  it('without directory move: moves (or copies) files and writes COMPLETE last', async () => {
    for (const fileMove of [true, false]) {
      const r = fakeRoot({ fileMove });
      const s = await createDirectorySink(r, 'out');
      await writeBundle(s);
      await s.finalize();
      expect(s.completion).toBe('marker');
      expect([...r.children.keys()]).toEqual(['out']);
      const out = r.children.get('out') as FakeDir;
      expect([...out.children.keys()].at(-1)).toBe(COMPLETE_MARKER);
      const files = out.flat();
      for (const [p, d] of Object.entries(bundle)) expect(Buffer.from(files.get(p)!).equals(Buffer.from(d))).toBe(true);
      expect(new TextDecoder().decode(files.get('manifest.sha256'))).toBe(expectedManifest());
    }
  });

  it('OPFS sink without createWritable (Safari): manifest and COMPLETE go through sync access handles too', async () => {
    for (const dirMove of [true, false]) {
      const r = fakeRoot({ dirMove, syncAccess: true, noWritable: true });
      const s = await createOpfsSink('safari', { root: r, syncAccess: true });
      await writeBundle(s);
      await s.finalize();
      expect(s.completion).toBe(dirMove ? 'moved' : 'marker');
      expect([...r.children.keys()]).toEqual(['safari']);
      const files = (r.children.get('safari') as FakeDir).flat();
      for (const [p, d] of Object.entries(bundle)) expect(Buffer.from(files.get(p)!).equals(Buffer.from(d))).toBe(true);
      expect(new TextDecoder().decode(files.get('manifest.sha256'))).toBe(expectedManifest());
      if (!dirMove) expect(new TextDecoder().decode(files.get(COMPLETE_MARKER))).toMatch(/files verified/);
    }
  });

  it('OPFS sink with sync access handles; quota errors are explained; abort removes the partial folder', async () => {
    const r = fakeRoot({ dirMove: true, syncAccess: true });
    const s = await createOpfsSink('b', { root: r, syncAccess: true });
    await writeBundle(s);
    await s.finalize();
    expect((r.children.get('b') as FakeDir).flat().get('model.safetensors')!.length).toBe(bundle['model.safetensors'].length);

    const q = fakeRoot({ dirMove: true, quotaBytes: 100_000 });
    const s2 = await createOpfsSink('c', { root: q, syncAccess: false });
    const w = await s2.createFile('model.safetensors');
    await w.write(new Uint8Array(60_000));
    await expect(w.write(new Uint8Array(60_000))).rejects.toThrow(/storage quota ran out while writing model\.safetensors \(0\.1 MB into it\)/);
    await s2.abort();
    expect(q.children.size).toBe(0);

    const e = fakeRoot({ dirMove: true });
    const existing = await e.getDirectoryHandle('taken', { create: true });
    await existing.getFileHandle('x', { create: true });
    await expect(createDirectorySink(e, 'taken')).rejects.toThrow(/already exists there and is not empty/);
    const s3 = await createDirectorySink(e, 'taken', { overwrite: true });
    await writeBundle(s3);
    await s3.finalize();
    expect((e.children.get('taken') as FakeDir).children.has('x')).toBe(false);
  });
});
