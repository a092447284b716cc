/**
 * BundleSink producing one streaming .zip (src/sinks/zip-writer.ts, Zip64 where sizes or offsets
 * need it, so a 7B bundle downloads as one archive). Store mode by default: safetensors data
 * barely compresses and storing keeps it fast; deflate (fflate) on request.
 */
import { Deflate } from 'fflate';
import type { BundleSink, FileWriter } from '../core/ports';
import { MANIFEST_FILE, SinkState } from './common';
import { formatSha256Manifest, Sha256 } from './sha256';
import { ZipWriter } from './zip-writer';

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
  /** Sizes and offsets from which Zip64 records are written (tests lower it). */
  zip64Threshold?: number;
}

export interface ZipSink extends BundleSink {
  /** Archive bytes emitted so far. */
  readonly bytesWritten: number;
}

export function createZipSink(opts: ZipSinkOptions): ZipSink {
  const label = opts.label ?? 'zip';
  if (!opts.onChunk === !opts.writable) throw new Error('createZipSink: give exactly one of onChunk or writable');
  const st = new SinkState(label);
  const writer = opts.writable?.getWriter();
  const emit = opts.onChunk ?? ((c: Uint8Array) => writer!.write(c));
  const level = opts.level ?? 0;
  const withManifest = opts.manifest ?? true;
  const sums: [string, string][] = [];
  const zip = new ZipWriter({ emit, mtime: opts.mtime ?? ZIP_MTIME, zip64Threshold: opts.zip64Threshold });
  // One entry at a time, in order; writes are serialised so a slow consumer slows the producer.
  let chain: Promise<void> = Promise.resolve();
  const serial = (f: () => Promise<void>): Promise<void> => {
    const p = chain.then(f);
    chain = p.catch(() => undefined);
    return p;
  };

  return {
    label,
    get bytesWritten() {
      return zip.bytesWritten;
    },
    async createFile(path, size): Promise<FileWriter> {
      st.begin(path);
      const hash = withManifest ? new Sha256() : null;
      let n = 0;
      // Deflate output arrives synchronously from push(); it is written after each push.
      let deflated: Uint8Array[] = [];
      const deflate = level > 0 ? new Deflate({ level: level as 1 }, (chunk) => { deflated.push(chunk); }) : null;
      const takeDeflated = (): Uint8Array => {
        const parts = deflated;
        deflated = [];
        if (parts.length === 1) return parts[0];
        const out = new Uint8Array(parts.reduce((a, c) => a + c.length, 0));
        let o = 0;
        for (const c of parts) { out.set(c, o); o += c.length; }
        return out;
      };
      await serial(() => zip.begin(path, deflate ? 8 : 0, size));
      return {
        async write(chunk) {
          st.assertOpen();
          if (chunk.length === 0) return;
          n += chunk.length;
          hash?.update(chunk);
          await serial(async () => {
            if (!deflate) return zip.data(chunk);
            deflate.push(chunk);
            await zip.data(chunk, takeDeflated());
          });
        },
        async close() {
          st.end(path, n, size);
          if (hash) sums.push([path, hash.hex()]);
          await serial(async () => {
            if (deflate) {
              deflate.push(new Uint8Array(0), true);
              await zip.trailer(takeDeflated());
            }
            await zip.end();
          });
        },
      };
    },
    async finalize() {
      st.startFinalize();
      if (withManifest && !sums.some(([p]) => p === MANIFEST_FILE)) {
        const body = new TextEncoder().encode(formatSha256Manifest(sums));
        await serial(async () => {
          await zip.begin(MANIFEST_FILE, 0, body.length);
          await zip.data(body);
          await zip.end();
        });
      }
      await serial(() => zip.finish());
      await writer?.close();
      st.state = 'complete';
    },
    async abort(reason) {
      if (st.state === 'aborted' || st.state === 'complete') return;
      st.state = 'aborted';
      await chain;
      if (writer) await writer.abort(reason).catch(() => {});
      else await opts.onAbort?.(reason);
    },
  };
}
