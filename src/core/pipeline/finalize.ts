import type { ModelSource } from '../ports';
import { bundleConfigJson } from '../bundle/config-json';
import { modelCard, type LocalFolder } from '../bundle/model-card';
import { quantizationConfigJson } from '../bundle/quantization-config';
import type { RunTarget } from '../link';
import type { QuantSettings } from '../settings';
import { calibrationRecord, type PipelineCalibration } from './calibration';
import type { CountingSink } from './outputs';
import { describeHadamard, type PreparedRun } from './prepare';
import type { TensorReport } from './report';

/** Files copied into the bundle unchanged when the source has them. */
export const PASS_THROUGH_FILES = [
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'vocab.json',
  'merges.txt',
  'special_tokens_map.json',
  'added_tokens.json',
  'LICENSE',
];

export interface FinalizeOptions {
  source: ModelSource;
  sink: CountingSink;
  prep: PreparedRun;
  settings: QuantSettings;
  reports: TensorReport[];
  target: RunTarget;
  modelArg: string;
  localFolder?: LocalFolder;
  signal?: AbortSignal;
  calibration?: Pick<PipelineCalibration, 'source' | 'samples' | 'sha256' | 'spec'> | null;
}

/** The bundle's other files: config.json, quantization_config.json, pass-through files, the model card. */
export async function writeBundleFiles(o: FinalizeOptions): Promise<void> {
  const { prep, settings, sink } = o;
  const { config, plan } = prep;
  const text = (path: string, body: string): Promise<void> => sink.writeFile(path, new TextEncoder().encode(body));
  await text('config.json', bundleConfigJson(config.raw, plan.writesLmHead, plan.outputDtype));
  const residualHadamard = describeHadamard(prep.residual);
  const calibration = o.calibration ? calibrationRecord(o.calibration) : null;
  await text('quantization_config.json', quantizationConfigJson({
    settings, quantizedCount: plan.quantizedCount, rotated: plan.rotated,
    residualHadamard, headHadamard: describeHadamard(prep.headsQ ? { ...prep.headsQ, length: prep.headsQ.segment } : null),
    sourceRepo: o.target.model, sourceRevision: o.target.revision ?? null, calibration,
    tensors: plan.items.filter((it) => it.quant).map((it) => ({ name: it.name, bits: it.quant!.bits, codebook: it.quant!.codebook })),
  }));
  const available = new Set(await o.source.listFiles());
  for (const f of PASS_THROUGH_FILES) {
    if (!available.has(f)) continue;
    const src = await o.source.open(f);
    await sink.writeFile(f, src.size === 0 ? new Uint8Array(0) : await src.read(0, src.size, o.signal));
  }
  await text('README.md', modelCard({
    target: o.target, modelArg: o.modelArg, localFolder: o.localFolder, settings, reports: o.reports,
    quantizedCount: plan.quantizedCount, rotated: plan.rotated, residualHadamard, calibration, calibrationSpec: o.calibration?.spec ?? null,
  }));
}
