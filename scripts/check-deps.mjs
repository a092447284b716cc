#!/usr/bin/env node
// Layering check, run by `npm test`: src/core depends on nothing above it (no import that leaves
// src/core, no npm package, no Node built-in), so the math runs unchanged in the browser worker,
// the CLI and the tests. Test files may import vitest and test/support.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const core = path.join(root, 'src', 'core');
const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;])import\s*\(?\s*['"]([^'"]+)['"]/g;

function* walk(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else if (/\.(ts|tsx|js|mjs)$/.test(e.name)) yield p;
  }
}

const problems = [];
let files = 0;
for (const file of walk(core)) {
  files++;
  const isTest = /\.test\.tsx?$/.test(file);
  const text = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2];
    const rel = path.relative(root, file);
    if (spec.startsWith('.')) {
      const target = path.resolve(path.dirname(file), spec);
      const inside = target === core || target.startsWith(core + path.sep);
      const testSupport = target.startsWith(path.join(root, 'test', 'support') + path.sep);
      if (!inside && !(isTest && testSupport)) problems.push(`${rel}: imports ${spec} (${path.relative(root, target)}), outside src/core`);
    } else if (!(isTest && spec === 'vitest')) {
      problems.push(`${rel}: imports the package '${spec}'; src/core may not depend on packages or Node built-ins`);
    }
  }
}
if (problems.length) {
  console.error(`check-deps: ${problems.length} import(s) break the layering:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`check-deps: ${files} files in src/core import nothing outside src/core`);
