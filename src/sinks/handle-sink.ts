/**
 * BundleSinks for browsers: a folder the person picked (File System Access,
 * `showDirectoryPicker`) and the origin-private file system (OPFS). Same protocol as the Node
 * fs sink: write into `<name>.partial-<random>`, re-read and verify, write manifest.sha256,
 * then move the folder to `<name>`.
 *
 * Where FileSystemHandle.move() is missing for directories, files are moved one by one (or
 * copied where files cannot move either) into `<name>`, and a `COMPLETE` marker is written
 * last: a `<name>` folder without COMPLETE is an interrupted bundle, never a finished one.
 */
import type { BundleSink, FileWriter } from '../core/ports';
import { MANIFEST_FILE, randomSuffix, SinkState } from './common';
import { checkSafetensorsFile } from './safetensors-check';
import { formatSha256Manifest, Sha256 } from './sha256';

export const COMPLETE_MARKER = 'COMPLETE';

export interface HandleSinkOptions {
  /** Folder that will contain the bundle folder. */
  root: FileSystemDirectoryHandle;
  /** Bundle folder name inside root. */
  name: string;
  /** Replace an existing `<name>` folder. */
  overwrite?: boolean;
  /**
   * Write with createSyncAccessHandle (OPFS in a worker; the only writer Safari has for OPFS).
   * Default: used when available and there is no `document` (i.e. in a worker).
   */
  syncAccess?: boolean;
  label?: string;
}

export interface HandleSink extends BundleSink {
  /** How the finished folder was made visible: one directory move, or per-file + COMPLETE marker. */
  readonly completion: 'pending' | 'moved' | 'marker';
  readonly partialName: string;
}

type Movable = { move?: (parent: FileSystemDirectoryHandle, name: string) => Promise<void> };
interface SyncHandle {
  write(buf: Uint8Array, opts?: { at?: number }): number;
  flush(): void;
  close(): void;
  truncate?(n: number): void;
}

async function exists(dir: FileSystemDirectoryHandle, name: string): Promise<boolean> {
  try {
    await dir.getDirectoryHandle(name);
    return true;
  } catch {
    try {
      await dir.getFileHandle(name);
      return true;
    } catch {
      return false;
    }
  }
}

async function isEmptyDir(dir: FileSystemDirectoryHandle, name: string): Promise<boolean> {
  try {
    const d = await dir.getDirectoryHandle(name);
    for await (const _ of (d as unknown as { keys(): AsyncIterable<string> }).keys()) return false;
    return true;
  } catch {
    return false;
  }
}

async function dirFor(root: FileSystemDirectoryHandle, parts: string[], create: boolean): Promise<FileSystemDirectoryHandle> {
  let d = root;
  for (const p of parts) d = await d.getDirectoryHandle(p, { create });
  return d;
}

/** Browsers report a full disk / quota as QuotaExceededError; say what happened in words. */
function quotaMessage(e: unknown, label: string, path: string, written: number): unknown {
  if (e && typeof e === 'object' && (e as { name?: string }).name === 'QuotaExceededError') {
    return new Error(
      `${label}: the browser's storage quota ran out while writing ${path} (${(written / 1e6).toFixed(1)} MB into it); free disk space or save to a folder / download the zip instead`,
    );
  }
  return e;
}

/**
 * Writes a whole file (the manifest, the COMPLETE marker, a copied file) the way the sink writes
 * tensors: through a sync access handle where it uses them — Safari's OPFS has no createWritable
 * before Safari 26 — else through a writable stream.
 */
async function writeWholeFile(fh: FileSystemFileHandle, data: Blob, useSync: boolean): Promise<void> {
  const step = 8 * 1024 * 1024;
  if (useSync && typeof (fh as unknown as { createSyncAccessHandle?: unknown }).createSyncAccessHandle === 'function') {
    const h = (await (fh as unknown as { createSyncAccessHandle(): Promise<SyncHandle> }).createSyncAccessHandle()) as SyncHandle;
    try {
      h.truncate?.(0);
      for (let o = 0; o < data.size; o += step) {
        const b = new Uint8Array(await data.slice(o, o + step).arrayBuffer());
        let n = 0;
        while (n < b.length) n += h.write(b.subarray(n), { at: o + n });
      }
      h.flush();
    } finally {
      h.close();
    }
    return;
  }
  const w = await fh.createWritable();
  for (let o = 0; o < data.size; o += step) await w.write(await data.slice(o, o + step).arrayBuffer());
  await w.close();
}

