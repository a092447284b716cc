/**
 * BundleSink writing a folder on disk. Files go to `<out>.partial-<random>`; finalize() re-reads
 * every file (sizes, safetensors header), writes manifest.sha256 and renames the folder to
 * `<out>` in one step, so a folder named `<out>` is always a complete, verified bundle.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, rmdir, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { BundleSink, FileWriter } from '../core/ports';
import { MANIFEST_FILE, randomSuffix, SinkState } from './common';
import { formatSha256Manifest } from './sha256';
import { checkSafetensorsFile } from './safetensors-check';

export interface FsSinkOptions {
  /** Final bundle folder. */
  out: string;
  /** Replace an existing non-empty `<out>` (moved aside, then deleted after the rename). */
  overwrite?: boolean;
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
  // Refuse early, not after an hour of quantizing.
  if (!opts.overwrite && (await isNonEmptyDirOrFile(outDir))) {
    throw new Error(`${outDir} already exists and is not empty; choose another output folder or pass overwrite`);
  }
  await mkdir(dirname(outDir), { recursive: true });
  const partialDir = `${outDir}.partial-${randomSuffix()}`;
  await mkdir(partialDir);
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
      await mkdir(dirname(full), { recursive: true });
      const fh = await open(full, 'wx');
      handles.add(fh);
      let n = 0;
      return {
        async write(chunk) {
          st.assertOpen();
          let o = 0;
          while (o < chunk.length) {
            const { bytesWritten } = await fh.write(chunk, o, chunk.length - o);
            o += bytesWritten;
          }
          n += chunk.length;
        },
        async close() {
          handles.delete(fh);
          await fh.close();
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
        const mf = await open(join(partialDir, MANIFEST_FILE), 'wx');
        await mf.writeFile(formatSha256Manifest(sums));
        await mf.sync();
        await mf.close();

        // Make `<out>` appear in one rename. An empty `<out>` (e.g. made by the user) is removed first.
        let aside: string | undefined;
        if (await isNonEmptyDirOrFile(outDir)) {
          if (!opts.overwrite) throw new Error(`${outDir} appeared while writing and is not empty; nothing was replaced`);
          aside = `${outDir}.old-${randomSuffix()}`;
          await rename(outDir, aside);
        } else {
          await rmdir(outDir).catch(() => {});
        }
        await rename(partialDir, outDir);
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
