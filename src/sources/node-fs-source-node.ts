/**
 * ModelSource over a local folder (or one .safetensors file) for the CLI and tests.
 *
 * Symbolic links: a Hugging Face cache snapshot (`…/models--org--name/snapshots/<sha>/`) holds
 * only links into `../../blobs/`, so links are followed when their target stays inside the
 * cache's `models--*` folder (or, for an ordinary folder, inside the folder itself); any other
 * link is refused with the reason. Files are opened per read, not held open, so a model of
 * 10,000 shards does not run out of file descriptors.
 */
import { lstat, open, readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import { CancelledError, InputError } from '../core/errors';
import type { ByteSource, ModelSource } from '../core/ports';
import { checkRange } from './util';

export interface NodeFsModelSource extends ModelSource {
  /** Close the file handles opened so far (none stay open between reads; kept for callers). */
  close(): Promise<void>;
  /** Symbolic links that were not followed, each with the reason (the CLI prints them). */
  readonly skipped: string[];
  /** When the folder is a Hugging Face cache snapshot: the repo id and commit it holds. */
  readonly hfCache?: { repo: string; revision: string };
}

/** Files a model cannot do without: a refused link to one of these is an error, not a warning. */
function isEssential(rel: string): boolean {
  return rel === 'config.json' || rel.endsWith('.safetensors') || rel.endsWith('.safetensors.index.json');
}

function inside(parent: string, child: string): boolean {
  const r = relative(parent, child);
  return r === '' || (!r.startsWith('..') && !r.startsWith(sep) && r !== '..' && !/^[a-zA-Z]:/.test(r));
}

/** The `models--org--name` folder above a cache snapshot (…/models--org--name/snapshots/<sha>), if `dir` is one. */
function hfCacheRepoFolder(dir: string): { folder: string; repo: string; revision: string } | undefined {
  const snapshots = dirname(dir);
  const repoFolder = dirname(snapshots);
  const m = /^models--(.+)$/.exec(basename(repoFolder));
  if (basename(snapshots) !== 'snapshots' || !m) return undefined;
  return { folder: repoFolder, repo: m[1].split('--').join('/'), revision: basename(dir) };
}

function openError(rel: string, root: string, e: unknown): InputError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new InputError(`${rel} not found in ${root}`, { file: rel });
  if (code === 'EMFILE' || code === 'ENFILE') {
    return new InputError(`could not open ${rel} in ${root}: too many open files (${code}); raise the limit (ulimit -n) and retry`, { file: rel });
  }
  if (code === 'EACCES' || code === 'EPERM') return new InputError(`could not open ${rel} in ${root}: permission denied (${code})`, { file: rel });
  return new InputError(`could not open ${rel} in ${root}: ${(e as Error).message}`, { file: rel });
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
  const realRoot = await realpath(root);
  const cache = hfCacheRepoFolder(realRoot) ?? hfCacheRepoFolder(root);
  // Where link targets may point: the whole models--* folder of a cache snapshot, else the folder itself.
  const allowed = cache ? await realpath(cache.folder) : realRoot;
  const skipped: string[] = [];
  /** Relative path → the real file to open. */
  const files = new Map<string, string>();

  const addLink = async (rel: string, full: string, seen: Set<string>, walkDir: (dir: string) => Promise<void>): Promise<void> => {
    let target: string;
    try {
      target = await realpath(full);
    } catch {
      const why = `${rel} is a symbolic link whose target does not exist`;
      if (isEssential(rel)) throw new InputError(`${why} (in ${root}); an incomplete download? Fetch the model again`, { file: rel });
      skipped.push(why);
      return;
    }
    if (!inside(allowed, target)) {
      const why = `${rel} is a symbolic link to ${target}, outside ${cache ? `the Hugging Face cache folder ${allowed}` : `the model folder ${realRoot}`}`;
      if (isEssential(rel)) throw new InputError(`${why}; links are followed only within that folder. Copy the file in or point --model at the folder that holds it`, { file: rel });
      skipped.push(`${why}; not used`);
      return;
    }
    const ts = await stat(target);
    if (ts.isFile()) files.set(rel, target);
    else if (ts.isDirectory() && !seen.has(target)) {
      seen.add(target);
      await walkDir(full);
    }
  };

  const walk = async (dir: string, seen: Set<string>): Promise<void> => {
    for (const ent of await readdir(dir, { withFileTypes: true })) {
      // Hidden entries (.git, .cache) are not model files.
      if (ent.name.startsWith('.')) continue;
      const full = join(dir, ent.name);
      const rel = relative(root, full).split(sep).join('/');
      if (ent.isDirectory()) await walk(full, seen);
      else if (ent.isFile()) files.set(rel, full);
      else if (ent.isSymbolicLink()) await addLink(rel, full, seen, (d) => walk(d, seen));
    }
  };

  if (only) {
    const full = join(root, only);
    if ((await lstat(full)).isSymbolicLink()) await addLink(only, full, new Set(), async () => {});
    else files.set(only, full);
  } else {
    await walk(root, new Set([realRoot]));
  }

  const source: NodeFsModelSource = {
    label: path,
    skipped,
    ...(cache ? { hfCache: { repo: cache.repo, revision: cache.revision } } : {}),
    async listFiles() {
      return [...files.keys()].sort();
    },
    async open(rel: string): Promise<ByteSource> {
      if (rel.split('/').includes('..')) throw new InputError(`invalid path ${rel}`, { file: rel });
      const full = files.get(rel);
      if (full === undefined) throw new InputError(`${rel} not found in ${root}`, { file: rel });
      let size: number;
      try {
        size = (await stat(full)).size;
      } catch (e) {
        throw openError(rel, root, e);
      }
      return {
        name: rel,
        size,
        async read(offset, length, signal) {
          checkRange(rel, size, offset, length);
          if (signal?.aborted) throw new CancelledError();
          const out = new Uint8Array(length);
          let fh;
          try {
            fh = await open(full, 'r');
          } catch (e) {
            throw openError(rel, root, e);
          }
          try {
            let got = 0;
            // Positional reads may return short counts; loop until done.
            while (got < length) {
              const { bytesRead } = await fh.read(out, got, length - got, offset + got);
              if (bytesRead === 0) throw new InputError(`${rel}: unexpected end of file at byte ${offset + got} (file shrank while reading?)`, { file: rel });
              got += bytesRead;
            }
          } finally {
            await fh.close();
          }
          return out;
        },
      };
    },
    async close() {},
  };
  return source;
}
