/**
 * Rows of f32 that live in a storage buffer of a runtime: what a GPU stage can read in place
 * (the forward pass's GpuActivation is one: a linear's input seen by a hook).
 */
import type { GpuRuntime } from './runtime';

export interface DeviceRows {
  readonly runtime: GpuRuntime;
  /** `[rows × cols]` f32 from offset 0 (the buffer may be larger). */
  readonly buffer: GPUBuffer;
  readonly rows: number;
  readonly cols: number;
}

/** `x` as device rows of `runtime`, or null when it lives elsewhere (the host, another device). */
export function deviceRowsOn(runtime: GpuRuntime, x: object): DeviceRows | null {
  const d = x as Partial<DeviceRows>;
  return d.runtime === runtime && d.buffer !== undefined && typeof d.rows === 'number' && typeof d.cols === 'number' ? (d as DeviceRows) : null;
}
