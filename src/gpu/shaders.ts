/**
 * The WGSL kernels (shaders/*.wgsl, one kernel per file, entry point `main`) by base name.
 *
 * Under Vite and Vitest the files are bundled with `import.meta.glob(…, { query: '?raw' })`.
 * Under tsx (the Node CLI, scripts) `import.meta.glob` does not exist: the call throws and is
 * caught, and node.ts installs a file-system loader (createNodeGpu does it for you).
 */
export type ShaderName =
  // quantization backend
  | 'decode_half'
  | 'encode_f16'
  | 'rotate_rows'
  | 'fwht_global'
  | 'kstage_global'
  | 'transpose'
  | 'scale_columns'
  | 'row_absmax'
  | 'mse_rows'
  | 'quantize'
  | 'quantize_codebook'
  | 'histogram'
  | 'row_sq_errors'
  // GPTQ
  | 'gptq_hessian'
  | 'gptq_columns'
  | 'gptq_update'
  // forward pass
  | 'forward-matmul'
  | 'forward-rmsnorm'
  | 'forward-rope'
  | 'forward-attention'
  | 'forward-swiglu'
  | 'forward-embed'
  | 'forward-logsoftmax';

export type ShaderSourceLoader = (name: ShaderName) => string;

let bundled: Record<string, string> = {};
try {
  const files = import.meta.glob('../../shaders/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;
  for (const [path, text] of Object.entries(files)) bundled[path.slice(path.lastIndexOf('/') + 1).replace(/\.wgsl$/, '')] = text;
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
        '(call setShaderSourceLoader() from src/gpu/shaders.ts, or createNodeGpu() from src/gpu/node.ts in Node)',
    );
  }
  return text;
}
