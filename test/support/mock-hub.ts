/**
 * A local stand-in for the Hugging Face Hub, enough for @huggingface/hub's modelInfo /
 * listFiles / fileDownloadInfo / downloadFile and for our own range reads, with fault
 * injection. Tests start it on 127.0.0.1 with an ephemeral port; nothing here reaches the
 * network.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, posix } from 'node:path';

export interface MockRepo {
  /** Folder whose files are the repo's files (read once at start; every revision serves them). */
  dir: string;
  /** Branch/tag name → commit sha. `main` is added with a sha derived from the repo id when absent. */
  revisions?: Record<string, string>;
  /** Gated: API metadata is public, file downloads need a Bearer token from `tokens` (401 without, 403 with another). */
  gated?: { tokens: string[] };
  /** Private: every endpoint needs a token from `tokens` (401 otherwise). */
  private?: { tokens: string[] };
}

export type MockFault =
  /** Cut the connection once a GET body for `path` reaches absolute file byte `atByte` (the first `times` times, default 1). */
  | { kind: 'drop'; path: string; atByte: number; times?: number }
  /** Answer the first `times` GET/HEAD resolve requests for `path` (or any file) with `status` (default 503). */
  | { kind: 'status'; path?: string; status?: number; times: number }
  /** Delay every resolve response for `path` (or any) by `delayMs` and throttle the body to `bytesPerSec`. */
  | { kind: 'slow'; path?: string; delayMs?: number; bytesPerSec?: number }
  /**
   * When a GET body for `path` reaches `atByte`, cut the connection and replace the file with
   * `newContent` (new ETag) — a file changing under a resumed download. Once.
   */
  | { kind: 'etagChange'; path: string; atByte: number; newContent: Uint8Array }
  /** Cut every GET body for `path` (or any file) after `everyBytes` bytes of that response: a connection that keeps dropping but keeps progressing. */
  | { kind: 'dropEvery'; path?: string; everyBytes: number }
  /** Stop sending (but keep the connection open) once a GET body for `path` reaches `atByte` (at once if it starts there), the first `times` times (default 1). */
  | { kind: 'stall'; path: string; atByte: number; times?: number };

export interface MockHubOptions {
  repos: Record<string, MockRepo>;
  faults?: MockFault[];
  /** Behave like a server without range support: every file GET is a 200 with the whole file, whatever Range says. */
  ignoreRange?: boolean;
}

export interface RequestLogEntry {
  method: string;
  /** Decoded pathname, e.g. `/org/repo/resolve/<sha>/model.safetensors`. */
  path: string;
  search: string;
  range?: string;
  ifRange?: string;
  /** Whether an Authorization header was sent (the token itself is never logged). */
  auth: boolean;
  status: number;
  /** Body bytes actually written before the response ended or was cut. */
  bytesSent: number;
  cut: boolean;
  time: number;
}

export interface MockHub {
  url: string;
  port: number;
  log: RequestLogEntry[];
  /** Replace the fault list (counters restart). */
  setFaults(faults: MockFault[]): void;
  /** Current content of a file (after any etagChange). */
  fileContent(repo: string, path: string): Uint8Array;
  /** Replace a file's content (new ETag). */
  setFile(repo: string, path: string, content: Uint8Array): void;
  close(): Promise<void>;
}

interface FileEntry {
  content: Uint8Array;
  etag: string;
  /** git blob sha1 (what the tree API calls `oid`). */
  oid: string;
}

interface RepoState {
  id: string;
  cfg: MockRepo;
  files: Map<string, FileEntry>;
  revisions: Record<string, string>;
}

interface FaultState {
  fault: MockFault;
  used: number;
}

function makeEntry(content: Uint8Array): FileEntry {
  const sha256 = createHash('sha256').update(content).digest('hex');
  const oid = createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
  return { content, etag: `"${sha256}"`, oid };
}

function walk(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    const rel = prefix ? `${prefix}/${name}` : name;
    if (statSync(full).isDirectory()) out.push(...walk(full, rel));
    else out.push(rel);
  }
  return out;
}

function isLfs(path: string, size: number): boolean {
  return path.endsWith('.safetensors') || size > 10 * 1024 * 1024;
}

function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'invalid' | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return 'invalid';
  let start: number;
  let end: number;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (!n) return 'invalid';
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || end < start) return 'invalid';
  return { start, end };
}

