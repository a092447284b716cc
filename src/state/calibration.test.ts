import { describe, expect, it } from 'vitest';
import type { DemoModel } from '../demo/catalog';
import { calibFromLink, calibRequest, calibSpec, effectiveCalibKind, initialCalib } from './calibration';

const stories: DemoModel = { name: 'tinystories-260k', title: '', description: '', files: [], bytes: 0, quantCalibration: { text: 'calib.txt', tokens: 'calib.tokens.json' } };
const random: DemoModel = { name: 'tiny-random-qwen2', title: '', description: '', files: [], bytes: 0, quantCalibration: { calibJson: 'calib.json' } };
const bare: DemoModel = { name: 'bare', title: '', description: '', files: [], bytes: 0 };

describe('calibration choice', () => {
  it("defaults to the demo's built-in calibration (offline) where there is one, else WikiText-2 train", () => {
    expect(effectiveCalibKind(initialCalib, stories)).toBe('demo');
    expect(calibSpec(initialCalib, stories)).toEqual({ source: 'demo', samples: 128, seqlen: 512, seed: 0 });
    expect(effectiveCalibKind(initialCalib, bare)).toBe('dataset');
    expect(calibSpec(initialCalib, undefined)).toEqual({ source: 'wikitext-2-raw-v1', samples: 128, seqlen: 512, seed: 0 });
  });

  it('asks the worker for the demo files in the order the CLI prefers them (ids first)', () => {
    expect(calibRequest(initialCalib, stories, null, {})).toEqual({ spec: { source: 'demo', samples: 128, seqlen: 512, seed: 0 }, demoFiles: ['calib.tokens.json', 'calib.txt'] });
    expect(calibRequest(initialCalib, random, null, {})).toMatchObject({ demoFiles: ['calib.json'] });
    expect(calibRequest({ ...initialCalib, kind: 'demo', chosen: true }, bare, null, {})).toMatch(/bare has no built-in calibration/);
    expect(calibRequest(initialCalib, undefined, null, { hubUrl: 'http://127.0.0.1:9', token: 'hf_x' })).toEqual({
      spec: { source: 'wikitext-2-raw-v1', samples: 128, seqlen: 512, seed: 0 }, hubUrl: 'http://127.0.0.1:9', token: 'hf_x',
    });
  });

  it("reads a link's calibration; a file named by a link must be given again", () => {
    const fromLink = { ...initialCalib, ...calibFromLink({ source: 'file:my.json', samples: '8', seqlen: '64', seed: '3' }) };
    expect(fromLink).toMatchObject({ kind: 'file', chosen: true, wantedFile: 'my.json', samples: 8, seqlen: 64, seed: 3 });
    expect(calibSpec(fromLink, stories)).toEqual({ source: 'file:my.json', samples: 8, seqlen: 64, seed: 3 });
    expect(calibRequest(fromLink, stories, null, {})).toMatch(/“my\.json”, which cannot travel in a link/);
    const file = new File(['{"ids": [1, 2]}'], 'my.json');
    expect(calibRequest(fromLink, stories, file, {})).toMatchObject({ spec: { source: 'file:my.json' }, file, fileName: 'my.json' });
    expect(calibFromLink({ source: 'org/ds:cfg/validation' })).toMatchObject({ kind: 'dataset', dataset: 'org/ds:cfg/validation' });
    expect(calibFromLink({})).toEqual({});
    expect(() => calibFromLink({ source: 'demo', samples: 'x' })).toThrow(/calibration samples/);
  });
});
