/**
 * A ModelSource over a Hugging Face Hub repo. @huggingface/hub resolves the revision, lists
 * the files and gets each file's download URL/size/ETag; tensor bytes are then fetched with
 * our own range requests, because resuming a broken body needs `If-Range` and incremental
 * reads that the library's lazy Blob does not offer.
 */
import { fileDownloadInfo, HubApiError, listFiles, modelInfo } from '@huggingface/hub';
import { CancelledError, InputError } from '../../core/errors';
import { MAX_TEXT_FILE_BYTES } from '../../core/text-file';
import type { ByteSource, ModelSource } from '../../core/ports';
import { anySignal, checkRange, raceAbort, sleep } from '../util';
import { assertModelFileSet, checkQwen2ConfigText } from '../validate';
import { FileChangedError, HubNetworkError, hubStatusError, isRetryableStatus, type HubErrorContext } from './errors';
import { ProgressTracker, type HubProgress } from './progress';

export type { HubProgress } from './progress';
export { FileChangedError, HubNetworkError } from './errors';

export interface HubSourceOptions {
  /** "owner/name". */
  repo: string;
  /** Branch, tag or commit; resolved to a commit sha once, and every later request uses the sha. */
  revision?: string;
  hubUrl?: string;
  /** hf_… token; kept in this closure only and sent only as an Authorization header. */
  token?: string;
  fetch?: typeof fetch;
  /** Cancels everything: in-flight requests, retries' back-off waits, queued prefetches. */
  signal?: AbortSignal;
  onProgress?: (p: HubProgress) => void;
  /** Failed attempts (network error, 5xx, cut body) allowed per range request without progress. Default 5. */
  maxRetries?: number;
  /** Range requests (prefetch blocks) outstanding at once. Default 2. */
  inFlight?: number;
  /** First back-off delay; doubles each retry, with jitter, capped at 10 s. Default 500 ms. */
  retryBaseMs?: number;
  /** Largest coalesced range request. Default 32 MiB. */
  maxRequestBytes?: number;
  /** Ranges at most this far apart are fetched in one request (the gap is downloaded and dropped). Default 64 KiB. */
  coalesceGap?: number;
  /** First bytes of each file fetched in one request on the first small read (the safetensors header). Default 256 KiB. */
  headBytes?: number;
  /** Check config.json (model_type qwen2) and the file set. Default true. */
  validate?: boolean;
  /**
   * A request that receives nothing for this long is abandoned and retried (a stalled
   * connection); a notice is given after a third of it. Default 30 s.
   */
  stallTimeoutMs?: number;
  /** Things worth telling the user that are not errors (a stalled connection, a server ignoring Range). */
  onNotice?: (message: string) => void;
}

/**
 * `https://user:hf_x@host/` → the URL without credentials and the token they carried (the
 * password, or a user name that is an hf_ token). Credentials must never be printed or stored.
 */
export function stripUrlCredentials(url: string): { url: string; token?: string } {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^@/?#]*)@/i.exec(url.trim());
  if (!m) return { url: url.trim() };
  const [user, pass] = m[2].split(':', 2).map((x) => decodeURIComponent(x));
  const token = pass || (user?.startsWith('hf_') ? user : undefined);
  return { url: m[1] + url.trim().slice(m[0].length), token: token || undefined };
}

export interface ByteRange {
  offset: number;
  length: number;
}

export interface HubFileInfo {
  path: string;
  size: number;
  /** LFS sha256 (or git oid) from the tree listing. */
  oid?: string;
}

export interface HubModelSource extends ModelSource {
  readonly repo: string;
  /** The resolved commit sha (what the bundle records). */
  readonly revision: string;
  /** The revision as asked for ("main", a tag, …). */
  readonly requestedRevision: string;
  /** Files with sizes, from the tree listing at the resolved sha. */
  readonly files: HubFileInfo[];
  /**
   * The pipeline's read plan for one file, in processing order. Adjacent ranges are fetched
   * as few large requests, at most `inFlight` at a time, ahead of the reads that use them;
   * each block is dropped once every planned byte in it has been read. Resolves when queued.
   */
  prefetch(path: string, ranges: ByteRange[]): Promise<void>;
  /** Drop queued prefetch blocks (all files, or one). Running requests finish and are discarded. */
  cancelPrefetch(path?: string): void;
  /** Add bytes to the progress total (for ETA) that are read without a prefetch plan. */
  expectBytes(n: number): void;
  /** Whole file, restarting from scratch (reported in progress.restarts) if its ETag changes. */
  readFile(path: string): Promise<Uint8Array>;
  progress(): HubProgress;
  /** Stop everything this source started (queued and running requests). */
  close(): void;
}

