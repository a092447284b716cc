/**
 * A minimal parquet writer for tests (hyparquet only reads): one OPTIONAL UTF8 BYTE_ARRAY
 * column, one row group, one uncompressed PLAIN data page (v1), metadata in Thrift compact
 * protocol — the shape of the Hub's wikitext `text` column, without compression.
 */

class Compact {
  bytes: number[] = [];
  private last: number[] = [0];

  private varint(n: number | bigint): void {
    let v = BigInt(n);
    do {
      let b = Number(v & 0x7fn);
      v >>= 7n;
      if (v > 0n) b |= 0x80;
      this.bytes.push(b);
    } while (v > 0n);
  }
  private zigzag(n: number | bigint): void {
    const v = BigInt(n);
    this.varint(v >= 0n ? v << 1n : ((-v) << 1n) - 1n);
  }
  private header(id: number, type: number): void {
    const delta = id - this.last[this.last.length - 1];
    if (delta > 0 && delta <= 15) this.bytes.push((delta << 4) | type);
    else {
      this.bytes.push(type);
      this.zigzag(id);
    }
    this.last[this.last.length - 1] = id;
  }
  i32(id: number, v: number): this {
    this.header(id, 5);
    this.zigzag(v);
    return this;
  }
  i64(id: number, v: number): this {
    this.header(id, 6);
    this.zigzag(v);
    return this;
  }
  str(id: number, s: string): this {
    this.header(id, 8);
    const b = new TextEncoder().encode(s);
    this.varint(b.length);
    this.bytes.push(...b);
    return this;
  }
  struct(id: number, body: (c: this) => void): this {
    this.header(id, 12);
    this.last.push(0);
    body(this);
    this.bytes.push(0);
    this.last.pop();
    return this;
  }
  /** list of structs (type 12), i32 (5) or strings (8). */
  list<T>(id: number, elemType: 5 | 8 | 12, items: T[], each: (c: this, item: T) => void): this {
    this.header(id, 9);
    if (items.length < 15) this.bytes.push((items.length << 4) | elemType);
    else {
      this.bytes.push(0xf0 | elemType);
      this.varint(items.length);
    }
    for (const it of items) {
      if (elemType === 12) {
        this.last.push(0);
        each(this, it);
        this.bytes.push(0);
        this.last.pop();
      } else each(this, it);
    }
    return this;
  }
  rawI32(v: number): void {
    this.zigzag(v);
  }
  rawStr(s: string): void {
    const b = new TextEncoder().encode(s);
    this.varint(b.length);
    this.bytes.push(...b);
  }
  stop(): number[] {
    this.bytes.push(0);
    return this.bytes;
  }
}

function u32le(n: number): number[] {
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];
}

/** A parquet file with one string column `column` holding `rows`. */
export function parquetStringColumn(rows: string[], column = 'text'): Uint8Array {
  const n = rows.length;
  // Definition levels (all 1 = present): RLE/bit-packed hybrid, one RLE run, bit width 1, with a 4-byte length prefix.
  const run: number[] = [];
  let h = n << 1;
  do {
    let b = h & 0x7f;
    h >>>= 7;
    if (h > 0) b |= 0x80;
    run.push(b);
  } while (h > 0);
  run.push(1);
  const values: number[] = [];
  for (const r of rows) {
    const b = new TextEncoder().encode(r);
    values.push(...u32le(b.length), ...b);
  }
  const pageData = [...u32le(run.length), ...run, ...values];
  const pageHeader = new Compact()
    .i32(1, 0) // DATA_PAGE
    .i32(2, pageData.length)
    .i32(3, pageData.length)
    .struct(5, (c) => c.i32(1, n).i32(2, 0).i32(3, 3).i32(4, 3)) // PLAIN values, RLE levels
    .stop();
  const chunk = [...pageHeader, ...pageData];
  const dataOffset = 4;
  const meta = new Compact()
    .i32(1, 1)
    .list(2, 12, [0, 1], (c, i) => {
      if (i === 0) c.str(4, 'schema').i32(5, 1);
      else c.i32(1, 6).i32(3, 1).str(4, column).i32(6, 0); // BYTE_ARRAY, OPTIONAL, UTF8
    })
    .i64(3, n)
    .list(4, 12, [0], (c) => {
      c.list(1, 12, [0], (cc) => {
        cc.i64(2, dataOffset).struct(3, (m) => {
          m.i32(1, 6)
            .list(2, 5, [0, 3], (x, e) => x.rawI32(e))
            .list(3, 8, [column], (x, s) => x.rawStr(s))
            .i32(4, 0) // UNCOMPRESSED
            .i64(5, n)
            .i64(6, chunk.length)
            .i64(7, chunk.length)
            .i64(9, dataOffset);
        });
      })
        .i64(2, chunk.length)
        .i64(3, n);
    })
    .stop();
  const magic = [0x50, 0x41, 0x52, 0x31];
  return Uint8Array.from([...magic, ...chunk, ...meta, ...u32le(meta.length), ...magic]);
}
