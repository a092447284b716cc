/**
 * BundleSink writing a folder on disk. Files go to `<out>.partial-<random>`; finalize() re-reads
 * every file (sizes, safetensors header), writes manifest.sha256 and renames the folder to
 * `<out>` in one step, so a folder named `<out>` is always a complete, verified bundle.
 *
 * Each partial folder holds a marker naming this tool, the host and the process, so a later run
 * can tell its own leftovers (from a killed run) from anything else and remove only those.
 * File system failures the user can act on (disk full, read-only, no permission) become
 * EnvironmentErrors naming the path.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { EnvironmentError } from '../core/errors';
import type { BundleSink, FileWriter } from '../core/ports';
import { MANIFEST_FILE, randomSuffix, SinkState } from './common';
import { formatSha256Manifest } from './sha256';
import { checkSafetensorsFile } from './safetensors-check';

export interface FsSinkOptions {
  /** Final bundle folder. */
  out: string;
  /** Replace an existing non-empty `<out>` (moved aside, then deleted after the rename). */
  overwrite?: boolean;
  /** Told about stale partial folders of earlier, killed runs that were removed. */
  onNotice?: (message: string) => void;
}

/** Inside every partial folder until the rename; never part of a bundle. */
export const PARTIAL_MARKER = '.quarot-studio-partial';
const TOOL = 'quarot-studio';

/** What the user can do about a file system error, or undefined for errors that are bugs. */
export function fsErrorAdvice(code: string | undefined): string | undefined {
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return 'no space left on the device (disk full or quota exceeded); free some space or choose another output folder';
    case 'EROFS':
      return 'the file system is read-only; choose an output folder on a writable disk';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied; choose a folder you can write to';
    case 'ENOTDIR':
      return 'a part of the path is a file, not a folder';
    case 'EISDIR':
      return 'the path is a folder, not a file';
    case 'ENAMETOOLONG':
      return 'the path is too long';
    case 'EMFILE':
    case 'ENFILE':
      return 'too many open files; raise the limit (ulimit -n)';
    case 'EIO':
      return 'an I/O error on the device';
    default:
      return undefined;
  }
}

/** An EnvironmentError for `e` when it is a file system error the user can fix; `e` itself otherwise. */
export function fsFailure(e: unknown, action: string, path: string): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const advice = fsErrorAdvice(code);
  if (!advice) return e;
  return new EnvironmentError(`cannot ${action} ${path}: ${advice} (${code})`, { path, code });
}

async function fsStep<T>(action: string, path: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw fsFailure(e, action, path);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Remove `<out>.partial-*` folders that this tool left behind on this host (their marker names
 * a process that no longer runs). Anything else with a similar name is left alone.
 */
export async function removeStalePartials(outDir: string): Promise<string[]> {
  const parent = dirname(outDir);
  const prefix = `${basename(outDir)}.partial-`;
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix) || !/^[0-9a-f]{12}$/.test(name.slice(prefix.length))) continue;
    const dir = join(parent, name);
    let marker: { tool?: unknown; host?: unknown; pid?: unknown };
    try {
      marker = JSON.parse(await readFile(join(dir, PARTIAL_MARKER), 'utf8'));
    } catch {
      continue; // not ours, or not identifiable as ours
    }
    if (marker.tool !== TOOL || marker.host !== hostname() || typeof marker.pid !== 'number') continue;
    if (marker.pid === process.pid || processAlive(marker.pid)) continue; // a run still writing it
    await fsStep('remove the stale partial folder', dir, () => rm(dir, { recursive: true, force: true }));
    removed.push(dir);
  }
  return removed;
}

export interface FsSink extends BundleSink {
  /** The folder being written (exists until finalize/abort). */
  readonly partialDir: string;
  readonly outDir: string;
}

async function isNonEmptyDirOrFile(p: string): Promise<boolean> {
  try {
    const s = await stat(p);
    if (!s.isDirectory()) return true;
    return (await readdir(p)).length > 0;
  } catch {
    return false;
  }
}

