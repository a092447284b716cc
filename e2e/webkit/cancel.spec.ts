/** WebKit: Cancel in the middle of a run stops it, keeps nothing, and a new run still completes. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { innerText, openApp, pageErrors, screenshot, startSession, waitForStatus } from './browser';
import type { Session } from './webdriver';

let s: Session;
beforeAll(async () => {
  s = await startSession();
});
afterAll(async () => {
  await s?.close();
});

const downloadButtons = 'return [...document.querySelectorAll("button")].filter((b) => b.textContent === "Download bundle").length';

describe('WebKit: cancel', () => {
  it('stops mid-run and leaves no bundle', async () => {
    // GPTQ on the built-in calibration: long enough to cancel mid-run (RTN of this model takes under a second).
    await openApp(s, '?model=tiny-random-qwen2&backend=cpu&method=gptq&calib=demo&csamples=32&cseqlen=128&cseed=0');
    await s.clickButton('Run');
    await waitForStatus(s, 'running');
    // Some tensors done (the table streams in), but not all.
    await s.waitFor('[data-testid="tensor-table"] tbody tr');
    await screenshot(s, '07-running');
    await s.clickButton('Cancel');
    await waitForStatus(s, 'idle', 30_000);
    expect(await s.execute<number>(downloadButtons)).toBe(0);
    expect(await s.count('[data-testid="result"]')).toBe(0);
    expect(await innerText(s, 'section[aria-labelledby="progress-h"]')).toContain('Run cancelled; nothing was kept.');
    // Still usable: a new run completes.
    await s.clickButton('Run');
    await waitForStatus(s, 'done');
    expect(await s.execute<number>(downloadButtons)).toBe(1);
    expect(await pageErrors(s)).toEqual([]);
  });
});