interface ResolvedFile {
  path: string;
  url: string;
  size: number;
  etag: string;
}

interface Planned {
  start: number;
  end: number;
  remaining: number;
}

interface Block {
  file: HubFileReader;
  start: number;
  end: number;
  planned: Planned[];
  remaining: number;
  state: 'queued' | 'loading' | 'released';
  promise?: Promise<Uint8Array>;
}

const MiB = 1024 * 1024;

interface Ctx {
  opts: Required<Pick<HubSourceOptions, 'maxRetries' | 'inFlight' | 'retryBaseMs' | 'maxRequestBytes' | 'coalesceGap' | 'headBytes' | 'stallTimeoutMs'>>;
  notice(message: string): void;
  hubHost: string;
  /** Said once per source: the server answers range requests with whole files. */
  rangeIgnoredNoticed: boolean;
  fetch: typeof fetch;
  token?: string;
  /** Aborted by the caller's signal or by close(). */
  signal: AbortSignal;
  progress: ProgressTracker;
  errCtx(path?: string, code?: string | null): HubErrorContext;
  scheduler: Scheduler;
}

/** Starts queued blocks (from every file) in plan order while fewer than `inFlight` are held. */
class Scheduler {
  queue: Block[] = [];
  held = 0;
  constructor(private readonly limit: number) {}

  enqueue(blocks: Block[]): void {
    this.queue.push(...blocks);
    this.pump();
  }

  pump(): void {
    while (this.held < this.limit && this.queue.length > 0) this.start(this.queue.shift()!);
  }

  /** A read needs this block now: start it even over the limit (only happens when reads skip ahead of the plan). */
  demand(b: Block): void {
    if (b.state !== 'queued') return;
    const i = this.queue.indexOf(b);
    if (i >= 0) this.queue.splice(i, 1);
    this.start(b);
  }

  private start(b: Block): void {
    b.state = 'loading';
    this.held++;
    b.promise = b.file.fetchRange(b.start, b.end);
    // A failed block is dropped so later reads of it go direct (and surface the error themselves).
    b.promise.catch(() => this.release(b));
  }

  release(b: Block): void {
    if (b.state === 'released') return;
    const wasHeld = b.state === 'loading';
    b.state = 'released';
    b.file.blocks = b.file.blocks.filter((x) => x !== b);
    if (wasHeld) this.held--;
    else this.queue = this.queue.filter((x) => x !== b);
    this.pump();
  }

  cancel(file?: HubFileReader): void {
    for (const b of [...this.queue]) if (!file || b.file === file) this.release(b);
  }
}

/** "0.3" or "30": durations in messages, in seconds. */
function seconds(ms: number): string {
  return (ms / 1000).toFixed(ms < 10_000 ? 1 : 0);
}

/**
 * Watches one request: says so when no bytes arrived for a third of the stall timeout, and
 * aborts the request (to be retried) when none arrived for all of it.
 */
class StallWatch {
  private readonly ctl = new AbortController();
  readonly signal = this.ctl.signal;
  fired = false;
  private noticed = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private last = Date.now();

  constructor(
    private readonly ctx: Ctx,
    private readonly path: string,
  ) {
    this.arm();
  }

  private arm(): void {
    const limit = this.ctx.opts.stallTimeoutMs;
    const idle = Date.now() - this.last;
    const wait = this.noticed ? limit - idle : Math.min(limit, limit / 3) - idle;
    this.timer = setTimeout(() => {
      const quiet = Date.now() - this.last;
      if (quiet >= limit) {
        this.fired = true;
        this.ctx.notice(`no data from ${this.ctx.hubHost} for ${seconds(limit)} s while reading ${this.path}; retrying`);
        this.ctl.abort();
        return;
      }
      if (!this.noticed && quiet >= limit / 3) {
        this.noticed = true;
        this.ctx.notice(`waiting for ${this.ctx.hubHost}: no data for ${seconds(quiet)} s while reading ${this.path} (gives up after ${seconds(limit)} s)`);
      }
      this.arm();
    }, Math.max(10, wait));
    // A watch must not keep the process alive on its own.
    (this.timer as { unref?: () => void }).unref?.();
  }

