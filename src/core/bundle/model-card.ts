import { cliCommand, runQuery, type CalibrationSpec, type RunTarget } from '../link';
import type { CalibrationRecord } from '../pipeline/calibration';
import type { QuantSettings } from '../settings';
import { errorTotals, formatCalibSummary, formatLayerSummary, type TensorReport } from '../pipeline/report';
import { TOOL_NAME, TOOL_VERSION } from '../version';

/** A model read from a local folder: what the reader needs to recreate the input. */
export interface LocalFolder {
  name: string;
  /** [path, sha256 hex] of every file the run could read. */
  files: [string, string][];
}

export interface ModelCardInput {
  target: RunTarget;
  /** What the CLI's --model was, for the reproduction command. */
  modelArg: string;
  /** Set when the input was a local folder: the card names it and lists its file hashes instead of pretending a path. */
  localFolder?: LocalFolder;
  settings: QuantSettings;
  reports: TensorReport[];
  quantizedCount: number;
  rotated: boolean;
  residualHadamard: string | null;
  /** The calibration data of a GPTQ run. */
  calibration?: CalibrationRecord | null;
  /** How a link and the CLI name that calibration (for the reproduction link and command). */
  calibrationSpec?: CalibrationSpec | null;
  /** Optional quality check figures (perplexity etc.), added by the eval step. */
  quality?: Record<string, number | string>;
}

/** README.md of the bundle. Deterministic: no dates or paths, so equal runs give equal bytes. */
export function modelCard(m: ModelCardInput): string {
  const s = m.settings;
  const t = errorTotals(m.reports);
  const gptq = s.method === 'gptq' && s.bits !== 16;
  const title = s.bits === 16 ? 'rotated, unquantized' : `W${s.bits} ${s.scheme}/${s.clip}${gptq ? ' GPTQ' : ''}`;
  const lines: string[] = [
    `# ${m.target.model} — QuaRot ${title}`,
    '',
    `Made with ${TOOL_NAME} ${TOOL_VERSION} from \`${m.target.model}\`${m.target.revision ? ` at revision \`${m.target.revision}\`` : ''}.`,
    '',
    '| setting | value |',
    '|---|---|',
    `| bits | ${s.bits} |`,
    `| scheme | ${s.scheme} |`,
    `| clip | ${s.clip} |`,
    `| rotation | ${s.rotation}${s.rotation === 'block' ? ` (block size ${s.blockSize})` : ''}${m.residualHadamard ? ` — residual Hadamard ${m.residualHadamard}` : ''} |`,
    `| seed | ${s.seed} |`,
    ...(gptq ? [
      `| method | GPTQ (sequential, act-order ${s.actOrder}, damp ${s.damp}); embeddings RTN, LM head 16-bit |`,
      ...(m.calibration ? [
        `| calibration | ${m.calibration.source}: ${m.calibration.samples} × ${m.calibration.seqlen} tokens (${m.calibration.tokens} in all) |`,
        `| calibration token ids sha256 | \`${m.calibration.sha256}\` |`,
      ] : []),
    ] : []),
    `| embeddings quantized | ${s.quantizeEmbeddings && s.bits !== 16} |`,
    `| tensors quantized | ${m.quantizedCount} |`,
    `| stored dtype | ${s.dtype === 'f32' ? 'float32' : 'float16'} |`,
    '',
    'Format: ANEMLL SP (`ENABLE_SP_QUANT`): each quantized projection stores the dequantized weight, its bias, ' +
      '`input_scales` [1, in], `output_scales` [out, 1] and a `codebook`; `weight / (input_scales · output_scales)` ' +
      'is on the integer grid. RMSNorm gains are fused and the LM head is untied and kept in 16-bit.',
    '',
  ];
  if (t.tensors > 0) {
    lines.push(
      '## Quantization error',
      '',
      `Mean relative weight error ${(t.meanError * 100).toFixed(3)} %; plain RTN of the original weights with the same ` +
        `scheme and clip: ${(t.meanBaseline * 100).toFixed(3)} % (${t.betterThanBaseline} of ${t.tensors} tensors better than plain RTN).`,
      '',
      '```',
      formatLayerSummary(m.reports),
      '```',
      '',
    );
  }
  const calibSummary = formatCalibSummary(m.reports);
  if (calibSummary) {
    lines.push(
      '## Output error on the calibration data',
      '',
      'Per projection, ‖(W − Ŵ)X‖ / ‖WX‖ over the calibration inputs X, for what was written and for round-to-nearest with the same scales:',
      '',
      '```',
      calibSummary,
      '```',
      '',
    );
  }
  if (m.quality) {
    lines.push('## Quality check', '', '| metric | value |', '|---|---|');
    for (const [k, v] of Object.entries(m.quality)) lines.push(`| ${k} | ${typeof v === 'number' ? v.toPrecision(6) : v} |`);
    lines.push('');
  }
  if (m.localFolder) {
    const settingsQuery = runQuery(m.target, s, m.calibrationSpec).replace(/^\?model=[^&]*&?/, '?');
    lines.push(
      '## Reproduce',
      '',
      `The input was a local folder named \`${m.localFolder.name}\` (not a Hub repo), holding these files:`,
      '',
      '| file | sha256 |',
      '|---|---|',
      ...m.localFolder.files.map(([p, h]) => `| ${p} | \`${h}\` |`),
      '',
      `With a folder holding the same files: in the app, drop it and open the settings link \`${settingsQuery}\`; or`,
      '',
      '```',
      cliCommand(`<path to ${m.localFolder.name}>`, s, m.target.revision, m.calibrationSpec),
      '```',
      '',
      'Same input, settings and seed give a byte-identical bundle.',
      '',
    );
    return lines.join('\n');
  }
  lines.push(
    '## Reproduce',
    '',
    `App link (append to the QuaRot Studio address): \`${runQuery(m.target, s, m.calibrationSpec)}\``,
    '',
    '```',
    cliCommand(m.modelArg, s, m.target.revision, m.calibrationSpec),
    '```',
    '',
    'Same input, settings and seed give a byte-identical bundle.',
    '',
  );
  return lines.join('\n');
}
