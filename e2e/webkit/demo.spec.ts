/**
 * WebKit: first load (capabilities said plainly: no WebGPU → CPU path; what storage this browser
 * offers), and demo models run by link with autorun, each bundle downloaded as a .zip and equal
 * to the CLI's output byte for byte.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliBundle, compareWithCli } from '../bundle-compare';
import { clearDownloads, innerText, openApp, pageErrors, screenshot, startSession, waitForDownload, waitForStatus } from './browser';
import type { Session } from './webdriver';

let s: Session;
const tmp = mkdtempSync(path.join(tmpdir(), 'quarot-webkit-demo-'));
beforeAll(async () => {
  s = await startSession();
});
afterAll(async () => {
  await s?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('WebKit: first load and demo links', () => {
  it('says WebGPU is missing and the CPU path is used, and which destinations this browser lacks', async () => {
    await openApp(s);
    const chips = await s.waitUntil<string>(
      'const c = document.querySelector("[aria-label=\\"Browser capabilities\\"]"); return c && c.innerText.includes("in workers") ? c.innerText : "";',
      'the worker capability badge',
    );
    expect(chips).toContain('WebGPU missing');
    expect(chips).toContain('in workers: no (CPU path)');
    expect(chips).toContain('no browser storage');
    const dest = await s.execute<{ value: string; label: string; disabled: boolean }[]>(
      'return [...document.querySelectorAll("label select option")].filter((o) => o.parentElement.parentElement.innerText.startsWith("Destination")).map((o) => ({ value: o.value, label: o.textContent, disabled: o.disabled }));',
    );
    expect(dest.find((o) => o.value === 'zip')).toMatchObject({ disabled: false });
    expect(dest.find((o) => o.value === 'folder')).toMatchObject({ disabled: true, label: expect.stringContaining('not in this browser') });
    expect(dest.find((o) => o.value === 'opfs')).toMatchObject({ disabled: true, label: expect.stringContaining('not in this browser') });
    expect(await innerText(s, '[data-testid="destination-note"]')).toContain('saved as a .zip download');
    await screenshot(s, '01-start');
    expect(await pageErrors(s)).toEqual([]);
  });

  it('runs tinystories-260k from ?model=…&autorun=1 on the CPU path; the downloaded zip equals the CLI bundle', async () => {
    await openApp(s, '?model=tinystories-260k&autorun=1');
    await waitForStatus(s, 'done');
    const progress = await innerText(s, 'section[aria-labelledby="progress-h"]');
    expect(progress).toContain('Backend: CPU');
    expect(progress).toContain('WebGPU is not available in this browser’s workers; running on the CPU backend');
    expect(await s.count('[data-testid="tensor-table"] tbody tr')).toBeGreaterThan(30);
    await s.waitFor('[data-testid="histogram-canvas"]');
    await screenshot(s, '02-done');
    clearDownloads();
    await s.clickButton('Download bundle');
    const zip = await waitForDownload('tinystories-260k-quarot-w4-sp-mse.zip');
    const cliOut = path.join(tmp, 'cli-stories');
    const stdout = cliBundle('tinystories-260k', cliOut);
    const files = compareWithCli(zip, cliOut);
    expect(files).toContain('model.safetensors');
    expect(stdout).toContain((await innerText(s, '[data-testid="summary"]')).trim());
    expect(await pageErrors(s)).toEqual([]);
  });

  it('runs the random demo by link (autorun) and its zip equals the CLI bundle', async () => {
    await openApp(s, '?model=tiny-random-qwen2&bits=8&autorun=1');
    await waitForStatus(s, 'done');
    expect(await innerText(s, '[data-testid="readme"]')).toContain('W8 sp/mse');
    clearDownloads();
    await s.clickButton('Download bundle');
    const zip = await waitForDownload('tiny-random-qwen2-quarot-w8-sp-mse.zip');
    const cliOut = path.join(tmp, 'cli-random-w8');
    cliBundle('tiny-random-qwen2', cliOut, ['--bits', '8']);
    compareWithCli(zip, cliOut);
    expect(await pageErrors(s)).toEqual([]);
  });
});
