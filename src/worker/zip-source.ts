/**
 * Reading a bundle zip that this app wrote (store mode, Zip64 where needed) in place: the central
 * directory gives each entry's offset, so a ModelSource can serve tensor reads as Blob slices
 * without unpacking the archive — the quality check reads the bundle this way, and the card
 * update copies every entry but README.md/manifest.sha256 into a new zip the same way.
 */
import { InputError } from '../core/errors';
import type { ByteSource, ModelSource } from '../core/ports';
import { createZipSink } from '../sinks/zip-sink';
import { Spool } from './spool';

export interface ZipEntry {
  path: string;
  /** Offset of the entry's data (after its local header). */
  offset: number;
  size: number;
}

const EOCD_SIG = 0x06054b50;
const CEN_SIG = 0x02014b50;
const LOC_SIG = 0x04034b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;

async function bytes(blob: Blob, start: number, end: number): Promise<DataView> {
  return new DataView(await blob.slice(start, end).arrayBuffer());
}

/** Entries in archive order. Only stored (uncompressed) entries, which is all this app writes. */
export async function readZipEntries(blob: Blob, label = 'bundle zip'): Promise<ZipEntry[]> {
  // The end record sits in the last 22 bytes plus at most a 64 KiB comment.
  const tailStart = Math.max(0, blob.size - 22 - 0xffff);
  const tail = await bytes(blob, tailStart, blob.size);
  let eocd = -1;
  for (let i = tail.byteLength - 22; i >= 0; i--) {
    if (tail.getUint32(i, true) === EOCD_SIG) { eocd = i; break; }
  }
  if (eocd < 0) throw new InputError(`${label}: not a zip archive (no end-of-central-directory record)`);
  let count = tail.getUint16(eocd + 10, true);
  let cenSize = tail.getUint32(eocd + 12, true);
  let cenOffset = tail.getUint32(eocd + 16, true);
  if (count === 0xffff || cenSize === 0xffffffff || cenOffset === 0xffffffff) {
    // Zip64: the locator right before the end record points at the Zip64 end record.
    if (eocd < 20 || tail.getUint32(eocd - 20, true) !== ZIP64_LOCATOR_SIG) throw new InputError(`${label}: Zip64 archive without its end-record locator`);
    const at = Number(tail.getBigUint64(eocd - 12, true));
    const z = await bytes(blob, at, at + 56);
    if (z.getUint32(0, true) !== ZIP64_EOCD_SIG) throw new InputError(`${label}: damaged Zip64 end record`);
    count = Number(z.getBigUint64(32, true));
    cenSize = Number(z.getBigUint64(40, true));
    cenOffset = Number(z.getBigUint64(48, true));
  }
  const cen = await bytes(blob, cenOffset, cenOffset + cenSize);
  const dec = new TextDecoder();
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let n = 0; n < count; n++) {
    if (cen.getUint32(p, true) !== CEN_SIG) throw new InputError(`${label}: damaged central directory (entry ${n})`);
    const method = cen.getUint16(p + 10, true);
    let size = cen.getUint32(p + 24, true);
    const compressed = cen.getUint32(p + 20, true);
    const nameLen = cen.getUint16(p + 28, true);
    const extraLen = cen.getUint16(p + 30, true);
    const commentLen = cen.getUint16(p + 32, true);
    let local = cen.getUint32(p + 42, true);
    // Zip64 extra field (0x0001): the 64-bit values of the fields saturated above, in order.
    for (let x = p + 46 + nameLen; x + 4 <= p + 46 + nameLen + extraLen;) {
      const id = cen.getUint16(x, true);
      const len = cen.getUint16(x + 2, true);
      if (id === 0x0001) {
        let f = x + 4;
        if (size === 0xffffffff) { size = Number(cen.getBigUint64(f, true)); f += 8; }
        if (compressed === 0xffffffff) f += 8;
        if (local === 0xffffffff) local = Number(cen.getBigUint64(f, true));
      }
      x += 4 + len;
    }
    const path = dec.decode(new Uint8Array(cen.buffer, cen.byteOffset + p + 46, nameLen));
    if (method !== 0) throw new InputError(`${label}: ${path} is compressed (method ${method}); only stored entries can be read in place`, { file: path });
    const loc = await bytes(blob, local, local + 30);
    if (loc.getUint32(0, true) !== LOC_SIG) throw new InputError(`${label}: ${path} has no local header at ${local}`, { file: path });
    const offset = local + 30 + loc.getUint16(26, true) + loc.getUint16(28, true);
    if (offset + size > blob.size) throw new InputError(`${label}: ${path} runs past the end of the archive`, { file: path });
    if (!path.endsWith('/')) entries.push({ path, offset, size });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

export function zipModelSource(blob: Blob, entries: ZipEntry[], label: string): ModelSource {
  const byPath = new Map(entries.map((e) => [e.path, e]));
  return {
    label,
    listFiles: async () => entries.map((e) => e.path),
    async open(path): Promise<ByteSource> {
      const e = byPath.get(path);
      if (!e) throw new InputError(`${path} is not in ${label}`, { file: path });
      return {
        name: path,
        size: e.size,
        async read(offset, length) {
          if (offset < 0 || length < 0 || offset + length > e.size) throw new InputError(`${path}: read [${offset}, ${offset + length}) is outside its ${e.size} bytes`, { file: path });
          return new Uint8Array(await blob.slice(e.offset + offset, e.offset + offset + length).arrayBuffer());
        },
      };
    },
  };
}

/** The same archive with some entries' contents replaced (same order, same store mode and mtime). */
export async function rewriteZip(blob: Blob, entries: ZipEntry[], replace: Map<string, Uint8Array>): Promise<Blob> {
  const spool = new Spool();
  const zip = createZipSink({ onChunk: (c) => spool.push(c), label: 'zip download' });
  const step = 8 * 1024 * 1024;
  for (const e of entries) {
    const next = replace.get(e.path);
    const w = await zip.createFile(e.path, next ? next.length : e.size);
    if (next) await w.write(next);
    else for (let o = 0; o < e.size; o += step) await w.write(new Uint8Array(await blob.slice(e.offset + o, e.offset + Math.min(o + step, e.size)).arrayBuffer()));
    await w.close();
  }
  await zip.finalize();
  return new Blob(spool.take(), { type: 'application/zip' });
}
