// Reads every tensor of a model into memory as f32 — a WeightSource for the CPU forward pass.
// For tiny test models only; it goes through the project's own source and reader.
import { openSafetensorsModel } from '../../src/core/safetensors/model';
import { readTensorF32 } from '../../src/core/safetensors/read-tensor';
import type { ModelSource } from '../../src/core/ports';
import { createNodeFsSource } from '../../src/sources/node-fs-source-node';

/** All tensors of a (possibly sharded) safetensors model, decoded to f32. */
export async function loadModelWeights(source: ModelSource): Promise<Map<string, Float32Array>> {
  const model = await openSafetensorsModel(source);
  const out = new Map<string, Float32Array>();
  for (const [name, { file, info }] of model.tensors) {
    out.set(name, await readTensorF32(model.files.get(file)!.source, info));
  }
  return out;
}

/** The same for a local model folder. */
export async function loadSafetensorsWeights(dir: string): Promise<Map<string, Float32Array>> {
  const source = await createNodeFsSource(dir);
  try {
    return await loadModelWeights(source);
  } finally {
    await source.close();
  }
}
