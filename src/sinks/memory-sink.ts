/**
 * BundleSink keeping the bundle in memory (the settings advisor quantizes each grid point into
 * one, scores it and drops it; nothing partial ever reaches a disk). Same bookkeeping as the
 * other sinks (one writer per path, declared sizes honoured) and the same safetensors check on
 * finalize. A finished bundle can be read back as a ModelSource (for the quality check) and
 * replayed into another sink (to save the chosen point: the files go through unchanged, so the
 * folder equals the one a run straight into that sink writes).
 */
import type { BundleSink, ByteSource, FileWriter, ModelSource } from '../core/ports';
import { MANIFEST_FILE, SinkState } from './common';
import { checkSafetensorsFile } from './safetensors-check';

export interface MemorySink extends BundleSink {
  /** Finished files by path, in the order they were created (emptied by abort). */
  readonly files: ReadonlyMap<string, Uint8Array>;
  /** Sum of the finished files' sizes. */
  readonly bytes: number;
  readonly complete: boolean;
  /** The finished bundle as a model source (read-only views of the bytes). */
  toSource(label?: string): ModelSource;
}

export function createMemorySink(label = 'memory'): MemorySink {
  const st = new SinkState(label);
  const done = new Map<string, Uint8Array>();
  const created: string[] = [];
  let bytes = 0;
  const files = (): Map<string, Uint8Array> => new Map(created.filter((p) => done.has(p)).map((p) => [p, done.get(p)!]));
  return {
    label,
    get files() { return files(); },
    get bytes() { return bytes; },
    get complete() { return st.state === 'complete'; },
    async createFile(path: string, size?: number): Promise<FileWriter> {
      st.begin(path);
      created.push(path);
      const chunks: Uint8Array[] = [];
      let n = 0;
      return {
        async write(chunk) {
          st.assertOpen();
          // A copy: the writer may reuse its buffer once the write resolves.
          chunks.push(chunk.slice());
          n += chunk.length;
        },
        async close() {
          st.end(path, n, size);
          const out = new Uint8Array(n);
          let o = 0;
          for (const c of chunks) { out.set(c, o); o += c.length; }
          chunks.length = 0;
          done.set(path, out);
          bytes += n;
        },
      };
    },
    async finalize() {
      st.startFinalize();
      for (const [p, d] of done) {
        if (p.endsWith('.safetensors')) await checkSafetensorsFile(p, d.length, async (o, l) => d.subarray(o, o + l));
      }
      st.state = 'complete';
    },
    async abort() {
      if (st.state === 'aborted') return;
      st.state = 'aborted';
      done.clear();
      created.length = 0;
      bytes = 0;
    },
    toSource(sourceLabel = label): ModelSource {
      if (st.state !== 'complete') throw new Error(`${label}: the bundle is not complete (${st.state})`);
      return {
        label: sourceLabel,
        async listFiles() { return [...files().keys()]; },
        async open(path: string): Promise<ByteSource> {
          const data = done.get(path);
          if (!data) throw new Error(`${label}: no file ${path}`);
          return {
            name: path,
            size: data.length,
            async read(offset, length, signal) {
              signal?.throwIfAborted();
              if (offset < 0 || length < 0 || offset + length > data.length) throw new RangeError(`${label}: read [${offset}, ${offset + length}) of ${path} past its end (${data.length} bytes)`);
              return data.subarray(offset, offset + length);
            },
          };
        },
      };
    },
  };
}

/**
 * Write a finished memory bundle into another sink, file by file in the order they were written
 * (a manifest.sha256, if the memory bundle had one, is left to the target sink to write), then
 * finalize it. On failure the target is aborted.
 */
export async function replayBundle(files: ReadonlyMap<string, Uint8Array>, target: BundleSink, signal?: AbortSignal): Promise<void> {
  try {
    for (const [path, data] of files) {
      if (path === MANIFEST_FILE) continue;
      signal?.throwIfAborted();
      const w = await target.createFile(path, data.length);
      const CHUNK = 1 << 22;
      for (let o = 0; o < data.length; o += CHUNK) await w.write(data.subarray(o, Math.min(data.length, o + CHUNK)));
      await w.close();
    }
    await target.finalize();
  } catch (e) {
    await target.abort(e).catch(() => undefined);
    throw e;
  }
}
