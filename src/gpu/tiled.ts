/**
 * The one row-tiled matrix type on the GPU: an f32 `[rows × cols]` matrix kept as row tiles,
 * each its own storage buffer no larger than one binding (maxStorageBufferBindingSize), so a
 * 151936-row embedding works under a 128 MiB binding limit. The quantization backend's Mats and
 * the forward pass's weights are both TiledMatrix, so one can be used by the other as it is.
 */
import type { GpuRuntime } from './runtime';

export interface Tile {
  buffer: GPUBuffer;
  /** First matrix row in this tile. */
  row0: number;
  rows: number;
}

/** How many rows of `cols` f32 fit one tile of at most `maxTileBytes`; a row that does not fit is an error. */
export function rowsPerTile(cols: number, maxTileBytes: number): number {
  const rowBytes = cols * 4;
  if (rowBytes > maxTileBytes) {
    throw new Error(`webgpu: one row of ${cols} f32 (${rowBytes} bytes) exceeds the storage binding limit ${maxTileBytes}`);
  }
  return Math.floor(maxTileBytes / rowBytes);
}

export class TiledMatrix {
  constructor(
    readonly rows: number,
    readonly cols: number,
    public tiles: Tile[],
    readonly label = 'matrix',
  ) {}

  /**
   * Allocate tiles of ≤ maxTileBytes through `alloc` (a pool, or runtime.createBuffer).
   * Tiles are zero-filled only when `alloc` returns fresh buffers.
   */
  static allocate(rows: number, cols: number, maxTileBytes: number, alloc: (bytes: number, label: string) => GPUBuffer, label = 'matrix'): TiledMatrix {
    if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows < 1 || cols < 1) {
      throw new Error(`webgpu: invalid matrix shape ${rows}×${cols} (${label})`);
    }
    const per = rowsPerTile(cols, maxTileBytes);
    const tiles: Tile[] = [];
    for (let r0 = 0; r0 < rows; r0 += per) {
      const n = Math.min(per, rows - r0);
      tiles.push({ buffer: alloc(n * cols * 4, `${label}[${r0}:${r0 + n}]`), row0: r0, rows: n });
    }
    return new TiledMatrix(rows, cols, tiles, label);
  }

  /** Write `[rows × cols]` f32 values (row-major) into the tiles. */
  write(rt: GpuRuntime, data: Float32Array): void {
    if (data.length !== this.rows * this.cols) throw new Error(`${this.label}: ${data.length} values for a ${this.rows}×${this.cols} matrix`);
    for (const t of this.tiles) rt.writeF32(t.buffer, data.subarray(t.row0 * this.cols, (t.row0 + t.rows) * this.cols));
  }

  /** The whole matrix back on the host. */
  async read(rt: GpuRuntime): Promise<Float32Array> {
    const out = new Float32Array(this.rows * this.cols);
    for (const t of this.tiles) out.set(await rt.readF32(t.buffer, t.rows * this.cols), t.row0 * this.cols);
    return out;
  }

  destroy(): void {
    for (const t of this.tiles) t.buffer.destroy();
    this.tiles = [];
  }
}