export async function createHandleSink(opts: HandleSinkOptions): Promise<HandleSink> {
  const { root, name } = opts;
  const label = opts.label ?? name;
  if (!name || name.includes('/') || name === '.' || name === '..') throw new Error(`invalid bundle folder name ${JSON.stringify(name)}`);
  if (!opts.overwrite && (await exists(root, name)) && !(await isEmptyDir(root, name))) {
    throw new Error(`${label}: a folder named ${name} already exists there and is not empty; choose another name or allow overwriting`);
  }
  const partialName = `${name}.partial-${randomSuffix()}`;
  const partial = await root.getDirectoryHandle(partialName, { create: true });
  const useSync = opts.syncAccess ?? typeof (globalThis as { document?: unknown }).document === 'undefined';
  const st = new SinkState(label);
  const closers = new Set<() => Promise<void>>();
  let completion: HandleSink['completion'] = 'pending';
  let createdTarget = false;

  const fileHandle = async (dir: FileSystemDirectoryHandle, path: string, create: boolean) => {
    const parts = path.split('/');
    const d = await dirFor(dir, parts.slice(0, -1), create);
    return d.getFileHandle(parts[parts.length - 1], { create });
  };

  const sink: HandleSink = {
    label,
    partialName,
    get completion() {
      return completion;
    },
    async createFile(path, size): Promise<FileWriter> {
      st.begin(path);
      const fh = await fileHandle(partial, path, true);
      let n = 0;
      const sync = useSync && typeof (fh as unknown as { createSyncAccessHandle?: unknown }).createSyncAccessHandle === 'function';
      if (sync) {
        const h = (await (fh as unknown as { createSyncAccessHandle(): Promise<SyncHandle> }).createSyncAccessHandle()) as SyncHandle;
        const closer = async () => h.close();
        closers.add(closer);
        return {
          async write(chunk) {
            st.assertOpen();
            try {
              let o = 0;
              while (o < chunk.length) o += h.write(chunk.subarray(o), { at: n + o });
            } catch (e) {
              throw quotaMessage(e, label, path, n);
            }
            n += chunk.length;
          },
          async close() {
            closers.delete(closer);
            h.flush();
            h.close();
            st.end(path, n, size);
          },
        };
      }
      const w = await fh.createWritable();
      const closer = () => w.abort().catch(() => {});
      closers.add(closer);
      return {
        async write(chunk) {
          st.assertOpen();
          try {
            await w.write(chunk as Uint8Array<ArrayBuffer>);
          } catch (e) {
            throw quotaMessage(e, label, path, n);
          }
          n += chunk.length;
        },
        async close() {
          closers.delete(closer);
          try {
            await w.close();
          } catch (e) {
            throw quotaMessage(e, label, path, n);
          }
          st.end(path, n, size);
        },
      };
    },

    async finalize() {
      st.startFinalize();
      try {
        // Re-read what the browser stored: size, safetensors header, sha256.
        const sums: [string, string][] = [];
        for (const [path, written] of st.closed) {
          const file = await (await fileHandle(partial, path, false)).getFile();
          if (file.size !== written) throw new Error(`${label}: ${path} has ${file.size} bytes stored but ${written} were written`);
          const read = async (o: number, l: number) => new Uint8Array(await file.slice(o, o + l).arrayBuffer());
          if (path.endsWith('.safetensors')) await checkSafetensorsFile(path, file.size, read);
          const h = new Sha256();
          const step = 8 * 1024 * 1024;
          for (let o = 0; o < file.size; o += step) h.update(await read(o, Math.min(step, file.size - o)));
          sums.push([path, h.hex()]);
        }
        await writeWholeFile(await partial.getFileHandle(MANIFEST_FILE, { create: true }), new Blob([formatSha256Manifest(sums)]), useSync);

        if (await exists(root, name)) {
          if (!opts.overwrite && !(await isEmptyDir(root, name))) throw new Error(`${label}: ${name} appeared while writing and is not empty; nothing was replaced`);
          await root.removeEntry(name, { recursive: true });
        }
        const movable = partial as unknown as Movable;
        if (typeof movable.move === 'function') {
          await movable.move(root, name);
          completion = 'moved';
        } else {
          const target = await root.getDirectoryHandle(name, { create: true });
          createdTarget = true;
          for (const path of [...st.closed.keys(), MANIFEST_FILE]) {
            const parts = path.split('/');
            const src = await fileHandle(partial, path, false);
            const destDir = await dirFor(target, parts.slice(0, -1), true);
            const fm = src as unknown as Movable;
            if (typeof fm.move === 'function') {
              await fm.move(destDir, parts[parts.length - 1]);
            } else {
              await writeWholeFile(await destDir.getFileHandle(parts[parts.length - 1], { create: true }), await src.getFile(), useSync);
            }
          }
          await writeWholeFile(await target.getFileHandle(COMPLETE_MARKER, { create: true }), new Blob([`${sums.length} files verified; see ${MANIFEST_FILE}\n`]), useSync);
          await root.removeEntry(partialName, { recursive: true }).catch(() => {});
          completion = 'marker';
        }
        st.state = 'complete';
      } catch (e) {
        await sink.abort(e);
        throw e;
      }
    },

    async abort() {
      if (st.state === 'complete' || st.state === 'aborted') return;
      st.state = 'aborted';
      for (const c of closers) await c().catch(() => {});
      closers.clear();
      await root.removeEntry(partialName, { recursive: true }).catch(() => {});
      // A half-filled target (fallback path) goes too; it has no COMPLETE marker anyway.
      if (createdTarget) await root.removeEntry(name, { recursive: true }).catch(() => {});
    },
  };
  return sink;
}

/** A folder the person picked with showDirectoryPicker({ mode: 'readwrite' }). */
export function createDirectorySink(dir: FileSystemDirectoryHandle, name: string, opts: Omit<HandleSinkOptions, 'root' | 'name'> = {}): Promise<HandleSink> {
  return createHandleSink({ ...opts, root: dir, name, label: opts.label ?? `${dir.name}/${name}` });
}

/** The origin-private file system (`navigator.storage.getDirectory()`), optionally under a subfolder. */
export async function createOpfsSink(name: string, opts: Omit<HandleSinkOptions, 'root' | 'name'> & { root?: FileSystemDirectoryHandle } = {}): Promise<HandleSink> {
  const root = opts.root ?? (await navigator.storage.getDirectory());
  return createHandleSink({ ...opts, root, name, label: opts.label ?? `OPFS/${name}` });
}
