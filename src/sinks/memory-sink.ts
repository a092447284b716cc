/** BundleSink keeping files in memory: tests, small models, and the browser "download as zip" path. */
import { zipSync, type Zippable } from 'fflate';
import type { BundleSink, FileWriter } from '../core/safetensors/types';
import { SinkState } from './common';
import { checkSafetensorsFile } from './safetensors-check';

export interface MemorySink extends BundleSink {
  /** Finished files (only those closed); emptied by abort(). */
  readonly files: Map<string, Uint8Array>;
  readonly state: 'open' | 'finalizing' | 'complete' | 'aborted';
  /** The finished bundle as one zip (store mode unless a deflate level is given). */
  toZip(level?: number): Uint8Array;
}

/** A fixed local-time date so the same bundle gives the same zip bytes in any time zone. */
export const ZIP_MTIME = new Date(2000, 0, 1, 0, 0, 0);

export function createMemorySink(label = 'memory'): MemorySink {
  const st = new SinkState(label);
  const files = new Map<string, Uint8Array>();
  return {
    label,
    files,
    get state() {
      return st.state;
    },
    async createFile(path, size): Promise<FileWriter> {
      st.begin(path);
      const chunks: Uint8Array[] = [];
      let n = 0;
      return {
        async write(chunk) {
          st.assertOpen();
          // Copy: callers may reuse their buffer after the write resolves.
          chunks.push(chunk.slice());
          n += chunk.length;
        },
        async close() {
          st.end(path, n, size);
          const out = new Uint8Array(n);
          let o = 0;
          for (const c of chunks) {
            out.set(c, o);
            o += c.length;
          }
          files.set(path, out);
        },
      };
    },
    async finalize() {
      st.startFinalize();
      for (const [p, d] of files) {
        if (p.endsWith('.safetensors')) await checkSafetensorsFile(p, d.length, async (o, l) => d.subarray(o, o + l));
      }
      st.state = 'complete';
    },
    async abort() {
      st.state = 'aborted';
      files.clear();
    },
    toZip(level = 0) {
      if (st.state !== 'complete') throw new Error(`${label}: bundle is not complete (${st.state})`);
      const z: Zippable = {};
      for (const p of [...files.keys()].sort()) z[p] = [files.get(p)!, { level: level as 0, mtime: ZIP_MTIME }];
      return zipSync(z);
    },
  };
}
