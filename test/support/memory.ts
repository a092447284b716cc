// In-memory sources and the one memory sink, for tests only (the real ones live in src/).
import { zipSync, type Zippable } from 'fflate';
import type { BundleSink, ByteSource, FileWriter, ModelSource } from '../../src/core/ports';
import { SinkState } from '../../src/sinks/common';
import { checkSafetensorsFile } from '../../src/sinks/safetensors-check';
import { ZIP_MTIME } from '../../src/sinks/zip-sink';

export interface MemoryByteSource extends ByteSource {
  /** Every read made, as [offset, length], so tests can check only headers were read. */
  readonly reads: [number, number][];
}

export function memorySource(name: string, bytes: Uint8Array): MemoryByteSource {
  const reads: [number, number][] = [];
  return {
    name,
    size: bytes.length,
    reads,
    async read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
      signal?.throwIfAborted();
      reads.push([offset, length]);
      if (offset < 0 || length < 0 || offset + length > bytes.length) {
        throw new Error(`memorySource ${name}: read [${offset}, ${offset + length}) past end (${bytes.length} bytes)`);
      }
      return bytes.slice(offset, offset + length);
    },
  };
}

export interface MemoryModelSource extends ModelSource {
  /** The ByteSources handed out by `open`, by path. */
  readonly opened: Map<string, MemoryByteSource>;
}

export function memoryModelSource(files: Record<string, Uint8Array | string>, label = 'memory'): MemoryModelSource {
  const opened = new Map<string, MemoryByteSource>();
  return {
    label,
    opened,
    async listFiles() {
      return Object.keys(files);
    },
    async open(path: string) {
      const content = files[path];
      if (content === undefined) throw new Error(`memoryModelSource: no file ${path}`);
      const src = memorySource(path, typeof content === 'string' ? new TextEncoder().encode(content) : content);
      opened.set(path, src);
      return src;
    },
  };
}

export interface MemorySink extends BundleSink {
  /** Closed files' contents by path (emptied by abort()). */
  readonly files: Record<string, Uint8Array>;
  /** Every createFile call, in order, with the declared size. */
  readonly created: { path: string; size?: number }[];
  /** Largest single chunk passed to write (shows the writer does not batch tensors). */
  readonly maxChunk: () => number;
  readonly state: 'open' | 'finalizing' | 'complete' | 'aborted';
  readonly finalized: boolean;
  readonly aborted: boolean;
  /** The finished bundle as one zip (store mode unless a deflate level is given). */
  toZip(level?: number): Uint8Array;
}

/**
 * The one in-memory BundleSink for tests: keeps finished files, refuses double creates/closes and
 * size mismatches, and verifies every safetensors file on finalize like the real sinks do.
 */
export function memorySink(label = 'memory-sink'): MemorySink {
  const st = new SinkState(label);
  const files: Record<string, Uint8Array> = {};
  const created: { path: string; size?: number }[] = [];
  let maxChunk = 0;
  return {
    label,
    files,
    created,
    maxChunk: () => maxChunk,
    get state() { return st.state; },
    get finalized() { return st.state === 'complete'; },
    get aborted() { return st.state === 'aborted'; },
    async createFile(path: string, size?: number): Promise<FileWriter> {
      if (path in files || created.some((c) => c.path === path)) throw new Error(`memorySink: ${path} created twice`);
      st.begin(path);
      created.push({ path, size });
      const chunks: Uint8Array[] = [];
      let n = 0;
      let closed = false;
      return {
        async write(chunk: Uint8Array) {
          if (closed) throw new Error(`memorySink: write to closed ${path}`);
          st.assertOpen();
          maxChunk = Math.max(maxChunk, chunk.length);
          // Copy: callers may reuse their buffer after the write resolves.
          chunks.push(chunk.slice());
          n += chunk.length;
        },
        async close() {
          if (closed) throw new Error(`memorySink: ${path} closed twice`);
          closed = true;
          st.end(path, n, size);
          const out = new Uint8Array(n);
          let o = 0;
          for (const c of chunks) {
            out.set(c, o);
            o += c.length;
          }
          files[path] = out;
        },
      };
    },
    async finalize() {
      st.startFinalize();
      for (const [p, d] of Object.entries(files)) {
        if (p.endsWith('.safetensors')) await checkSafetensorsFile(p, d.length, async (o, l) => d.subarray(o, o + l));
      }
      st.state = 'complete';
    },
    async abort() {
      st.state = 'aborted';
      for (const p of Object.keys(files)) delete files[p];
    },
    toZip(level = 0) {
      if (st.state !== 'complete') throw new Error(`${label}: bundle is not complete (${st.state})`);
      const z: Zippable = {};
      for (const p of Object.keys(files).sort()) z[p] = [files[p], { level: level as 0, mtime: ZIP_MTIME }];
      return zipSync(z);
    },
  };
}

/**
 * A raw safetensors file from a header (object or literal JSON text) and data bytes, with no
 * validation — for building broken files in tests.
 */
export function rawSafetensors(header: unknown, data: Uint8Array | number = 0, headerLengthOverride?: number | bigint): Uint8Array {
  const json = header instanceof Uint8Array ? header : new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const dataBytes = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + dataBytes.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLengthOverride ?? json.length), true);
  out.set(json, 8);
  out.set(dataBytes, 8 + json.length);
  return out;
}
