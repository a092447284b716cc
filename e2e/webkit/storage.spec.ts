/**
 * WebKit with Safari's storage features switched on (Storage API, estimate, File System /
 * OPFS): WebKit refuses OPFS in a session without persistent storage (automation here, like a
 * private window), so the app must say so, not offer browser storage, and deliver the bundle
 * as a .zip download instead — byte-identical to the CLI's folder.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliBundle, compareWithCli } from '../bundle-compare';
import { clearDownloads, innerText, openApp, pageErrors, screenshot, startSession, waitForDownload, waitForStatus } from './browser';
import type { Session } from './webdriver';

let s: Session;
const tmp = mkdtempSync(path.join(tmpdir(), 'quarot-webkit-storage-'));
beforeAll(async () => {
  s = await startSession({ browserArgs: ['--features=+StorageAPI,+StorageAPIEstimate,+FileSystem'] });
});
afterAll(async () => {
  await s?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('WebKit: browser storage refused', () => {
  it('says browser storage is refused here, offers the zip, and the zip equals the CLI bundle', async () => {
    await openApp(s, '?model=tiny-random-qwen2&rotation=none&clip=absmax');
    // The API is there, but the session has no persistent storage.
    expect(await s.execute<string>('return typeof navigator.storage.getDirectory')).toBe('function');
    const chips = await s.waitUntil<string>(
      'const c = document.querySelector("[aria-label=\\"Browser capabilities\\"]"); return c && c.innerText.includes("in workers") ? c.innerText : "";',
      'the capability badges',
    );
    expect(chips).toContain('no browser storage');
    expect(await s.execute<string>('return [...document.querySelectorAll(".chip")].find((c) => c.textContent === "no browser storage").title')).toContain('refused in this window: UnknownError');
    expect(chips).not.toContain('storage free');
    const opfs = await s.execute<{ label: string; disabled: boolean }>('const o = document.querySelector("option[value=opfs]"); return { label: o.textContent, disabled: o.disabled };');
    expect(opfs).toEqual({ label: 'browser storage (OPFS) (refused in this window: UnknownError)', disabled: true });
    expect(await innerText(s, '[data-testid="destination-note"]')).toContain('saved as a .zip download');
    await screenshot(s, '10-storage-refused');

    await s.clickButton('Run');
    await waitForStatus(s, 'done');
    const result = await innerText(s, '[data-testid="result"]');
    expect(result).not.toContain('Save to browser storage');
    expect(result).not.toContain('Save into a folder');
    clearDownloads();
    await s.clickButton('Download bundle');
    const zip = await waitForDownload('tiny-random-qwen2-quarot-w4-sp-absmax-norot.zip');
    const cliOut = path.join(tmp, 'cli-plain');
    cliBundle('tiny-random-qwen2', cliOut, ['--rotation', 'none', '--clip', 'absmax']);
    compareWithCli(zip, cliOut);
    expect(await pageErrors(s)).toEqual([]);
  });
});