export async function startMockHub(opts: MockHubOptions): Promise<MockHub> {
  const repos = new Map<string, RepoState>();
  for (const [id, cfg] of Object.entries(opts.repos)) {
    const files = new Map<string, FileEntry>();
    for (const rel of walk(cfg.dir)) files.set(rel, makeEntry(new Uint8Array(readFileSync(join(cfg.dir, rel)))));
    const mainSha = createHash('sha1').update(`mock:${id}`).digest('hex');
    repos.set(id, { id, cfg, files, revisions: { main: mainSha, ...(cfg.revisions ?? {}) } });
  }
  let faults: FaultState[] = (opts.faults ?? []).map((fault) => ({ fault, used: 0 }));
  const log: RequestLogEntry[] = [];

  // Longest matching repo id, so "org/repo" wins over a hypothetical "org".
  function splitRepo(rest: string): { repo: RepoState; tail: string } | undefined {
    let best: RepoState | undefined;
    for (const r of repos.values()) {
      if ((rest === r.id || rest.startsWith(r.id + '/')) && (!best || r.id.length > best.id.length)) best = r;
    }
    if (!best) return undefined;
    return { repo: best, tail: rest.slice(best.id.length + 1) };
  }

  function resolveRev(repo: RepoState, rev: string): string | undefined {
    if (rev === 'HEAD') return repo.revisions.main;
    if (repo.revisions[rev]) return repo.revisions[rev];
    if (Object.values(repo.revisions).includes(rev)) return rev;
    return undefined;
  }

  function tokenOf(req: IncomingMessage): string | undefined {
    const h = req.headers.authorization;
    const m = h ? /^Bearer (.+)$/.exec(h) : null;
    return m ? m[1] : undefined;
  }

  /** Returns an error status when access is refused, for an API (metadata) or a file request. */
  function accessCheck(repo: RepoState, req: IncomingMessage, isFile: boolean): { status: number; code: string; msg: string } | undefined {
    const token = tokenOf(req);
    if (repo.cfg.private && !(token && repo.cfg.private.tokens.includes(token))) {
      return { status: 401, code: 'RepoNotFound', msg: 'Repository Not Found' };
    }
    if (isFile && repo.cfg.gated) {
      if (!token) return { status: 401, code: 'GatedRepo', msg: 'Access to model is restricted. You must be authenticated to access it.' };
      if (!repo.cfg.gated.tokens.includes(token)) {
        return { status: 403, code: 'GatedRepo', msg: 'Access to model is restricted and you are not in the authorized list.' };
      }
    }
    return undefined;
  }

  function matchFault<K extends MockFault['kind']>(kind: K, path: string): (FaultState & { fault: Extract<MockFault, { kind: K }> })[] {
    return faults.filter((f) => f.fault.kind === kind && (f.fault.path === undefined || f.fault.path === path)) as never;
  }

  const server = createServer((req, res) => {
    // CORS, so the app (served from another port) can read it from a browser worker.
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', 'ETag, Content-Range, Content-Length, Accept-Ranges, X-Linked-ETag, X-Linked-Size, X-Repo-Commit, X-Error-Code, X-Error-Message');
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS',
        'Access-Control-Allow-Headers': req.headers['access-control-request-headers'] ?? '*',
        'Access-Control-Max-Age': '600',
      });
      res.end();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const entry: RequestLogEntry = {
      method: req.method ?? 'GET',
      path: decodeURIComponent(url.pathname),
      search: url.search,
      range: req.headers.range,
      ifRange: req.headers['if-range'] as string | undefined,
      auth: req.headers.authorization !== undefined,
      status: 0,
      bytesSent: 0,
      cut: false,
      time: Date.now(),
    };
    log.push(entry);
    handle(req, res, url, entry).catch((e) => {
      entry.status = 500;
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(String(e));
    });
  });

  function json(res: ServerResponse, entry: RequestLogEntry, status: number, body: unknown, headers: Record<string, string> = {}): void {
    entry.status = status;
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  function error(res: ServerResponse, entry: RequestLogEntry, status: number, code: string, msg: string): void {
    json(res, entry, status, { error: msg }, { 'X-Error-Code': code, 'X-Error-Message': msg });
  }

  async function handle(req: IncomingMessage, res: ServerResponse, url: URL, entry: RequestLogEntry): Promise<void> {
    // Split on raw "/" before decoding, so an encoded revision like refs%2Fpr%2F1 stays one segment.
    const rawSegs = url.pathname.split('/').filter(Boolean);
    const segs = rawSegs.map((s) => decodeURIComponent(s));

    if (segs[0] === 'api' && segs[1] === 'models') {
      return handleApi(req, res, segs.slice(2), url, entry);
    }
    // /{repo}/(resolve|raw)/{rev}/{path...}
    const kindIdx = segs.findIndex((s, i) => i > 0 && (s === 'resolve' || s === 'raw'));
    if (kindIdx > 0) {
      const repoId = segs.slice(0, kindIdx).join('/');
      const repo = repos.get(repoId);
      if (!repo) return error(res, entry, 404, 'RepoNotFound', `Repository ${repoId} not found`);
      const denied = accessCheck(repo, req, true);
      if (denied) return error(res, entry, denied.status, denied.code, denied.msg);
      const rev = segs[kindIdx + 1];
      const sha = rev === undefined ? undefined : resolveRev(repo, rev);
      if (!sha) return error(res, entry, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      const path = segs.slice(kindIdx + 2).join('/');
      return serveFile(req, res, repo, sha, path, entry);
    }
    return error(res, entry, 404, 'NotFound', 'Not found');
  }

  function handleApi(req: IncomingMessage, res: ServerResponse, segs: string[], url: URL, entry: RequestLogEntry): void {
    const rest = segs.join('/');
    const split = splitRepo(rest);
    if (!split) return error(res, entry, 404, 'RepoNotFound', 'Repository not found');
    const { repo, tail } = split;
    const denied = accessCheck(repo, req, false);
    if (denied) return error(res, entry, denied.status, denied.code, denied.msg);
    const tailSegs = tail ? tail.split('/') : [];
    const op = tailSegs[0];
    if (op === undefined || op === 'revision') {
      const rev = op === undefined ? 'HEAD' : tailSegs.slice(1).join('/');
      const sha = resolveRev(repo, rev);
      if (!sha) return error(res, entry, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      return json(res, entry, 200, {
        _id: `mock-${repo.id}`,
        id: repo.id,
        modelId: repo.id,
        sha,
        private: !!repo.cfg.private,
        gated: repo.cfg.gated ? 'manual' : false,
        disabled: false,
        downloads: 0,
        likes: 0,
        lastModified: '2024-01-01T00:00:00.000Z',
        pipeline_tag: 'text-generation',
        library_name: 'transformers',
        tags: [],
        siblings: [...repo.files.keys()].map((rfilename) => ({ rfilename })),
      });
    }
    if (op === 'tree') {
      const rev = tailSegs[1];
      const sha = rev === undefined ? undefined : resolveRev(repo, rev);
      if (!sha) return error(res, entry, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      const dirPath = tailSegs.slice(2).join('/');
      const recursive = url.searchParams.get('recursive') === 'true';
      const items: unknown[] = [];
      const dirs = new Set<string>();
      for (const [p, f] of repo.files) {
        if (dirPath && !p.startsWith(dirPath + '/')) continue;
        const rel = dirPath ? p.slice(dirPath.length + 1) : p;
        const parts = rel.split('/');
        // Directories are listed as their own entries, as the Hub does.
        for (let i = 1; i < parts.length; i++) {
          if (!recursive && i > 1) break;
          dirs.add(posix.join(dirPath, ...parts.slice(0, i)));
        }
        if (!recursive && parts.length > 1) continue;
        const size = f.content.length;
        items.push({
          type: 'file',
          oid: f.oid,
          size,
          path: p,
          ...(isLfs(p, size) ? { lfs: { oid: f.etag.slice(1, -1), size, pointerSize: 134 } } : {}),
        });
      }
      if (dirPath && items.length === 0 && dirs.size === 0) return error(res, entry, 404, 'EntryNotFound', `${dirPath} does not exist`);
      for (const d of [...dirs].sort()) items.push({ type: 'directory', oid: createHash('sha1').update(d).digest('hex'), size: 0, path: d });
      return json(res, entry, 200, items);
    }
    return error(res, entry, 404, 'NotFound', 'Not found');
  }

  async function serveFile(req: IncomingMessage, res: ServerResponse, repo: RepoState, sha: string, path: string, entry: RequestLogEntry): Promise<void> {
    const file = repo.files.get(path);
    if (!file) return error(res, entry, 404, 'EntryNotFound', `${path} does not exist on "${sha}"`);

    for (const f of matchFault('status', path)) {
      if (f.used < f.fault.times) {
        f.used++;
        return error(res, entry, f.fault.status ?? 503, 'Unavailable', 'Service temporarily unavailable (injected)');
      }
    }
    const slow = matchFault('slow', path)[0]?.fault;
    if (slow?.delayMs) await new Promise((r) => setTimeout(r, slow.delayMs));
    if (res.destroyed) return;

    const size = file.content.length;
    let range = opts.ignoreRange ? undefined : parseRange(req.headers.range, size);
    const ifRange = req.headers['if-range'] as string | undefined;
    // If-Range with a stale validator: the client's partial copy is of another version, so send it all.
    if (range && range !== 'invalid' && ifRange !== undefined && ifRange !== file.etag) range = undefined;
    const headers: Record<string, string | number> = {
      ETag: file.etag,
      'Accept-Ranges': 'bytes',
      'X-Repo-Commit': sha,
      'Content-Type': 'application/octet-stream',
    };
    if (isLfs(path, size)) headers['X-Linked-ETag'] = file.etag;
    if (range === 'invalid') {
      entry.status = 416;
      res.writeHead(416, { ...headers, 'Content-Range': `bytes */${size}`, 'Content-Length': 0 });
      res.end();
      return;
    }
    const start = range ? range.start : 0;
    const end = range ? range.end : size - 1;
    const status = range ? 206 : 200;
    if (range) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    headers['Content-Length'] = end - start + 1;
    entry.status = status;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }

    // Where (absolute byte) to cut this response, from drop / etagChange faults.
    let cutAt = Infinity;
    let onCut: (() => void) | undefined;
    for (const f of matchFault('drop', path)) {
      if (f.used < (f.fault.times ?? 1) && f.fault.atByte > start && f.fault.atByte <= end) {
        cutAt = f.fault.atByte;
        onCut = () => f.used++;
        break;
      }
    }
    for (const f of matchFault('dropEvery', path)) {
      if (start + f.fault.everyBytes <= end && start + f.fault.everyBytes < cutAt) {
        cutAt = start + f.fault.everyBytes;
        onCut = () => f.used++;
      }
    }
    let stallAt = Infinity;
    for (const f of matchFault('stall', path)) {
      if (f.used < (f.fault.times ?? 1) && f.fault.atByte >= start && f.fault.atByte <= end && f.fault.atByte < cutAt) {
        stallAt = f.fault.atByte;
        f.used++;
        break;
      }
    }
    for (const f of matchFault('etagChange', path)) {
      if (f.used === 0 && f.fault.atByte > start && f.fault.atByte <= end && f.fault.atByte < cutAt) {
        cutAt = f.fault.atByte;
        const nc = f.fault.newContent;
        onCut = () => {
          f.used++;
          repo.files.set(path, makeEntry(nc));
        };
      }
    }

    const chunk = 64 * 1024;
    const bps = slow?.bytesPerSec;
    const content = file.content;
    let pos = start;
    const stop = Math.min(end + 1, cutAt, stallAt);
    while (pos < stop) {
      if (res.destroyed) return; // the client went away (cancelled)
      const n = Math.min(chunk, stop - pos, bps ? Math.max(1, Math.floor(bps / 20)) : chunk);
      const ok = res.write(content.subarray(pos, pos + n));
      pos += n;
      entry.bytesSent += n;
      if (bps) await new Promise((r) => setTimeout(r, (n / bps) * 1000));
      else if (!ok) await new Promise<void>((r) => res.once('drain', () => r()));
    }
    if (pos > end) {
      res.end();
      return;
    }
    if (stallAt !== Infinity && pos >= stallAt) {
      // Injected stall: the written bytes flush, then nothing more until the client gives up.
      entry.cut = true;
      await new Promise<void>((r) => res.once('close', () => r()));
      return;
    }
    // Injected fault: let the written bytes flush, then kill the socket mid-body.
    entry.cut = true;
    onCut?.();
    await new Promise<void>((r) => res.write(new Uint8Array(0), () => r()));
    res.socket?.destroy();
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    log,
    setFaults(next) {
      faults = next.map((fault) => ({ fault, used: 0 }));
    },
    fileContent(repoId, path) {
      const f = repos.get(repoId)?.files.get(path);
      if (!f) throw new Error(`mock hub: no file ${repoId}/${path}`);
      return f.content;
    },
    setFile(repoId, path, content) {
      const r = repos.get(repoId);
      if (!r) throw new Error(`mock hub: no repo ${repoId}`);
      r.files.set(path, makeEntry(content));
    },
    close() {
      return new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