  alive(): void {
    this.last = Date.now();
    this.noticed = false;
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}

/** ByteSource for one Hub file pinned to the ETag seen when it was opened. */
class HubFileReader implements ByteSource {
  readonly name: string;
  readonly size: number;
  blocks: Block[] = [];
  /** Set once the ETag changed: every later read fails, the caller must reopen. */
  changed?: FileChangedError;
  private head?: Promise<Uint8Array>;

  constructor(
    private readonly ctx: Ctx,
    readonly info: ResolvedFile,
  ) {
    this.name = info.path;
    this.size = info.size;
  }

  async read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    checkRange(this.name, this.size, offset, length);
    if (signal?.aborted || this.ctx.signal.aborted) throw new CancelledError();
    if (length === 0) return new Uint8Array(0);
    if (this.changed) throw this.changed;
    const end = offset + length;

    const cover = this.coveringBlocks(offset, end);
    if (cover) return this.readFromBlocks(cover, offset, end, signal);

    // Small reads at the start (the 8-byte prefix, then the JSON header) share one request.
    const headLen = Math.min(this.size, this.ctx.opts.headBytes);
    if (end <= headLen) {
      this.head ??= this.fetchRange(0, headLen);
      this.head.catch(() => (this.head = undefined));
      const h = await raceAbort(this.head, signal);
      return h.slice(offset, end);
    }
    return this.fetchRange(offset, end, signal);
  }

  /** Blocks that together cover [a, b) contiguously, or undefined. */
  private coveringBlocks(a: number, b: number): Block[] | undefined {
    if (this.blocks.length === 0) return undefined;
    const out: Block[] = [];
    let pos = a;
    while (pos < b) {
      const blk = this.blocks.find((x) => x.start <= pos && pos < x.end);
      if (!blk) return undefined;
      out.push(blk);
      pos = blk.end;
    }
    return out;
  }

  private async readFromBlocks(blocks: Block[], a: number, b: number, signal?: AbortSignal): Promise<Uint8Array> {
    for (const blk of blocks) this.ctx.scheduler.demand(blk);
    const datas = await raceAbort(Promise.all(blocks.map((blk) => blk.promise!)), signal);
    let out: Uint8Array;
    if (blocks.length === 1) {
      // Zero-copy view; the block is forgotten below once fully read, the view keeps it alive only as long as the caller does.
      out = datas[0].subarray(a - blocks[0].start, b - blocks[0].start);
    } else {
      out = new Uint8Array(b - a);
      blocks.forEach((blk, i) => {
        const s = Math.max(a, blk.start);
        const e = Math.min(b, blk.end);
        out.set(datas[i].subarray(s - blk.start, e - blk.start), s - a);
      });
    }
    for (const blk of blocks) {
      for (const p of blk.planned) {
        const ov = Math.min(b, p.end) - Math.max(a, p.start);
        if (ov > 0 && p.remaining > 0) {
          const used = Math.min(ov, p.remaining);
          p.remaining -= used;
          blk.remaining -= used;
        }
      }
      if (blk.remaining <= 0) this.ctx.scheduler.release(blk);
    }
    return out;
  }

  plan(ranges: ByteRange[]): Block[] {
    const { maxRequestBytes: maxB, coalesceGap: gap } = this.ctx.opts;
    const blocks: Block[] = [];
    let cur: Block | undefined;
    const push = (start: number, end: number) => {
      const p: Planned = { start, end, remaining: end - start };
      if (cur && start >= cur.end && start - cur.end <= gap && end - cur.start <= maxB) {
        cur.end = end;
        cur.planned.push(p);
        cur.remaining += p.remaining;
        return;
      }
      cur = { file: this, start, end, planned: [p], remaining: p.remaining, state: 'queued' };
      blocks.push(cur);
    };
    for (const r of ranges) {
      checkRange(this.name, this.size, r.offset, r.length);
      // Tensors larger than one request are split into request-sized pieces.
      for (let s = r.offset; s < r.offset + r.length; s += maxB) push(s, Math.min(r.offset + r.length, s + maxB));
    }
    this.blocks.push(...blocks);
    return blocks;
  }

