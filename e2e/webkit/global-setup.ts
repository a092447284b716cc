/**
 * The WebKit suite's setup: the same built app under `vite preview` as the Chromium suite, plus
 * an Xvfb display (its own number, chosen by Xvfb) and WebKitWebDriver on a free port. The
 * browser gets a throwaway HOME whose XDG download folder the specs read downloads from.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { setup as setupApp, teardown as teardownApp } from '../global-setup';
import { MINIBROWSER } from './webdriver';

declare module 'vitest' {
  export interface ProvidedContext {
    webdriverUrl: string;
    downloadDir: string;
  }
}

let xvfb: ChildProcess | undefined;
let driver: ChildProcess | undefined;
let home: string | undefined;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function startXvfb(): Promise<string> {
  return new Promise((resolve, reject) => {
    // -displayfd: Xvfb picks a free display number and writes it to fd 3 once it accepts clients.
    const p = spawn('Xvfb', ['-displayfd', '3', '-screen', '0', '1280x1024x24', '-nolisten', 'tcp'], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
    xvfb = p;
    let err = '';
    let out = '';
    p.stderr!.on('data', (d) => (err += d));
    p.stdio[3]!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(`:${out.trim()}`);
    });
    p.once('error', (e) => reject(new Error(`cannot start Xvfb (apt-get install xvfb): ${e.message}`)));
    p.once('exit', (code) => reject(new Error(`Xvfb exited with ${code}: ${err.slice(-500)}`)));
  });
}

async function startDriver(display: string, env: NodeJS.ProcessEnv): Promise<string> {
  const port = await freePort();
  const p = spawn('WebKitWebDriver', [`--port=${port}`, '--host=127.0.0.1'], { env: { ...env, DISPLAY: display }, stdio: ['ignore', 'ignore', 'pipe'] });
  driver = p;
  let err = '';
  p.stderr!.on('data', (d) => (err += d));
  let exited: string | null = null;
  p.once('error', (e) => (exited = `cannot start WebKitWebDriver (apt-get install webkit2gtk-driver): ${e.message}`));
  p.once('exit', (code) => (exited = `WebKitWebDriver exited with ${code}: ${err.slice(-500)}`));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (exited) throw new Error(exited);
    try {
      const r = await fetch(`${url}/status`);
      if (r.ok) return url;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`WebKitWebDriver did not answer on ${url}: ${err.slice(-500)}`);
}

export async function setup(project: TestProject): Promise<void> {
  if (!existsSync(MINIBROWSER)) throw new Error(`${MINIBROWSER} is missing: apt-get install -y webkit2gtk-driver xvfb`);
  await setupApp(project);
  home = mkdtempSync(path.join(tmpdir(), 'quarot-webkit-home-'));
  const downloads = path.join(home, 'Downloads');
  mkdirSync(downloads);
  mkdirSync(path.join(home, '.config'));
  writeFileSync(path.join(home, '.config', 'user-dirs.dirs'), `XDG_DOWNLOAD_DIR="${downloads}"\n`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
    XDG_DATA_HOME: path.join(home, '.local', 'share'),
    XDG_CACHE_HOME: path.join(home, '.cache'),
    // No accessibility bus or GPU process noise under Xvfb.
    NO_AT_BRIDGE: '1',
    WEBKIT_DISABLE_COMPOSITING_MODE: '1',
  };
  // Should the run die before teardown, take the display and the driver (and its browser) along.
  process.once('exit', () => {
    for (const p of [driver, xvfb]) if (p && p.exitCode === null) p.kill('SIGTERM');
  });
  const display = await startXvfb();
  project.provide('webdriverUrl', await startDriver(display, env));
  project.provide('downloadDir', downloads);
}

export async function teardown(): Promise<void> {
  for (const p of [driver, xvfb]) {
    if (p && p.exitCode === null && p.pid) {
      const gone = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
      if (p.exitCode === null) p.kill('SIGKILL');
    }
  }
  await teardownApp();
  if (home) rmSync(home, { recursive: true, force: true });
}
