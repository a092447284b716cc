/**
 * A small W3C WebDriver client over fetch, enough to drive WebKitGTK's MiniBrowser through
 * WebKitWebDriver (SPEC §6): sessions, navigation, script, elements, file upload, screenshots.
 * https://www.w3.org/TR/webdriver2/
 */

const ELEMENT_KEY = 'element-6066-11e4-a52e-4f735466cecf';

export const MINIBROWSER = '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';

export class WebDriverError extends Error {
  constructor(
    readonly command: string,
    readonly error: string,
    message: string,
  ) {
    super(`WebDriver ${command}: ${error}: ${message}`);
  }
}

/** Per WebDriver command; the session's script and page-load timeouts are shorter (see Session.start). */
const COMMAND_TIMEOUT_MS = 90_000;

async function call<T>(url: string, method: 'GET' | 'POST' | 'DELETE', body?: unknown, timeoutMs = COMMAND_TIMEOUT_MS): Promise<T> {
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: body === undefined ? undefined : { 'content-type': 'application/json; charset=utf-8' },
      body: body === undefined ? undefined : JSON.stringify(body),
      // Longer than the session's script and page-load timeouts, and well under a test's 180 s: a
      // command the browser never answers fails by name instead of timing the whole test out.
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    const err = e as Error;
    if (err.name === 'TimeoutError') throw new WebDriverError(`${method} ${new URL(url).pathname}`, 'no answer', `the driver did not answer in ${timeoutMs / 1000} s`);
    throw e;
  }
  const text = await res.text();
  let json: { value?: unknown };
  try {
    json = JSON.parse(text) as { value?: unknown };
  } catch {
    throw new WebDriverError(`${method} ${url}`, `HTTP ${res.status}`, text.slice(0, 300));
  }
  const v = json.value as { error?: string; message?: string } | null;
  if (!res.ok || (v && typeof v === 'object' && typeof v.error === 'string')) {
    throw new WebDriverError(`${method} ${new URL(url).pathname}`, v?.error ?? `HTTP ${res.status}`, v?.message ?? text.slice(0, 300));
  }
  return json.value as T;
}

export interface Element {
  readonly id: string;
}

export interface SessionOptions {
  /** Extra MiniBrowser command-line arguments (e.g. `--features=+StorageAPI`). */
  browserArgs?: string[];
  width?: number;
  height?: number;
}

export class Session {
  private constructor(
    private readonly base: string,
    readonly id: string,
    readonly capabilities: Record<string, unknown>,
  ) {}