  /**
   * Bytes [start, end) with retries. A broken body resumes from the last byte received,
   * with `If-Range: <etag>`: a 206 continues the same version, a 200 means the file changed.
   */
  async fetchRange(start: number, end: number, readSignal?: AbortSignal): Promise<Uint8Array> {
    const { ctx, info } = this;
    const signal = anySignal(ctx.signal, readSignal);
    const out = new Uint8Array(end - start);
    let got = 0;
    // Only attempts that brought no new bytes count against the limit: a connection that keeps
    // dropping but keeps delivering finishes, however many times it drops.
    let failures = 0;
    let totalFailures = 0;
    while (got < out.length) {
      if (signal?.aborted) throw new CancelledError();
      if (this.changed) throw this.changed;
      let retryAfterMs = 0;
      let failure: string;
      const before = got;
      const stall = new StallWatch(ctx, info.path);
      ctx.progress.active++;
      try {
        const resp = await ctx.fetch(info.url, {
          headers: {
            Range: `bytes=${start + got}-${end - 1}`,
            'If-Range': info.etag,
            ...(ctx.token ? { Authorization: `Bearer ${ctx.token}` } : {}),
          },
          signal: anySignal(signal, stall.signal),
        });
        if (resp.status === 206 || resp.status === 200) {
          const etag = resp.headers.get('x-linked-etag') ?? resp.headers.get('etag');
          const cr = resp.headers.get('content-range');
          const crStart = cr ? Number(/bytes (\d+)-/.exec(cr)?.[1]) : 0;
          if ((etag && etag !== info.etag) || (resp.status === 200 && !etag)) {
            await resp.body?.cancel().catch(() => {});
            this.changed = new FileChangedError(info.path, info.etag, etag ?? undefined);
            throw this.changed;
          }
          // 200 with the same ETag: the server ignored Range; skip to our offset in the full body.
          const skip = resp.status === 200 ? start + got : 0;
          if (resp.status === 200 && start + got > 0 && !ctx.rangeIgnoredNoticed) {
            ctx.rangeIgnoredNoticed = true;
            ctx.notice(`${ctx.hubHost} ignores HTTP Range requests (answers 200 with the whole file); reading each part from the start of its file, which is slower`);
          }
          if (resp.status === 206 && crStart !== start + got) {
            await resp.body?.cancel().catch(() => {});
            throw new HubNetworkError(`The Hub answered a range request for ${info.path} with the wrong range (${cr}).`);
          }
          got = await this.consume(resp, out, got, skip, stall);
          if (got >= out.length) break;
          failure = 'response body ended early';
        } else if (isRetryableStatus(resp.status)) {
          const ra = Number(resp.headers.get('retry-after'));
          if (Number.isFinite(ra) && ra > 0) retryAfterMs = Math.min(ra * 1000, 30_000);
          await resp.body?.cancel().catch(() => {});
          failure = `HTTP ${resp.status}`;
        } else {
          await resp.body?.cancel().catch(() => {});
          if (resp.status === 416) {
            throw new InputError(`${info.path} is shorter on the Hub than listed (${info.size} bytes); range ${start + got}-${end - 1} refused`, { file: info.path });
          }
          throw hubStatusError(resp.status, ctx.errCtx(info.path, resp.headers.get('x-error-code')));
        }
      } catch (e) {
        if (signal?.aborted) throw new CancelledError();
        if (e instanceof FileChangedError || e instanceof InputError || e instanceof HubNetworkError || e instanceof CancelledError) throw e;
        failure = stall.fired ? `no data for ${seconds(ctx.opts.stallTimeoutMs)} s (stalled connection)` : e instanceof Error ? e.message : String(e);
        // Bytes received before the cut are kept: `consume` advances `got` as it goes.
        got = Math.max(got, (e as { got?: number }).got ?? got);
      } finally {
        stall.stop();
        ctx.progress.active--;
      }
      failures = got > before ? 1 : failures + 1;
      totalFailures++;
      if (failures > ctx.opts.maxRetries) {
        throw new HubNetworkError(
          `Could not download ${info.path} from ${ctx.errCtx().repo} on ${ctx.hubHost}: ${failure} (bytes ${start + got}-${end - 1}; ${failures} attempts in a row brought no data, ${totalFailures} failed in all). Check the connection and run again.`,
        );
      }
      ctx.progress.retries++;
      // A cut after new bytes is resumed at once; back-off is for attempts that brought nothing.
      const backoff = got > before ? 0 : Math.min(10_000, ctx.opts.retryBaseMs * 2 ** (failures - 1)) * (0.75 + Math.random() * 0.5);
      await sleep(Math.max(backoff, retryAfterMs), signal);
    }
    ctx.progress.maybeEmit(true);
    return out;
  }

