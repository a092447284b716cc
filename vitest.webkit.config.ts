import { defineConfig } from 'vitest/config';

// WebKit suite: the same built app as the Chromium suite, driven in WebKitGTK's MiniBrowser over
// W3C WebDriver (WebKitWebDriver under Xvfb; SPEC §6). One spec file (one browser session) at a time.
export default defineConfig({
  test: {
    include: ['e2e/webkit/*.spec.ts'],
    globalSetup: ['e2e/webkit/global-setup.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
