// In-memory sources and sinks for tests only (the real ones live elsewhere).
import type { BundleSink, ByteSource, FileWriter, ModelSource } from './types';

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
  /** Closed files' contents by path. */
  readonly files: Record<string, Uint8Array>;
  /** Every createFile call, in order, with the declared size. */
  readonly created: { path: string; size?: number }[];
  /** Largest single chunk passed to write (shows the writer does not batch tensors). */
  readonly maxChunk: () => number;
  finalized: boolean;
  aborted: boolean;
}

export function memorySink(label = 'memory-sink'): MemorySink {
  const files: Record<string, Uint8Array> = {};
  const created: { path: string; size?: number }[] = [];
  let maxChunk = 0;
  const sink: MemorySink = {
    label,
    files,
    created,
    maxChunk: () => maxChunk,
    finalized: false,
    aborted: false,
    async createFile(path: string, size?: number): Promise<FileWriter> {
      if (path in files || created.some((c) => c.path === path)) throw new Error(`memorySink: ${path} created twice`);
      created.push({ path, size });
      const chunks: Uint8Array[] = [];
      let closed = false;
      return {
        async write(chunk: Uint8Array) {
          if (closed) throw new Error(`memorySink: write to closed ${path}`);
          maxChunk = Math.max(maxChunk, chunk.length);
          chunks.push(chunk.slice());
        },
        async close() {
          if (closed) throw new Error(`memorySink: ${path} closed twice`);
          closed = true;
          const total = chunks.reduce((a, c) => a + c.length, 0);
          if (size !== undefined && total !== size) throw new Error(`memorySink: ${path} declared ${size} bytes, got ${total}`);
          const out = new Uint8Array(total);
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
      sink.finalized = true;
    },
    async abort() {
      sink.aborted = true;
    },
  };
  return sink;
}

/**
 * A raw safetensors file from a header (object or literal JSON text) and data bytes, with no
 * validation — for building broken files in tests.
 */
export function rawSafetensors(header: unknown, data: Uint8Array | number = 0, headerLengthOverride?: number | bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const dataBytes = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + dataBytes.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLengthOverride ?? json.length), true);
  out.set(json, 8);
  out.set(dataBytes, 8 + json.length);
  return out;
}