  /** Copy the body into `out` from `got` on; on a broken stream, throw with `.got` set to what arrived. */
  private async consume(resp: Response, out: Uint8Array, got: number, skip: number, stall: StallWatch): Promise<number> {
    if (!resp.body) {
      const buf = new Uint8Array(await resp.arrayBuffer()).subarray(skip);
      const n = Math.min(buf.length, out.length - got);
      out.set(buf.subarray(0, n), got);
      this.ctx.progress.addBytes(n, this.name);
      return got + n;
    }
    const reader = resp.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return got;
        stall.alive();
        let chunk = value;
        if (skip > 0) {
          const d = Math.min(skip, chunk.length);
          skip -= d;
          chunk = chunk.subarray(d);
        }
        const n = Math.min(chunk.length, out.length - got);
        out.set(chunk.subarray(0, n), got);
        got += n;
        this.ctx.progress.addBytes(n, this.name);
        if (got >= out.length) {
          await reader.cancel().catch(() => {});
          return got;
        }
      }
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      (err as Error & { got?: number }).got = got;
      throw err;
    }
  }
}

/** Resolve the revision, list files, check the model, and return the source. */
export async function createHubSource(options: HubSourceOptions): Promise<HubModelSource> {
  const repo = options.repo.trim().replace(/^https?:\/\/[^/]+\//, '').replace(/\/+$/, '');
  const requestedRevision = options.revision ?? 'main';
  // Credentials in the URL become the token and are dropped from every URL used or shown.
  const stripped = stripUrlCredentials(options.hubUrl ?? 'https://huggingface.co');
  const hubUrl = stripped.url.replace(/\/+$/, '');
  const token = options.token?.trim() || stripped.token?.trim() || undefined;
  const hubHost = (() => {
    try {
      return new URL(hubUrl).host;
    } catch {
      throw new InputError(`--hub-url ${hubUrl} is not a URL; expected e.g. https://huggingface.co`);
    }
  })();
  const stallTimeoutMs = options.stallTimeoutMs ?? 30_000;
  if (!/^[\w.-]+(\/[\w.-]+)?$/.test(repo)) {
    throw new InputError(`"${options.repo}" is not a Hub repository id (expected owner/name, e.g. Qwen/Qwen2.5-0.5B)`);
  }
  if (token !== undefined && !/^hf_\w+$/.test(token)) {
    throw new InputError('The Hugging Face token must start with "hf_" (copy it from your Hub settings → Access Tokens).');
  }
  const closer = new AbortController();
  const signal = anySignal(options.signal, closer.signal)!;
  const baseFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const progress = new ProgressTracker(options.onProgress);
  /** X-Error-Code of failed responses by URL: HubApiError lacks headers, and the code tells repo / revision / file 404s apart. */
  const errorCodes = new Map<string, string | null>();

  // Every request (the library's and ours) goes through here: one place for cancellation and counting.
  const wrappedFetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    if (signal.aborted) throw new CancelledError();
    progress.requests++;
    try {
      const resp = await baseFetch(input, { ...init, signal: anySignal(signal, init?.signal ?? undefined) });
      if (!resp.ok) {
        const u = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
        errorCodes.set(u, resp.headers.get('x-error-code'));
        if (resp.url) errorCodes.set(resp.url, resp.headers.get('x-error-code'));
      }
      return resp;
    } catch (e) {
      if (signal.aborted) throw new CancelledError();
      throw e;
    }
  }) as typeof fetch;

  const retryBaseMs = options.retryBaseMs ?? 500;
  const maxRetries = options.maxRetries ?? 5;
  // The library does not retry; its metadata calls get the same back-off as our range reads,
  // and a time limit on the response headers (a stalled connection would otherwise wait 300 s).
  const libraryFetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    for (let attempt = 1; ; attempt++) {
      let resp: Response | undefined;
      const headersTimeout = new AbortController();
      const timer = setTimeout(() => headersTimeout.abort(), stallTimeoutMs);
      try {
        resp = await wrappedFetch(input, { ...init, signal: anySignal(init?.signal ?? undefined, headersTimeout.signal) });
        clearTimeout(timer);
        resp = await rangeProbeAnswer(init, resp);
        if (!isRetryableStatus(resp.status) || attempt > maxRetries) return resp;
        await resp.body?.cancel().catch(() => {});
      } catch (e) {
        clearTimeout(timer);
        if (e instanceof CancelledError) throw e;
        if (attempt > maxRetries) {
          throw headersTimeout.signal.aborted ? new Error(`no answer from ${hubHost} for ${seconds(stallTimeoutMs)} s (stalled connection)`) : e;
        }
        if (headersTimeout.signal.aborted) options.onNotice?.(`no answer from ${hubHost} for ${seconds(stallTimeoutMs)} s; retrying`);
      }
      progress.retries++;
      await sleep(Math.min(10_000, retryBaseMs * 2 ** (attempt - 1)) * (0.75 + Math.random() * 0.5), signal);
    }
  }) as typeof fetch;

  /**
   * The library sizes a file with a `Range: bytes=0-0` request and needs a 206 with
   * Content-Range. A server that ignores Range answers 200 with the whole file: drop the body
   * and answer the library as a 206 would, taking the size from Content-Length (our own reads
   * handle 200s by skipping to the offset they need).
   */
  const rangeProbeAnswer = async (init: RequestInit | undefined, resp: Response): Promise<Response> => {
    const range = new Headers(init?.headers).get('range');
    if (resp.status !== 200 || range !== 'bytes=0-0' || resp.headers.has('content-range')) return resp;
    const length = resp.headers.get('content-length');
    await resp.body?.cancel().catch(() => {});
    if (length === null || !/^\d+$/.test(length)) return resp;
    const headers = new Headers(resp.headers);
    headers.set('content-range', `bytes 0-0/${length}`);
    headers.set('content-length', '0');
    options.onNotice?.(`${hubHost} ignores HTTP Range requests (answers 200 with the whole file); reading will be slower`);
    rangeIgnoredNoticed = true;
    return new Response(null, { status: 206, statusText: 'Partial Content', headers });
  };
  let rangeIgnoredNoticed = false;

  let sha = requestedRevision;
  const errCtx = (path?: string, code?: string | null): HubErrorContext => ({ repo, revision: sha, hubUrl, hasToken: !!token, path, code });

  /** Library errors → our messages; anything else passes through with the token scrubbed. */
  const mapError = (e: unknown, path?: string): Error => {
    if (signal.aborted) return new CancelledError();
    if (e instanceof HubApiError) return hubStatusError(e.statusCode, errCtx(path, errorCodes.get(e.url)));
    if (e instanceof InputError || e instanceof CancelledError) return e;
    const msg = e instanceof Error ? e.message : String(e);
    return new HubNetworkError(`Could not reach ${hubUrl} for ${repo}: ${token ? msg.split(token).join('hf_***') : msg}`);
  };
  const creds = { hubUrl, fetch: libraryFetch, ...(token ? { accessToken: token } : {}) };

  const ctx: Ctx = {
    opts: {
      maxRetries,
      inFlight: Math.max(1, options.inFlight ?? 2),
      retryBaseMs,
      maxRequestBytes: options.maxRequestBytes ?? 32 * MiB,
      coalesceGap: options.coalesceGap ?? 64 * 1024,
      headBytes: options.headBytes ?? 256 * 1024,
      stallTimeoutMs,
    },
    notice: (m) => options.onNotice?.(m),
    hubHost,
    get rangeIgnoredNoticed() {
      return rangeIgnoredNoticed;
    },
    set rangeIgnoredNoticed(v: boolean) {
      rangeIgnoredNoticed = v;
    },
    fetch: wrappedFetch,
    token,
    signal,
    progress,
    errCtx,
    scheduler: new Scheduler(Math.max(1, options.inFlight ?? 2)),
  };

  // 1. Revision → commit sha, so every later request sees the same snapshot.
  try {
    const info = await modelInfo({ name: repo, revision: requestedRevision, additionalFields: ['sha'], ...creds });
    if (!info.sha) throw new HubNetworkError(`The Hub did not report a commit sha for ${repo}@${requestedRevision}.`);
    sha = info.sha;
  } catch (e) {
    throw mapError(e);
  }
  if (requestedRevision !== sha) errorCodes.clear();

  // 2. Files at that sha.
  const files: HubFileInfo[] = [];
  try {
    for await (const f of listFiles({ repo, revision: sha, recursive: true, ...creds })) {
      if (f.type === 'file') files.push({ path: f.path, size: f.size, oid: f.lfs?.oid ?? f.oid });
    }
  } catch (e) {
    throw mapError(e);
  }
  const paths = files.map((f) => f.path);

  const resolved = new Map<string, Promise<HubFileReader>>();
  const openReader = (path: string): Promise<HubFileReader> => {
    let p = resolved.get(path);
    if (!p) {
      p = (async () => {
        if (!paths.includes(path)) throw hubStatusError(404, errCtx(path, 'EntryNotFound'));
        let info;
        try {
          info = await fileDownloadInfo({ repo, revision: sha, path, ...creds });
        } catch (e) {
          throw mapError(e, path);
        }
        if (!info) throw hubStatusError(404, errCtx(path, 'EntryNotFound'));
        return new HubFileReader(ctx, { path, url: info.url, size: info.size, etag: info.etag });
      })();
      resolved.set(path, p);
      p.catch(() => resolved.delete(path));
    }
    return p.then((r) => {
      // A reader whose file changed is replaced by a fresh one on the next open().
      if (r.changed) {
        resolved.delete(path);
        ctx.scheduler.cancel(r);
        return openReader(path);
      }
      return r;
    });
  };

  const readFile = async (path: string): Promise<Uint8Array> => {
    for (let attempt = 0; ; attempt++) {
      const r = await openReader(path);
      try {
        return await r.read(0, r.size);
      } catch (e) {
        if (!(e instanceof FileChangedError) || attempt >= 2) throw e;
        // Restart from byte 0 of the new version; nothing of the old one is kept.
        progress.restarts++;
        progress.maybeEmit(true);
      }
    }
  };

  const label = `${repo}@${sha}`;
  const source: HubModelSource = {
    label,
    repo,
    revision: sha,
    requestedRevision,
    files,
    listFiles: async () => [...paths],
    open: (path) => openReader(path),
    readFile,
    async prefetch(path, ranges) {
      const r = await openReader(path);
      const blocks = r.plan(ranges);
      progress.totalBytes += ranges.reduce((s, x) => s + x.length, 0);
      ctx.scheduler.enqueue(blocks);
    },
    cancelPrefetch(path) {
      if (path === undefined) return ctx.scheduler.cancel();
      const p = resolved.get(path);
      if (p) void p.then((r) => ctx.scheduler.cancel(r), () => {});
    },
    expectBytes(n) {
      progress.totalBytes += n;
    },
    progress: () => progress.snapshot(),
    close() {
      ctx.scheduler.cancel();
      closer.abort();
    },
  };

  // 3. Is it a Qwen2 checkpoint with everything it needs?
  if (options.validate !== false) {
    const where = `${repo}@${requestedRevision}`;
    if (!paths.some((p) => p.endsWith('.safetensors'))) {
      throw new InputError(
        `${where} has no .safetensors files${paths.some((p) => /\.(bin|pt|pth|gguf)$/.test(p)) ? ' (only PyTorch/GGUF weights, which this tool cannot read)' : ''}; pick a repo with safetensors weights.`,
      );
    }
    if (!paths.includes('config.json')) throw new InputError(`${where} has no config.json, so it is not a Transformers model repo.`, { file: 'config.json' });
    const configSize = files.find((f) => f.path === 'config.json')?.size ?? 0;
    if (configSize > MAX_TEXT_FILE_BYTES) {
      throw new InputError(`config.json of ${where} is ${configSize} bytes; expected a small JSON file (at most ${MAX_TEXT_FILE_BYTES} bytes)`, { file: 'config.json' });
    }
    const dec = new TextDecoder();
    checkQwen2ConfigText(dec.decode(await readFile('config.json')), `config.json of ${where}`);
    await assertModelFileSet(paths, async (p) => dec.decode(await readFile(p)), where);
  }
  return source;
}
