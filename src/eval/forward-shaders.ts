/**
 * WGSL sources of the forward pass (shaders/forward-*.wgsl) by base name. Vite/Vitest bundle
 * them through `import.meta.glob`; under tsx (Node CLI, scripts) that call does not exist, and
 * gpu-device-node.ts installs a file-system loader instead.
 */
export type ForwardShaderName =
  | 'forward-matmul'
  | 'forward-rmsnorm'
  | 'forward-rope'
  | 'forward-attention'
  | 'forward-swiglu'
  | 'forward-embed'
  | 'forward-logsoftmax';

let bundled: Record<string, string> = {};
try {
  const files = import.meta.glob('../../shaders/forward-*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;
  for (const [path, text] of Object.entries(files)) bundled[path.slice(path.lastIndexOf('/') + 1).replace(/\.wgsl$/, '')] = text;
} catch {
  bundled = {};
}

let loader: ((name: ForwardShaderName) => string) | null = null;

export function setForwardShaderLoader(l: ((name: ForwardShaderName) => string) | null): void {
  loader = l;
}

export function forwardShader(name: ForwardShaderName): string {
  const text = bundled[name] ?? loader?.(name);
  if (text === undefined) {
    throw new Error(`WGSL kernel ${name}.wgsl is not available: not bundled by Vite and no loader installed (setForwardShaderLoader, or createNodeGpuDevice in Node)`);
  }
  return text;
}
