/**
 * The built-in calibration text of the TinyStories demo, derived at demo-build time from the
 * fixture's own evaluation files (nothing is committed): whole stories from the second half of
 * eval.txt, starting at or after both the middle of its token ids and the end of the windows
 * the quality check evaluates (40 × 256 tokens by default), so calibration never sees text
 * that perplexity is reported on.
 */

/** eval.txt separates stories with this line (TinyStories-valid.txt's own format). */
export const STORY_END = '\n<|endoftext|>\n';

export interface EvalTokens {
  ids: number[];
  /** Index in `ids` of each story's BOS. */
  story_starts: number[];
}

export interface DemoCalibration {
  /** The stories, in eval.txt's format (each followed by STORY_END). */
  text: string;
  /** Their ids as the model was trained (BOS + story ids, per story), a suffix of eval ids. */
  ids: number[];
  /** Index of the first calibration story in eval.txt, and of its BOS in the eval ids. */
  firstStory: number;
  firstToken: number;
}

/**
 * The calibration stories of an evaluation text: from the first story whose BOS is at or after
 * max(evalWindows · seqlen, ⌈ids / 2⌉) to the end.
 */
export function demoCalibrationFromEval(evalText: string, tokens: EvalTokens, evalWindows = 40, seqlen = 256): DemoCalibration {
  const stories = evalText.split(STORY_END);
  if (stories[stories.length - 1] === '') stories.pop();
  if (stories.length !== tokens.story_starts.length) {
    throw new Error(`eval.txt has ${stories.length} stories but eval.tokens.json lists ${tokens.story_starts.length} story starts`);
  }
  const from = Math.max(evalWindows * seqlen, Math.ceil(tokens.ids.length / 2));
  const firstStory = tokens.story_starts.findIndex((s) => s >= from);
  if (firstStory < 0) throw new Error(`no story starts at or after token ${from} of ${tokens.ids.length}`);
  const firstToken = tokens.story_starts[firstStory];
  return {
    text: stories.slice(firstStory).map((s) => s + STORY_END).join(''),
    ids: tokens.ids.slice(firstToken),
    firstStory,
    firstToken,
  };
}
