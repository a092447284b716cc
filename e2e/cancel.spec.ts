/** (d) Cancel in the middle of a run: the run stops, status returns to idle, no bundle is offered. */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launch, openPage, screenshot, waitForStatus } from './browser';

let browser: Browser;
beforeAll(async () => {
  browser = await launch();
});
afterAll(async () => {
  await browser?.close();
});

// A run long enough to cancel in the middle: RTN of the tiny model finishes in well under a second on the
// SIMD CPU path, so GPTQ on its built-in calibration (layer by layer, tens of seconds here) is cancelled.
const SLOW_RUN = 'model=tiny-random-qwen2&backend=cpu&method=gptq&calib=demo&csamples=32&cseqlen=128&cseed=0';

describe('cancel', () => {
  it('stops mid-run and leaves no bundle', async () => {
    const { page, errors } = await openPage(browser, `${inject('baseUrl')}?${SLOW_RUN}`);
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await waitForStatus(page, 'running');
    // Some tensors done (the table streams in), but not all.
    await page.waitForSelector('[data-testid="tensor-table"] tbody tr');
    await screenshot(page, '07-running', { fullPage: false });
    await page.getByRole('button', { name: 'Cancel', exact: true }).click();
    await waitForStatus(page, 'idle', 30_000);
    expect(await page.getByRole('button', { name: 'Download bundle' }).count()).toBe(0);
    expect(await page.locator('[data-testid="result"]').count()).toBe(0);
    await page.getByText('Run cancelled; nothing was kept.').waitFor();
    // One message for the state ("Cancelling…" gone), and nothing of the abandoned run: no chart, no table.
    const progress = page.locator('section[aria-labelledby="progress-h"]');
    expect(await progress.locator('.notice').allInnerTexts()).toEqual(['Run cancelled; nothing was kept.']);
    expect(await page.locator('section[aria-labelledby="inspect-h"]').count()).toBe(0);
    expect(await page.locator('[data-testid="tensor-table"]').count()).toBe(0);
    // Still usable: a new run completes.
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await waitForStatus(page, 'done');
    await page.getByRole('button', { name: 'Download bundle' }).waitFor();
    expect(errors).toEqual([]);
  });
});
