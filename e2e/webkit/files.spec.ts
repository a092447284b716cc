/**
 * WebKit: the fixture's folder chosen through the page's file input (WebDriver file upload) runs
 * to the end; a broken model — a truncated safetensors file — shows its specific error before
 * running, Run stays disabled with the reason, and no bundle is offered.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { innerText, openApp, pageErrors, ROOT, screenshot, startSession, waitForStatus } from './browser';
import type { Session } from './webdriver';

const FIXTURE = path.resolve(ROOT, '..', 'shared', 'fixtures', 'tinystories-260k');

let s: Session;
const tmp = mkdtempSync(path.join(tmpdir(), 'quarot-webkit-files-'));
beforeAll(async () => {
  s = await startSession();
});
afterAll(async () => {
  await s?.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** Every file of `dir`, given to the "Choose files…" input as one WebDriver upload. */
async function chooseFolderFiles(dir: string): Promise<void> {
  await s.clickButton('Files / folder');
  const input = await s.waitFor('[data-testid="dropzone"] input[type=file][multiple]');
  await s.sendKeys(input, readdirSync(dir).map((f) => path.join(dir, f)).join('\n'));
}

describe('WebKit: model files chosen in the page', () => {
  it('runs the fixture folder chosen through the file input', async () => {
    await openApp(s, '?backend=cpu&bits=8');
    await chooseFolderFiles(FIXTURE);
    expect(await innerText(s, '[data-testid="dropzone"]')).toContain(`${readdirSync(FIXTURE).length} files`);
    await s.waitUntil('return document.querySelector("[data-testid=preflight]")?.innerText.includes("62")', 'the preflight summary (62 tensors)');
    await s.clickButton('Run');
    await waitForStatus(s, 'done');
    expect(await s.count('[data-testid="tensor-table"] tbody tr')).toBeGreaterThan(30);
    expect(await innerText(s, '[data-testid="readme"]')).toContain('W8 sp/mse');
    // A chosen model has no link of its own: the URL keeps only the settings.
    expect(new URL(await s.currentUrl()).searchParams.get('model')).toBeNull();
    await screenshot(s, '05-chosen-files');
    expect(await pageErrors(s)).toEqual([]);
  });

  it('runs a model dropped on the page as files (a DataTransfer drop event)', async () => {
    await openApp(s, '?backend=cpu');
    await s.clickButton('Files / folder');
    await s.waitFor('[data-testid="dropzone"]');
    const names = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
    const payload = names.map((name) => ({ name, b64: readFileSync(path.join(FIXTURE, name)).toString('base64') }));
    await s.execute(`
      const dt = new DataTransfer();
      for (const f of arguments[0]) {
        const bin = atob(f.b64);
        const bytes = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
        dt.items.add(new File([bytes], f.name));
      }
      const zone = document.querySelector('[data-testid="dropzone"]');
      zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
      zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));`, payload);
    await s.waitUntil('return document.querySelector("[data-testid=dropzone]")?.innerText.includes("5 files")', 'the dropped files');
    await s.clickButton('Run');
    await waitForStatus(s, 'done');
    expect(await innerText(s, '[data-testid="readme"]')).toContain('W4 sp/mse');
    expect(await pageErrors(s)).toEqual([]);
  });

  it('names the file and problem of a truncated safetensors file before running, disables Run, and offers no bundle', async () => {
    const broken = path.join(tmp, 'broken');
    rmSync(broken, { recursive: true, force: true });
    mkdirSync(broken); // copies: the fixture is read-only
    for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(path.join(FIXTURE, f), path.join(broken, f));
    writeFileSync(path.join(broken, 'model.safetensors'), readFileSync(path.join(FIXTURE, 'model.safetensors')).subarray(0, 600_000));

    await openApp(s, '?backend=cpu');
    await chooseFolderFiles(broken);
    // Seen before running (headers only)…
    await s.waitFor('[data-testid="error"]');
    expect(await innerText(s, '[data-testid="error"]')).toMatch(/model\.safetensors.*past its end \(file is 600000 bytes\)/s);
    // …and Run stays off with the reason beside it: one message, not the same error again after a click.
    expect(await s.property<boolean>(await s.findXPath("//button[normalize-space(.)='Run']"), 'disabled')).toBe(true);
    expect(await innerText(s, '[data-testid="run-blocked"]')).toMatch(/cannot be processed/);
    await s.clickButton('Run'); // a real click on the disabled button starts nothing…
    await new Promise((r) => setTimeout(r, 1000)); // …given the time a started run would take to say so
    expect(await s.execute<string>('return document.querySelector("main").dataset.status')).toBe('idle');
    expect(await s.count('[data-testid="error"]')).toBe(1);
    expect(await s.execute<number>('return [...document.querySelectorAll("button")].filter((b) => b.textContent === "Download bundle").length')).toBe(0);
    await screenshot(s, '06-broken-model');
  });
});
