// Opens a model folder through the production node fs source and the model opener, reads every
// tensor once and prints a JSON summary; tests run it under a low `ulimit -n`.
import { openSafetensorsModel } from '../../src/core/safetensors/model';
import { readTensorBytes } from '../../src/core/safetensors/read-tensor';
import { createNodeFsSource } from '../../src/sources/node-fs-source-node';

const source = await createNodeFsSource(process.argv[2]);
try {
  const model = await openSafetensorsModel(source);
  let bytes = 0;
  for (const { file, info } of model.tensors.values()) bytes += (await readTensorBytes(model.files.get(file)!.source, info)).length;
  process.stdout.write(JSON.stringify({ files: model.files.size, tensors: model.tensors.size, bytes }) + '\n');
} catch (e) {
  process.stdout.write(JSON.stringify({ error: (e as Error).message }) + '\n');
  process.exitCode = 2;
} finally {
  await source.close();
}