export async function createFsSink(opts: FsSinkOptions): Promise<FsSink> {
  const outDir = resolve(opts.out);
  for (const dir of await removeStalePartials(outDir)) {
    opts.onNotice?.(`removed ${dir}, a partial bundle left by an earlier run that was killed`);
  }
  // Refuse early, not after an hour of quantizing.
  if (!opts.overwrite && (await isNonEmptyDirOrFile(outDir))) {
    const isDir = await stat(outDir).then((s) => s.isDirectory(), () => false);
    throw new EnvironmentError(
      isDir
        ? `${outDir} already exists and is not empty; choose another output folder or pass --overwrite to replace it`
        : `${outDir} already exists and is a file, not a folder; choose another output folder or pass --overwrite to replace it`,
      { path: outDir, code: 'EEXIST' },
    );
  }
  await fsStep('create the folder', dirname(outDir), () => mkdir(dirname(outDir), { recursive: true }));
  const partialDir = `${outDir}.partial-${randomSuffix()}`;
  await fsStep('create a folder in', dirname(outDir), () => mkdir(partialDir));
  const markerPath = join(partialDir, PARTIAL_MARKER);
  try {
    await writeFile(markerPath, JSON.stringify({ tool: TOOL, host: hostname(), pid: process.pid, started: new Date().toISOString() }) + '\n');
  } catch (e) {
    await rm(partialDir, { recursive: true, force: true }).catch(() => {});
    throw fsFailure(e, 'write in', dirname(outDir));
  }
  const label = outDir;
  const st = new SinkState(label);
  const handles = new Set<FileHandle>();

  const sink: FsSink = {
    label,
    partialDir,
    outDir,
    async createFile(path, size): Promise<FileWriter> {
      st.begin(path);
      const full = join(partialDir, ...path.split('/'));
      await fsStep('create the folder', dirname(full), () => mkdir(dirname(full), { recursive: true }));
      const fh = await fsStep('create', full, () => open(full, 'wx'));
      handles.add(fh);
      let n = 0;
      return {
        async write(chunk) {
          st.assertOpen();
          let o = 0;
          while (o < chunk.length) {
            const { bytesWritten } = await fsStep('write', full, () => fh.write(chunk, o, chunk.length - o));
            o += bytesWritten;
          }
          n += chunk.length;
        },
        async close() {
          handles.delete(fh);
          // close() flushes nothing in Node, but a network file system may report ENOSPC here.
          await fsStep('write', full, () => fh.close());
          st.end(path, n, size);
        },
      };
    },
    async finalize() {
      st.startFinalize();
      try {
        const sums: [string, string][] = [];
        for (const [path, written] of st.closed) {
          const full = join(partialDir, ...path.split('/'));
          const fh = await open(full, 'r');
          try {
            const size = (await fh.stat()).size;
            if (size !== written) throw new Error(`${path}: ${written} bytes were written but ${size} are on disk`);
            const read = async (o: number, l: number) => {
              const b = new Uint8Array(l);
              const { bytesRead } = await fh.read(b, 0, l, o);
              return b.subarray(0, bytesRead);
            };
            if (path.endsWith('.safetensors')) await checkSafetensorsFile(path, size, read);
            const h = createHash('sha256');
            const buf = new Uint8Array(4 * 1024 * 1024);
            for (let o = 0; o < size; ) {
              const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - o), o);
              if (bytesRead === 0) throw new Error(`${path}: unexpected end of file while verifying`);
              h.update(buf.subarray(0, bytesRead));
              o += bytesRead;
            }
            sums.push([path, h.digest('hex')]);
          } finally {
            await fh.close();
          }
        }
        const manifestPath = join(partialDir, MANIFEST_FILE);
        await fsStep('write', manifestPath, async () => {
          const mf = await open(manifestPath, 'wx');
          try {
            await mf.writeFile(formatSha256Manifest(sums));
            await mf.sync();
          } finally {
            await mf.close();
          }
        });
        await unlink(markerPath);

        // Make `<out>` appear in one rename. An empty `<out>` (e.g. made by the user) is removed first.
        let aside: string | undefined;
        if (await isNonEmptyDirOrFile(outDir)) {
          if (!opts.overwrite) {
            throw new EnvironmentError(`${outDir} appeared while writing and is not empty; nothing was replaced`, { path: outDir, code: 'EEXIST' });
          }
          aside = `${outDir}.old-${randomSuffix()}`;
          await fsStep('move aside', outDir, () => rename(outDir, aside!));
        } else {
          await rmdir(outDir).catch(() => {});
        }
        try {
          await fsStep('rename the finished bundle to', outDir, () => rename(partialDir, outDir));
        } catch (e) {
          // Put the replaced bundle back: a failed run must not cost the user the old one.
          if (aside) await rename(aside, outDir).catch(() => {});
          throw e;
        }
        if (aside) await rm(aside, { recursive: true, force: true });
        st.state = 'complete';
      } catch (e) {
        // A failed verification must not leave anything that looks finished.
        await sink.abort(e);
        throw e;
      }
    },
    async abort() {
      if (st.state === 'complete' || st.state === 'aborted') return;
      st.state = 'aborted';
      for (const fh of handles) await fh.close().catch(() => {});
      handles.clear();
      await rm(partialDir, { recursive: true, force: true });
    },
  };
  return sink;
}
