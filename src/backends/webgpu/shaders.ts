/**
 * WGSL kernel sources (shaders/*.wgsl, one kernel per file), by base name ("rotate_rows").
 *
 * Under Vite and Vitest the files are bundled with `import.meta.glob(…, { query: '?raw' })`.
 * Under tsx (the Node CLI) `import.meta.glob` does not exist: the call throws and is caught, and
 * the CLI installs a file-system loader with setShaderSourceLoader() (node-gpu-node.ts does this
 * for you when it creates the Node GPU object).
 */
export type ShaderName =
  | 'decode_half'
  | 'rotate_rows'
  | 'fwht_global'
  | 'kstage_global'
  | 'transpose'
  | 'scale_columns'
  | 'row_absmax'
  | 'mse_rows'
  | 'quantize'
  | 'histogram'
  | 'row_sq_errors'
  | 'encode_f16';

export type ShaderSourceLoader = (name: ShaderName) => string;

let bundled: Record<string, string> = {};
try {
  const files = import.meta.glob('../../../shaders/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;
  for (const [path, text] of Object.entries(files)) {
    const base = path.slice(path.lastIndexOf('/') + 1).replace(/\.wgsl$/, '');
    bundled[base] = text;
  }
} catch {
  bundled = {};
}

let loader: ShaderSourceLoader | null = null;

/** Install a loader (e.g. `name => readFileSync(\`shaders/${name}.wgsl\`, 'utf8')` in Node). */
export function setShaderSourceLoader(l: ShaderSourceLoader | null): void {
  loader = l;
}

/** True when the sources were bundled by Vite (no loader needed). */
export function hasBundledShaders(): boolean {
  return Object.keys(bundled).length > 0;
}

export function shaderSource(name: ShaderName): string {
  const text = bundled[name] ?? loader?.(name);
  if (text === undefined) {
    throw new Error(
      `WGSL kernel ${name}.wgsl is not available: not bundled by Vite and no loader installed ` +
        '(call setShaderSourceLoader() from src/backends/webgpu/shaders.ts, or createNodeGpu() in Node)',
    );
  }
  return text;
}
