/** Shared checks for bundle sinks. */

/** Bundle paths are relative, "/"-separated, without "..", so a sink can never write outside its root. */
export function checkBundlePath(path: string): string[] {
  const parts = path.split('/');
  if (!path || path.startsWith('/') || path.includes('\\') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new Error(`invalid bundle path ${JSON.stringify(path)} (must be relative, "/"-separated, without "." or "..")`);
  }
  return parts;
}

/** Bookkeeping every sink does: one writer per path, declared sizes honoured, state transitions. */
export class SinkState {
  state: 'open' | 'finalizing' | 'complete' | 'aborted' = 'open';
  /** path → bytes written, once closed. */
  readonly closed = new Map<string, number>();
  readonly open = new Set<string>();

  constructor(private readonly label: string) {}

  begin(path: string): void {
    this.assertOpen();
    checkBundlePath(path);
    if (this.open.has(path) || this.closed.has(path)) throw new Error(`${this.label}: ${path} was already written`);
    this.open.add(path);
  }

  end(path: string, written: number, declared: number | undefined): void {
    this.open.delete(path);
    if (declared !== undefined && written !== declared) {
      throw new Error(`${this.label}: ${path} got ${written} bytes but ${declared} were announced`);
    }
    this.closed.set(path, written);
  }

  assertOpen(): void {
    if (this.state !== 'open') throw new Error(`${this.label}: sink is ${this.state}`);
  }

  startFinalize(): void {
    this.assertOpen();
    if (this.open.size > 0) throw new Error(`${this.label}: cannot finalize with files still open: ${[...this.open].join(', ')}`);
    this.state = 'finalizing';
  }
}

export function randomSuffix(): string {
  const b = new Uint8Array(6);
  globalThis.crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export const MANIFEST_FILE = 'manifest.sha256';
