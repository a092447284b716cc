/**
 * A streaming zip writer with Zip64 (APPNOTE 6.3): entries are written in order, each as a local
 * header, its data (stored, or deflated by the caller) and a data descriptor; the central
 * directory follows at the end. An entry, its offset, the directory or the entry count that does
 * not fit the 32-bit fields gets Zip64 records, so a 7B bundle (≈ 15 GB) is one archive; small
 * bundles stay plain zip. Deterministic: the same entries give the same bytes.
 */

const U32 = 0xffffffff;
const U16 = 0xffff;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** Running CRC-32 (the zip/PNG polynomial). */
export class Crc32 {
  private c = 0xffffffff;
  update(b: Uint8Array): void {
    let c = this.c;
    for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
    this.c = c;
  }
  get value(): number {
    return (this.c ^ 0xffffffff) >>> 0;
  }
}

/** DOS date and time fields of a local time. */
function dosDateTime(d: Date): { date: number; time: number } {
  const year = Math.min(Math.max(d.getFullYear(), 1980), 2107);
  return {
    date: ((year - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1),
  };
}

class Bytes {
  private readonly buf: Uint8Array;
  private readonly view: DataView;
  private o = 0;
  constructor(n: number) {
    this.buf = new Uint8Array(n);
    this.view = new DataView(this.buf.buffer);
  }
  u16(v: number): this { this.view.setUint16(this.o, v, true); this.o += 2; return this; }
  u32(v: number): this { this.view.setUint32(this.o, v >>> 0, true); this.o += 4; return this; }
  u64(v: number): this { this.view.setBigUint64(this.o, BigInt(v), true); this.o += 8; return this; }
  raw(b: Uint8Array): this { this.buf.set(b, this.o); this.o += b.length; return this; }
  done(): Uint8Array {
    if (this.o !== this.buf.length) throw new Error(`zip writer: record is ${this.o} bytes, expected ${this.buf.length}`);
    return this.buf;
  }
}

interface Entry {
  name: Uint8Array;
  method: 0 | 8;
  offset: number;
  zip64: boolean;
  crc: number;
  size: number;
  compressedSize: number;
}

export interface ZipWriterOptions {
  /** Receives the archive bytes in order; awaited. */
  emit: (chunk: Uint8Array) => void | Promise<void>;
  mtime: Date;
  /** Sizes and offsets from which Zip64 records are used (tests lower it; the format's is 2^32 − 1). */
  zip64Threshold?: number;
}

export class ZipWriter {
  private readonly entries: Entry[] = [];
  private offset = 0;
  private readonly dos: { date: number; time: number };
  private readonly limit: number;
  private current: (Entry & { hash: Crc32 }) | null = null;

  constructor(private readonly opts: ZipWriterOptions) {
    this.dos = dosDateTime(opts.mtime);
    this.limit = opts.zip64Threshold ?? U32;
  }

  /** Archive bytes emitted so far. */
  get bytesWritten(): number {
    return this.offset;
  }

  private async out(b: Uint8Array): Promise<void> {
    this.offset += b.length;
    await this.opts.emit(b);
  }

  /**
   * Start an entry. `expectedSize` (the uncompressed size, when known) decides whether the local
   * header announces Zip64; without it the entry is written as Zip64 to be safe.
   */
  async begin(path: string, method: 0 | 8, expectedSize?: number): Promise<void> {
    if (this.current) throw new Error(`zip writer: ${path} started before the previous entry ended`);
    const name = new TextEncoder().encode(path);
    if (name.length > U16) throw new Error(`zip writer: entry name longer than 65535 bytes`);
    const zip64 = expectedSize === undefined || expectedSize >= this.limit || this.offset >= this.limit;
    const e = { name, method, offset: this.offset, zip64, crc: 0, size: 0, compressedSize: 0, hash: new Crc32() };
    this.current = e;
    const extra = zip64 ? 20 : 0;
    const h = new Bytes(30 + name.length + extra)
      .u32(0x04034b50).u16(zip64 ? 45 : 20).u16(0x0808).u16(method).u16(this.dos.time).u16(this.dos.date)
      .u32(0).u32(zip64 ? U32 : 0).u32(zip64 ? U32 : 0).u16(name.length).u16(extra).raw(name);
    if (zip64) h.u16(0x0001).u16(16).u64(0).u64(0);
    await this.out(h.done());
  }

  /** Entry data: `raw` is the uncompressed bytes (for the CRC and size), `stored` what goes into the archive. */
  async data(raw: Uint8Array, stored: Uint8Array = raw): Promise<void> {
    const e = this.current;
    if (!e) throw new Error('zip writer: data outside an entry');
    e.hash.update(raw);
    e.size += raw.length;
    if (stored.length > 0) {
      e.compressedSize += stored.length;
      await this.out(stored);
    }
  }

  /** Extra compressed bytes with no raw counterpart (a deflate stream's final flush). */
  async trailer(stored: Uint8Array): Promise<void> {
    if (!this.current) throw new Error('zip writer: data outside an entry');
    this.current.compressedSize += stored.length;
    if (stored.length > 0) await this.out(stored);
  }

  async end(): Promise<void> {
    const e = this.current;
    if (!e) throw new Error('zip writer: end outside an entry');
    e.crc = e.hash.value;
    if (!e.zip64 && (e.size >= U32 || e.compressedSize >= U32)) {
      throw new Error(`zip writer: entry of ${e.size} bytes was announced under 4 GiB`);
    }
    const d = e.zip64
      ? new Bytes(24).u32(0x08074b50).u32(e.crc).u64(e.compressedSize).u64(e.size)
      : new Bytes(16).u32(0x08074b50).u32(e.crc).u32(e.compressedSize).u32(e.size);
    await this.out(d.done());
    this.entries.push({ name: e.name, method: e.method, offset: e.offset, zip64: e.zip64, crc: e.crc, size: e.size, compressedSize: e.compressedSize });
    this.current = null;
  }

  /** Central directory and end records. */
  async finish(): Promise<void> {
    if (this.current) throw new Error('zip writer: finish inside an entry');
    const cdStart = this.offset;
    for (const e of this.entries) {
      const big = { size: e.size >= this.limit || e.zip64, csize: e.compressedSize >= this.limit || e.zip64, off: e.offset >= this.limit };
      const extraLen = (big.size ? 8 : 0) + (big.csize ? 8 : 0) + (big.off ? 8 : 0);
      const extra = extraLen > 0 ? 4 + extraLen : 0;
      const c = new Bytes(46 + e.name.length + extra)
        .u32(0x02014b50).u16(45).u16(e.zip64 || extra ? 45 : 20).u16(0x0808).u16(e.method).u16(this.dos.time).u16(this.dos.date)
        .u32(e.crc).u32(big.csize ? U32 : e.compressedSize).u32(big.size ? U32 : e.size)
        .u16(e.name.length).u16(extra).u16(0).u16(0).u16(0).u32(0).u32(big.off ? U32 : e.offset).raw(e.name);
      if (extra) {
        c.u16(0x0001).u16(extraLen);
        if (big.size) c.u64(e.size);
        if (big.csize) c.u64(e.compressedSize);
        if (big.off) c.u64(e.offset);
      }
      await this.out(c.done());
    }
    const cdSize = this.offset - cdStart;
    const n = this.entries.length;
    const needs64 = n >= U16 || cdSize >= this.limit || cdStart >= this.limit || this.entries.some((e) => e.zip64 || e.offset >= this.limit);
    if (needs64) {
      const eocd64 = this.offset;
      await this.out(new Bytes(56).u32(0x06064b50).u64(44).u16(45).u16(45).u32(0).u32(0).u64(n).u64(n).u64(cdSize).u64(cdStart).done());
      await this.out(new Bytes(20).u32(0x07064b50).u32(0).u64(eocd64).u32(1).done());
    }
    await this.out(new Bytes(22).u32(0x06054b50).u16(0).u16(0)
      .u16(needs64 ? U16 : n).u16(needs64 ? U16 : n).u32(needs64 ? U32 : cdSize).u32(needs64 ? U32 : cdStart).u16(0).done());
  }
}
