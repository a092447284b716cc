// Reads every tensor of a local model folder into memory as f32 — a WeightSource for the CPU
// forward pass. For tiny test models only; it goes through the project's own source and reader.
import { openSafetensorsModel } from '../../src/core/safetensors/model';
import { readTensorF32 } from '../../src/core/safetensors/read-tensor';
import { createNodeFsSource } from '../../src/sources/node-fs-source-node';

export async function loadSafetensorsWeights(dir: string): Promise<Map<string, Float32Array>> {
  const source = await createNodeFsSource(dir);
  try {
    const model = await openSafetensorsModel(source);
    const out = new Map<string, Float32Array>();
    for (const [name, { file, info }] of model.tensors) {
      out.set(name, await readTensorF32(model.files.get(file)!.source, info));
    }
    return out;
  } finally {
    await source.close();
  }
}
