import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { rawSafetensors } from '../../test/support/memory';
import { afterAll, describe, expect, it } from 'vitest';
import { CancelledError, InputError } from '../core/errors';
import { filesFromDataTransfer } from './files/data-transfer';
import { createFilesSource, filesFromFileList } from './files/files-source';
import { createNodeFsSource } from './node-fs-source-node';
import { checkQwen2ConfigText, validateModelFileSet } from './validate';

const root = mkdtempSync(join(tmpdir(), 'srcs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('validateModelFileSet', () => {
  const index = JSON.stringify({ weight_map: { a: 'model-00001-of-00003.safetensors', b: 'model-00002-of-00003.safetensors', c: 'model-00003-of-00003.safetensors', d: 'model-00001-of-00003.safetensors' } });
  const read = async () => index;

  it('accepts a single-file model without tokenizer (optional)', async () => {
    const r = await validateModelFileSet(['config.json', 'model.safetensors']);
    expect(r.ok).toBe(true);
    expect(r.weightFiles).toEqual(['model.safetensors']);
    expect(r.missingTokenizerFiles).toContain('tokenizer.json');
  });

  it('names every missing shard and config.json', async () => {
    const r = await validateModelFileSet(['model.safetensors.index.json', 'model-00002-of-00003.safetensors', 'tokenizer.json'], read);
    expect(r.ok).toBe(false);
    expect(r.missing).toEqual(['config.json', 'model-00001-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
    expect(r.message).toBe('Incomplete model files: missing config.json, model-00001-of-00003.safetensors, model-00003-of-00003.safetensors.');
    expect(r.tokenizerFiles).toEqual(['tokenizer.json']);
  });

  it('reports no weights, several shards without index, and a broken index', async () => {
    expect((await validateModelFileSet(['config.json'])).message).toMatch(/no \.safetensors weight files/);
    expect((await validateModelFileSet(['config.json', 'a.safetensors', 'b.safetensors'])).missing).toEqual(['model.safetensors.index.json']);
    expect((await validateModelFileSet(['config.json', 'model.safetensors.index.json'], async () => '{oops')).message).toMatch(/model\.safetensors\.index\.json is not valid JSON/);
  });

  it('checks model_type', () => {
    expect(() => checkQwen2ConfigText('{"model_type":"qwen2"}')).not.toThrow();
    expect(() => checkQwen2ConfigText('{"model_type":"llama","architectures":["LlamaForCausalLM"]}')).toThrow(/not a Qwen2 model: config.json has model_type "llama" \(architectures: LlamaForCausalLM\)/);
    expect(() => checkQwen2ConfigText('nope')).toThrow(InputError);
  });
});

describe('createNodeFsSource', () => {
  it('lists a folder recursively and reads ranges by positional reads', async () => {
    const dir = join(root, 'm');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    mkdirSync(join(dir, '.cache'), { recursive: true });
    const data = randomBytes(3 * 1024 * 1024 + 5);
    writeFileSync(join(dir, 'model.safetensors'), data);
    writeFileSync(join(dir, 'config.json'), '{}');
    writeFileSync(join(dir, 'sub', 'x.txt'), 'x');
    writeFileSync(join(dir, '.cache', 'junk'), 'x');
    const src = await createNodeFsSource(dir);
    expect(await src.listFiles()).toEqual(['config.json', 'model.safetensors', 'sub/x.txt']);
    const f = await src.open('model.safetensors');
    expect(f.size).toBe(data.length);
    for (const [o, l] of [[0, 8], [12345, 2_000_000], [data.length - 10, 10], [5, 0]]) {
      expect(Buffer.from(await f.read(o, l)).equals(data.subarray(o, o + l))).toBe(true);
    }
    await expect(f.read(data.length - 5, 10)).rejects.toThrow(RangeError);
    const ctl = new AbortController();
    ctl.abort();
    await expect(f.read(0, 1, ctl.signal)).rejects.toBeInstanceOf(CancelledError);
    await expect(src.open('missing.bin')).rejects.toThrow(/missing\.bin not found/);
    await expect(src.open('../etc/passwd')).rejects.toThrow(/invalid path/);
    const single = await createNodeFsSource(join(dir, 'model.safetensors'));
    expect(await single.listFiles()).toEqual(['model.safetensors']);
    await src.close();
    await single.close();
  });
});

describe('createNodeFsSource: links and file handles', () => {
  it('follows links that stay inside the folder, skips (with a reason) links that leave it, refuses such a link for weights', async () => {
    const dir = join(root, 'links');
    mkdirSync(join(dir, 'real'), { recursive: true });
    writeFileSync(join(dir, 'real', 'tokenizer.json'), '{"t":1}');
    writeFileSync(join(root, 'elsewhere.json'), '{}');
    writeFileSync(join(dir, 'config.json'), '{}');
    symlinkSync('real/tokenizer.json', join(dir, 'tokenizer.json'));
    symlinkSync(join(root, 'elsewhere.json'), join(dir, 'vocab.json'));
    symlinkSync(join(root, 'nothing-here'), join(dir, 'merges.txt'));
    const src = await createNodeFsSource(dir);
    expect(await src.listFiles()).toEqual(['config.json', 'real/tokenizer.json', 'tokenizer.json']);
    expect(new TextDecoder().decode(await (await src.open('tokenizer.json')).read(0, 7))).toBe('{"t":1}');
    expect(src.skipped).toEqual([
      'merges.txt is a symbolic link whose target does not exist',
      `vocab.json is a symbolic link to ${join(root, 'elsewhere.json')}, outside the model folder ${dir}; not used`,
    ]);
    symlinkSync(join(root, 'elsewhere.json'), join(dir, 'model.safetensors'));
    await expect(createNodeFsSource(dir)).rejects.toThrow(
      `model.safetensors is a symbolic link to ${join(root, 'elsewhere.json')}, outside the model folder ${dir}; links are followed only within that folder`,
    );
  });

  it('opens a model of 400 shards under ulimit -n 128 (files are not held open)', () => {
    // Before: every shard's handle stayed open, so the 100-somethingth open failed with EMFILE,
    // reported as "not found".
    const dir = join(root, 'many-shards');
    mkdirSync(dir);
    const weightMap: Record<string, string> = {};
    for (let i = 0; i < 400; i++) {
      const shard = `model-${String(i + 1).padStart(5, '0')}-of-00400.safetensors`;
      writeFileSync(join(dir, shard), rawSafetensors({ [`t${i}`]: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 8));
      weightMap[`t${i}`] = shard;
    }
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: weightMap }));
    const repo = resolve(__dirname, '../..');
    const r = spawnSync('sh', ['-c', `ulimit -n 128 && exec "${process.execPath}" --import tsx test/support/open-model-cli.ts "${dir}"`], { cwd: repo, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ files: 400, tensors: 400, bytes: 3200 });
  });
});

