import type { CalibrationForward, CalibrationForwardFactory } from '../ports';
import { InputError } from '../errors';
import type { Qwen2Dims } from '../qwen2/config';
import type { CalibrationSpec } from '../link';

/** Calibration data handed to a GPTQ run (built by src/eval/calibration-set.ts or the app). */
export interface PipelineCalibration {
  /** Token ids, one array per sample. */
  samples: number[][];
  /** The layer-by-layer forward pass the run uses (CPU or WebGPU). */
  forward: CalibrationForwardFactory;
  /** Where the text came from, for quantization_config.json and the model card. */
  source: string;
  /** sha256 of the ids (little-endian int32, sample after sample). */
  sha256: string;
  /** How a link and the CLI name this calibration (source spec, samples × seqlen, seed), for the card's reproduction. */
  spec?: CalibrationSpec;
}

/** What quantization_config.json and the model card say about calibration. */
export interface CalibrationRecord {
  source: string;
  samples: number;
  /** Tokens per sample (the longest, when samples differ). */
  seqlen: number;
  tokens: number;
  sha256: string;
}

export function calibrationRecord(c: Pick<PipelineCalibration, 'source' | 'samples' | 'sha256'>): CalibrationRecord {
  return {
    source: c.source,
    samples: c.samples.length,
    seqlen: c.samples.reduce((m, s) => Math.max(m, s.length), 0),
    tokens: c.samples.reduce((n, s) => n + s.length, 0),
    sha256: c.sha256,
  };
}

/** Refuse calibration data the model cannot take, before any weight is processed. */
export function checkCalibration(c: PipelineCalibration, dims: Qwen2Dims): void {
  if (c.samples.length === 0) throw new InputError(`calibration (${c.source}): no samples; GPTQ needs at least one`);
  c.samples.forEach((s, k) => {
    if (s.length === 0) throw new InputError(`calibration (${c.source}): sample ${k} is empty`);
    for (let t = 0; t < s.length; t++) {
      const id = s[t];
      if (!Number.isInteger(id) || id < 0 || id >= dims.vocab) {
        throw new InputError(`calibration (${c.source}): sample ${k}, position ${t} holds token id ${id}; the model's vocabulary is 0…${dims.vocab - 1}`);
      }
    }
  });
}

/**
 * The residual stream of every calibration sample, advanced one decoder layer at a time: it
 * starts from the embedding as the bundle stores it, and after each layer it is the output of
 * that layer as quantized — so layer i's Hessians see what the quantized model gives it.
 */
export class CalibrationStream {
  private constructor(
    readonly forward: CalibrationForward,
    public hidden: Float32Array[],
    readonly record: CalibrationRecord,
  ) {}

  static async start(c: PipelineCalibration, dims: Qwen2Dims, embedding: Float32Array, signal?: AbortSignal): Promise<CalibrationStream> {
    const forward = await c.forward(dims, embedding);
    try {
      const hidden: Float32Array[] = [];
      for (const ids of c.samples) {
        signal?.throwIfAborted();
        hidden.push(await forward.embed(ids));
      }
      return new CalibrationStream(forward, hidden, calibrationRecord(c));
    } catch (e) {
      await forward.dispose();
      throw e;
    }
  }

  /** Rows of all samples (tokens). */
  get tokens(): number {
    return this.record.tokens;
  }

  dispose(): Promise<void> {
    this.hidden = [];
    return this.forward.dispose();
  }
}
