import type { ModelSource, RotationSpec } from '../ports';
import { InputError } from '../errors';
import { residualRotation, headRotation } from '../hadamard/rotation';
import { factorHadamardSize } from '../hadamard/factor';
import { parseQwen2Config, type Qwen2Config } from '../qwen2/config';
import { buildPlan, type PlanOptions, type QuantPlan, type RotationKind } from '../qwen2/plan';
import type { QuantSettings } from '../settings';
import { openSafetensorsModel, type SafetensorsModel } from '../safetensors/model';
import { readModelTextFile } from '../text-file';
import { bitsOverrideChooser, checkOverridesMatch, parseBitsOverride } from '../quant/mixed-precision';

/** Everything read before streaming starts: config, headers, plan, rotations. */
export interface PreparedRun {
  config: Qwen2Config;
  model: SafetensorsModel;
  plan: QuantPlan;
  residual: RotationSpec | null;
  headsQ: RotationSpec | null;
  headsKV: RotationSpec | null;
}

/** Read config and headers, validate them, and build the plan — no tensor data is read. */
export async function prepareRun(source: ModelSource, settings: QuantSettings, signal?: AbortSignal, planOptions?: PlanOptions): Promise<PreparedRun> {
  const files = new Set(await source.listFiles());
  if (!files.has('config.json')) throw new InputError(`no config.json in ${source.label}; expected a Hugging Face Qwen2 model folder`, { file: 'config.json' });
  const config = parseQwen2Config(await readModelTextFile(source, 'config.json', signal));
  const model = await openSafetensorsModel(source, signal);
  // Per-tensor bits: the budget's 8-bit set (planOptions.choose), explicit overrides on top.
  const rules = settings.bitsOverride ? parseBitsOverride(settings.bitsOverride) : null;
  const choose = rules ? bitsOverrideChooser(rules, planOptions?.choose) : planOptions?.choose;
  const plan = buildPlan(config, settings, model.tensors, { ...planOptions, choose });
  if (rules) checkOverridesMatch(rules, plan.items.filter((it) => it.kind === 'projection' || it.kind === 'embedding').map((it) => it.name));
  let residual: RotationSpec | null = null;
  let headsQ: RotationSpec | null = null;
  let headsKV: RotationSpec | null = null;
  if (settings.rotation !== 'none') {
    if (settings.rotation === 'block' && config.hidden % settings.blockSize !== 0) {
      throw new InputError(`block size ${settings.blockSize} does not divide hidden_size ${config.hidden}`, { file: 'config.json' });
    }
    factorHadamardSize(settings.rotation === 'full' ? config.hidden : settings.blockSize);
    factorHadamardSize(config.headDim);
    residual = residualRotation(config.hidden, settings.rotation, settings.blockSize, settings.seed);
    headsQ = headRotation(config.headDim, config.heads, settings.seed);
    headsKV = headRotation(config.headDim, config.kvHeads, settings.seed);
  }
  return { config, model, plan, residual, headsQ, headsKV };
}

/** The rotation a plan item's transform names, for a vector of `length` elements. */
export function rotationFor(prep: PreparedRun, kind: RotationKind | null, length: number): RotationSpec | null {
  if (!kind) return null;
  if (kind === 'residual') return prep.residual;
  const spec = length === prep.headsQ!.length ? prep.headsQ : prep.headsKV;
  if (!spec || spec.length !== length) throw new Error(`no head rotation of length ${length}`);
  return spec;
}

/** Describe a rotation for the model card / quantization_config: "28·32 (Paley II ⊗ Sylvester)". */
export function describeHadamard(spec: RotationSpec | null): string | null {
  if (!spec) return null;
  const pow2 = spec.segment / spec.k;
  const blocks = spec.length / spec.segment;
  const core = spec.k === 1 ? `H${spec.segment} (Sylvester)` : `H${spec.k}⊗H${pow2} = H${spec.segment}`;
  return blocks > 1 ? `${blocks} blocks of ${core}` : core;
}