describe('files source', () => {
  const mk = (path: string, content: string | Uint8Array) => ({ path, file: new File([content as BlobPart], path.split('/').pop()!) });

  it('strips the common folder, skips OS clutter, reads slices, validates', async () => {
    const data = new Uint8Array(randomBytes(100_000));
    const src = createFilesSource([
      mk('Qwen/config.json', '{"model_type":"qwen2"}'),
      mk('Qwen/model.safetensors', data),
      mk('Qwen/.DS_Store', 'x'),
      mk('Qwen/__MACOSX/y', 'x'),
    ]);
    expect(await src.listFiles()).toEqual(['config.json', 'model.safetensors']);
    const f = await src.open('model.safetensors');
    expect(Buffer.from(await f.read(777, 5000)).equals(Buffer.from(data.subarray(777, 5777)))).toBe(true);
    expect((await src.validate()).ok).toBe(true);
    await expect(src.open('nope')).rejects.toThrow(/nope is not among the dropped files/);
  });

  it('reports missing shards from a dropped index', async () => {
    const src = createFilesSource([
      mk('config.json', '{}'),
      mk('model.safetensors.index.json', JSON.stringify({ weight_map: { a: 's1.safetensors', b: 's2.safetensors' } })),
      mk('s1.safetensors', 'x'),
    ]);
    const r = await src.validate();
    expect(r.missing).toEqual(['s2.safetensors']);
  });

  it('takes webkitRelativePath from an input FileList', () => {
    const f = new File(['a'], 'config.json');
    Object.defineProperty(f, 'webkitRelativePath', { value: 'Model/config.json' });
    const g = new File(['b'], 'model.safetensors');
    Object.defineProperty(g, 'webkitRelativePath', { value: 'Model/model.safetensors' });
    expect(filesFromFileList([f, g]).map((x) => x.path)).toEqual(['Model/config.json', 'Model/model.safetensors']);
    expect(createFilesSource([f, g]).files.map((x) => x.path)).toEqual(['config.json', 'model.safetensors']);
  });

  it('walks FileSystemEntry directories from a DataTransfer (batched readEntries)', async () => {
    const fileEntry = (name: string, fullPath: string) => ({
      isFile: true, isDirectory: false, name, fullPath,
      file: (ok: (f: File) => void) => ok(new File([name], name)),
    });
    const dirEntry = (name: string, children: unknown[]) => ({
      isFile: false, isDirectory: true, name, fullPath: '/' + name,
      createReader: () => {
        let i = 0;
        // Two entries per batch, like a browser's paging.
        return { readEntries: (ok: (e: unknown[]) => void) => { ok(children.slice(i, i + 2)); i += 2; } };
      },
    });
    const tree = dirEntry('Qwen2.5', [
      fileEntry('config.json', ''), fileEntry('model-1.safetensors', ''), fileEntry('model-2.safetensors', ''),
      dirEntry('extra', [fileEntry('a.txt', '')]),
    ]);
    const dt = { items: [{ kind: 'file', webkitGetAsEntry: () => tree }], files: [] } as unknown as DataTransfer;
    const files = await filesFromDataTransfer(dt);
    expect(files.map((f) => f.path)).toEqual(['Qwen2.5/config.json', 'Qwen2.5/model-1.safetensors', 'Qwen2.5/model-2.safetensors', 'Qwen2.5/extra/a.txt']);
    expect(await createFilesSource(files).listFiles()).toEqual(['config.json', 'extra/a.txt', 'model-1.safetensors', 'model-2.safetensors']);
  });

  it('falls back to the item\'s File where its entry cannot be read (WebKit, in-memory files)', async () => {
    const bytes = new File(['{"model_type":"qwen2"}'], 'config.json');
    const unreadable = {
      isFile: true, isDirectory: false, name: 'config.json', fullPath: '/config.json',
      file: (_ok: (f: File) => void, err: (e: unknown) => void) => err(new DOMException('Path does not exist', 'NotFoundError')),
    };
    const dt = { items: [{ kind: 'file', webkitGetAsEntry: () => unreadable, getAsFile: () => bytes }], files: [bytes] } as unknown as DataTransfer;
    const files = await filesFromDataTransfer(dt);
    expect(files.map((f) => f.path)).toEqual(['config.json']);
    expect(await files[0].file.text()).toBe('{"model_type":"qwen2"}');
  });
});
