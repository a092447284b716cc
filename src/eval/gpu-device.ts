/** Getting a WebGPU device for the forward pass (browser side; Node: gpu-device-node.ts). */

export interface EvalGpu {
  device: GPUDevice;
  /** Human-readable adapter name for reports ("Google SwiftShader", "Dawn opengl: llvmpipe …"). */
  adapterName: string;
}

export function describeAdapter(adapter: GPUAdapter, prefix?: string): string {
  const info = adapter.info as Partial<GPUAdapterInfo> | undefined;
  const parts = [info?.vendor, info?.architecture, info?.device, info?.description].filter((s): s is string => !!s && s.length > 0);
  const name = parts.length > 0 ? [...new Set(parts)].join(' ') : 'unknown adapter';
  return prefix ? `${prefix}: ${name}` : name;
}

/**
 * Requests a device with the adapter's own buffer limits: the defaults (128 MiB binding,
 * 256 MiB buffer, 8 storage buffers) are lower than what most adapters offer.
 */
export async function requestEvalDevice(adapter: GPUAdapter, adapterName = describeAdapter(adapter)): Promise<EvalGpu> {
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    },
  });
  return { device, adapterName };
}

/** navigator.gpu in browsers and workers; undefined when WebGPU is missing. */
export async function requestBrowserGpuDevice(): Promise<EvalGpu | undefined> {
  const gpu = (globalThis.navigator as (Navigator & { gpu?: GPU }) | undefined)?.gpu;
  if (!gpu) return undefined;
  const adapter = await gpu.requestAdapter();
  if (!adapter) return undefined;
  return requestEvalDevice(adapter);
}
