/** ModelSource over a local folder (or one .safetensors file) for the CLI and tests. */
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import { CancelledError, InputError } from '../core/errors';
import type { ByteSource, ModelSource } from '../core/ports';
import { checkRange } from './util';

export interface NodeFsModelSource extends ModelSource {
  /** Close the file handles opened so far. */
  close(): Promise<void>;
}

async function walk(root: string, dir: string, out: string[]): Promise<void> {
  for (const ent of await readdir(dir, { withFileTypes: true })) {
    // Hidden entries (.git, .cache) are not model files.
    if (ent.name.startsWith('.')) continue;
    const full = join(dir, ent.name);
    if (ent.isDirectory()) await walk(root, full, out);
    else if (ent.isFile()) out.push(relative(root, full).split(sep).join('/'));
  }
}

export async function createNodeFsSource(path: string): Promise<NodeFsModelSource> {
  let st;
  try {
    st = await stat(path);
  } catch {
    throw new InputError(`${path} does not exist`, { file: path });
  }
  // A single file stands for a folder holding only it.
  const root = st.isDirectory() ? path : dirname(path);
  const only = st.isDirectory() ? undefined : basename(path);
  const handles = new Map<string, Promise<{ fh: FileHandle; size: number }>>();

  const source: NodeFsModelSource = {
    label: path,
    async listFiles() {
      if (only) return [only];
      const out: string[] = [];
      await walk(root, root, out);
      return out.sort();
    },
    async open(rel: string): Promise<ByteSource> {
      if (rel.split('/').includes('..')) throw new InputError(`invalid path ${rel}`, { file: rel });
      let h = handles.get(rel);
      if (!h) {
        h = (async () => {
          const full = join(root, ...rel.split('/'));
          try {
            const fh = await open(full, 'r');
            return { fh, size: (await fh.stat()).size };
          } catch {
            throw new InputError(`${rel} not found in ${root}`, { file: rel });
          }
        })();
        handles.set(rel, h);
        h.catch(() => handles.delete(rel));
      }
      const { fh, size } = await h;
      return {
        name: rel,
        size,
        async read(offset, length, signal) {
          checkRange(rel, size, offset, length);
          if (signal?.aborted) throw new CancelledError();
          const out = new Uint8Array(length);
          let got = 0;
          // Positional reads may return short counts; loop until done.
          while (got < length) {
            const { bytesRead } = await fh.read(out, got, length - got, offset + got);
            if (bytesRead === 0) throw new InputError(`${rel}: unexpected end of file at byte ${offset + got} (file shrank while reading?)`, { file: rel });
            got += bytesRead;
          }
          return out;
        },
      };
    },
    async close() {
      const all = [...handles.values()];
      handles.clear();
      await Promise.all(all.map((p) => p.then((h) => h.fh.close(), () => {})));
    },
  };
  return source;
}
