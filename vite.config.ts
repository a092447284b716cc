import { defineConfig } from 'vite';

// The app is a plain Vite + React (automatic JSX runtime) build; the pipeline runs in a
// module Web Worker, so workers are bundled as ES modules.
export default defineConfig({
  worker: { format: 'es' },
  build: { target: 'es2022' },
  server: { fs: { allow: ['.', '../shared'] } },
});