  static async start(driverUrl: string, opts: SessionOptions = {}): Promise<Session> {
    const v = await call<{ sessionId: string; capabilities: Record<string, unknown> }>(`${driverUrl}/session`, 'POST', {
      capabilities: {
        alwaysMatch: {
          browserName: 'MiniBrowser',
          'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation', ...(opts.browserArgs ?? [])] },
        },
      },
    });
    const s = new Session(driverUrl, v.sessionId, v.capabilities);
    await s.post('/timeouts', { script: 60_000, pageLoad: 60_000, implicit: 0 });
    await s.post('/window/rect', { width: opts.width ?? 1280, height: opts.height ?? 900 }).catch(() => {});
    return s;
  }

  private url(p: string): string {
    return `${this.base}/session/${this.id}${p}`;
  }
  private get<T>(p: string, timeoutMs?: number): Promise<T> {
    return call<T>(this.url(p), 'GET', undefined, timeoutMs);
  }
  private post<T>(p: string, body: unknown = {}): Promise<T> {
    return call<T>(this.url(p), 'POST', body);
  }

  async close(): Promise<void> {
    await call(`${this.base}/session/${this.id}`, 'DELETE').catch(() => {});
  }

  async goto(url: string): Promise<void> {
    await this.post('/url', { url });
  }

  currentUrl(): Promise<string> {
    return this.get<string>('/url');
  }

  /** Runs a function body in the page; `arguments[i]` are `args`. */
  execute<T>(script: string, ...args: unknown[]): Promise<T> {
    return this.post<T>('/execute/sync', { script, args });
  }

  /** Runs an async function body (awaited); its return value comes back. */
  executeAsync<T>(body: string, ...args: unknown[]): Promise<T> {
    const script = `const done = arguments[arguments.length - 1];
      (async (...args) => { ${body} })(...Array.prototype.slice.call(arguments, 0, -1))
        .then((v) => done({ ok: v }), (e) => done({ err: String(e && e.stack || e) }));`;
    return this.post<{ ok?: T; err?: string }>('/execute/async', { script, args }).then((r) => {
      if (r.err !== undefined) throw new Error(`page script failed: ${r.err}`);
      return r.ok as T;
    });
  }

  async find(css: string): Promise<Element> {
    const v = await this.post<Record<string, string>>('/element', { using: 'css selector', value: css });
    return { id: v[ELEMENT_KEY] };
  }

  async findAll(css: string): Promise<Element[]> {
    const v = await this.post<Record<string, string>[]>('/elements', { using: 'css selector', value: css });
    return v.map((e) => ({ id: e[ELEMENT_KEY] }));
  }

  async findXPath(xpath: string): Promise<Element> {
    const v = await this.post<Record<string, string>>('/element', { using: 'xpath', value: xpath });
    return { id: v[ELEMENT_KEY] };
  }

  async count(css: string): Promise<number> {
    return (await this.findAll(css)).length;
  }

  /** A real (WebDriver) click on the button whose text is exactly `label`. */
  async clickButton(label: string, within = ''): Promise<void> {
    const el = await this.waitForXPath(`${within}//button[normalize-space(.)=${xpathString(label)}]`);
    await this.post(`/element/${el.id}/click`);
  }

  async click(el: Element | string): Promise<void> {
    const e = typeof el === 'string' ? await this.waitFor(el) : el;
    await this.post(`/element/${e.id}/click`);
  }

  /** Sends keys; for `<input type=file>` the text is newline-separated absolute paths (file upload). */
  async sendKeys(el: Element | string, text: string): Promise<void> {
    const e = typeof el === 'string' ? await this.find(el) : el;
    await this.post(`/element/${e.id}/value`, { text });
  }

  async clear(el: Element | string): Promise<void> {
    const e = typeof el === 'string' ? await this.find(el) : el;
    await this.post(`/element/${e.id}/clear`);
  }

  async text(el: Element | string): Promise<string> {
    const e = typeof el === 'string' ? await this.find(el) : el;
    return this.get<string>(`/element/${e.id}/text`);
  }

  async property<T>(el: Element | string, name: string): Promise<T> {
    const e = typeof el === 'string' ? await this.find(el) : el;
    return this.get<T>(`/element/${e.id}/property/${encodeURIComponent(name)}`);
  }

  /** Waits until `css` matches an element (polling; WebDriver has no selector wait). */
  async waitFor(css: string, timeoutMs = 30_000): Promise<Element> {
    return this.poll(() => this.findAll(css).then((l) => l[0]), `an element matching ${css}`, timeoutMs);
  }

  async waitForXPath(xpath: string, timeoutMs = 30_000): Promise<Element> {
    return this.poll(
      () => this.post<Record<string, string>[]>('/elements', { using: 'xpath', value: xpath }).then((l) => (l[0] ? { id: l[0][ELEMENT_KEY] } : undefined)),
      `an element matching ${xpath}`,
      timeoutMs,
    );
  }

  /** Waits until the script's return value is truthy and returns it. */
  async waitUntil<T>(script: string, what: string, timeoutMs = 30_000, ...args: unknown[]): Promise<T> {
    return this.poll(() => this.execute<T>(script, ...args), what, timeoutMs);
  }

  private async poll<T>(probe: () => Promise<T | undefined | null | false>, what: string, timeoutMs: number): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await probe();
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 150));
    }
  }

  /**
   * PNG of the viewport. WebKitGTK 2.50's driver now and then never answers this command (seen
   * right after a finished run, on a busy machine); `timeoutMs` bounds the wait (browser.ts
   * `screenshot` retries).
   */
  async screenshot(timeoutMs?: number): Promise<Buffer> {
    return Buffer.from(await this.get<string>('/screenshot', timeoutMs), 'base64');
  }

  async elementScreenshot(el: Element | string): Promise<Buffer> {
    const e = typeof el === 'string' ? await this.find(el) : el;
    return Buffer.from(await this.get<string>(`/element/${e.id}/screenshot`), 'base64');
  }
}

export function xpathString(s: string): string {
  if (!s.includes("'")) return `'${s}'`;
  if (!s.includes('"')) return `"${s}"`;
  return `concat('${s.split("'").join(`', "'", '`)}')`;
}
