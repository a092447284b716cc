/**
 * The GPU cannot continue: no adapter, device lost, or out of memory. Callers (the fallback
 * wrapper, createBackend) catch this one type and move the work to the CPU backend.
 */
export class GpuUnavailableError extends Error {
  readonly reason: 'no-adapter' | 'device-lost' | 'out-of-memory' | 'device-failed';
  constructor(reason: GpuUnavailableError['reason'], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GpuUnavailableError';
    this.reason = reason;
  }
}

export function isGpuUnavailable(e: unknown): e is GpuUnavailableError {
  return e instanceof GpuUnavailableError || (e instanceof Error && e.name === 'GpuUnavailableError');
}
