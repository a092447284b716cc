import { defineConfig } from 'vitest/config';

// End-to-end suite: the built app under `vite preview`, driven in Debian Chromium through
// playwright-core. One spec file at a time (one browser, a 2-core machine).
export default defineConfig({
  test: {
    include: ['e2e/*.spec.ts'],
    globalSetup: ['e2e/global-setup.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
