/**
 * BundleSink producing one streaming .zip (fflate). Store mode by default: safetensors data
 * barely compresses and storing keeps it fast. fflate writes no Zip64, so the archive must stay
 * under 4 GiB; larger bundles need a folder sink (fs / File System Access / OPFS).
 */
import { Zip, ZipDeflate, ZipPassThrough } from 'fflate';
import type { BundleSink, FileWriter } from '../core/ports';
import { MANIFEST_FILE, SinkState } from './common';
import { formatSha256Manifest, Sha256 } from './sha256';

/** A fixed local-time date so the same bundle gives the same zip bytes in any time zone. */
export const ZIP_MTIME = new Date(2000, 0, 1, 0, 0, 0);

export interface ZipSinkOptions {
  /** Receives the archive bytes in order; awaited, so a slow consumer slows the producer. */
  onChunk?: (chunk: Uint8Array) => void | Promise<void>;
  /** Alternative to onChunk: written, closed on finalize, aborted on abort. */
  writable?: WritableStream<Uint8Array>;
  /** Called by abort() (with onChunk), so the consumer can discard what it got. */
  onAbort?: (reason: unknown) => void | Promise<void>;
  /** 0 = store (default); 1–9 = deflate level. */
  level?: number;
  /** Entry modification time; fixed by default so output is reproducible. */
  mtime?: Date;
  label?: string;
  /**
   * Add manifest.sha256 (sha256sum format, every other entry) as the last entry, like the folder
   * sinks write, so an unzipped bundle verifies with `sha256sum -c manifest.sha256`. Default true.
   */
  manifest?: boolean;
}

export interface ZipSink extends BundleSink {
  /** Archive bytes emitted so far. */
  readonly bytesWritten: number;
}

const ZIP32_LIMIT = 0xffffffff;

export function createZipSink(opts: ZipSinkOptions): ZipSink {
  const label = opts.label ?? 'zip';
  if (!opts.onChunk === !opts.writable) throw new Error('createZipSink: give exactly one of onChunk or writable');
  const st = new SinkState(label);
  const writer = opts.writable?.getWriter();
  const emit = opts.onChunk ?? ((c: Uint8Array) => writer!.write(c));
  const level = opts.level ?? 0;
  const mtime = opts.mtime ?? ZIP_MTIME;
  const pending: Uint8Array[] = [];
  let zipError: Error | undefined;
  let bytesWritten = 0;
  let ended = false;
  const withManifest = opts.manifest ?? true;
  const sums: [string, string][] = [];
  const zip = new Zip((err, chunk, final) => {
    if (err) zipError = err;
    else pending.push(chunk);
    if (final) ended = true;
  });

  // fflate calls back synchronously; chunks are queued there and handed out here, in order.
  let flushing: Promise<void> = Promise.resolve();
  const flush = (): Promise<void> => {
    flushing = flushing.then(async () => {
      while (pending.length > 0) {
        if (zipError) throw zipError;
        const c = pending.shift()!;
        bytesWritten += c.length;
        if (bytesWritten > ZIP32_LIMIT) {
          throw new Error(`${label}: the zip would exceed 4 GiB, which needs Zip64 (unsupported); save the bundle to a folder instead`);
        }
        await emit(c);
      }
      if (zipError) throw zipError;
    });
    return flushing;
  };

  return {
    label,
    get bytesWritten() {
      return bytesWritten;
    },
    async createFile(path, size): Promise<FileWriter> {
      st.begin(path);
      if (size !== undefined && size >= ZIP32_LIMIT) {
        st.open.delete(path);
        throw new Error(`${label}: ${path} is ${size} bytes; a zip entry must be under 4 GiB (no Zip64) — save the bundle to a folder instead`);
      }
      const entry = level > 0 ? new ZipDeflate(path, { level: level as 1 }) : new ZipPassThrough(path);
      entry.mtime = mtime;
      zip.add(entry);
      let n = 0;
      const hash = withManifest ? new Sha256() : null;
      return {
        async write(chunk) {
          st.assertOpen();
          if (chunk.length === 0) return;
          n += chunk.length;
          hash?.update(chunk);
          entry.push(chunk);
          await flush();
        },
        async close() {
          entry.push(new Uint8Array(0), true);
          st.end(path, n, size);
          if (hash) sums.push([path, hash.hex()]);
          await flush();
        },
      };
    },
    async finalize() {
      st.startFinalize();
      if (withManifest && !sums.some(([p]) => p === MANIFEST_FILE)) {
        const m = new ZipPassThrough(MANIFEST_FILE);
        m.mtime = mtime;
        zip.add(m);
        m.push(new TextEncoder().encode(formatSha256Manifest(sums)), true);
      }
      zip.end();
      await flush();
      if (!ended) throw new Error(`${label}: zip stream did not end`);
      await writer?.close();
      st.state = 'complete';
    },
    async abort(reason) {
      if (st.state === 'aborted' || st.state === 'complete') return;
      st.state = 'aborted';
      zip.terminate();
      pending.length = 0;
      await flushing.catch(() => {});
      if (writer) await writer.abort(reason).catch(() => {});
      else await opts.onAbort?.(reason);
    },
  };
}
