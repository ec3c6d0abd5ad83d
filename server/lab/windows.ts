/**
 * Pretraining batches: random windows of T+1 tokens drawn (seeded) from the lab corpus for training,
 * fixed windows tiled over the validation tokens for validation loss. World windows are runs of
 * statements drawn at random, each in a wording drawn at random from its templates (paraphrase
 * augmentation, on by default because without it a model binds a fact to the template that stated it).
 */

import type { GptModel } from "../../kernels/gpt.ts";
import type { Mulberry32 } from "../../kernels/random.ts";
import type { TokenArray } from "../corpus/corpus.ts";
import type { LabCorpus } from "./lab-corpus.ts";

export interface WindowBatch {
  tokens: Int32Array;
  lengths: Int32Array;
  targets: Int32Array;
}

/** Copies a window of T+1 tokens: inputs are the first T, targets the next token of each. */
function putWindow(batch: WindowBatch, row: number, source: TokenArray, start: number, T: number): void {
  const available = Math.min(T, source.length - 1 - start);
  for (let t = 0; t < available; t++) {
    batch.tokens[row * T + t] = source[start + t];
    batch.targets[row * T + t] = source[start + t + 1];
  }
  batch.lengths[row] = available;
}

function emptyBatch(rows: number, T: number): WindowBatch {
  return {
    tokens: new Int32Array(rows * T),
    lengths: new Int32Array(rows),
    targets: new Int32Array(rows * T).fill(-1),
  };
}

/**
 * A world window made of T+1 tokens of sentences drawn at random: the order of statements changes on
 * every draw, so a model can only lower the loss on a fact by tying it to its entity, not by
 * memorizing which sentence follows which in the fixed rendering.
 */
function sentenceWindow(tokens: TokenArray, starts: Int32Array, rng: Mulberry32, T: number): Uint32Array {
  const window = new Uint32Array(T + 1);
  let filled = 0;
  while (filled < T + 1) {
    const k = rng.int(starts.length - 1);
    for (let i = starts[k]; i < starts[k + 1] && filled < T + 1; i++) window[filled++] = tokens[i];
  }
  return window;
}

/**
 * A world window of statements drawn at random, each in a wording drawn at random from its templates
 * (paraphrase augmentation): a fact then binds to its entity, not to the one template that stated it.
 */
export function paraphraseWindow(variants: Int32Array[][], rng: Mulberry32, T: number): Uint32Array {
  const window = new Uint32Array(T + 1);
  let filled = 0;
  while (filled < T + 1) {
    const wordings = variants[rng.int(variants.length)];
    const sentence = wordings[rng.int(wordings.length)];
    for (let i = 0; i < sentence.length && filled < T + 1; i++) window[filled++] = sentence[i];
  }
  return window;
}

/** One training batch of B windows: real-corpus spans with probability `realShare`, else world windows. */
export function sampleBatch(
  corpus: LabCorpus,
  rng: Mulberry32,
  B: number,
  T: number,
  shuffleSentences: boolean,
): WindowBatch {
  const batch = emptyBatch(B, T);
  for (let b = 0; b < B; b++) {
    if (corpus.real && rng.next() < corpus.realShare) {
      const source = corpus.real.train;
      putWindow(batch, b, source, rng.int(Math.max(1, source.length - T)), T);
    } else if (shuffleSentences && corpus.worldVariants) {
      putWindow(batch, b, paraphraseWindow(corpus.worldVariants, rng, T), 0, T);
    } else if (shuffleSentences) {
      putWindow(batch, b, sentenceWindow(corpus.world.train, corpus.worldSentenceStarts, rng, T), 0, T);
    } else {
      const source = corpus.world.train;
      putWindow(batch, b, source, rng.int(Math.max(1, source.length - T)), T);
    }
  }
  return batch;
}

/** How many validation windows of T tokens the tokens hold, at most `maxWindows` (at least one). */
export function validationWindowCount(tokens: TokenArray, T: number, maxWindows: number): number {
  return Math.max(1, Math.min(maxWindows, Math.floor((tokens.length - 1) / T)));
}

/** Fixed validation windows: the validation tokens tiled without overlap, at most `maxWindows`. */
export function validationBatches(
  tokens: TokenArray,
  B: number,
  T: number,
  maxWindows: number,
): WindowBatch[] {
  const windows = validationWindowCount(tokens, T, maxWindows);
  const stride = Math.max(T, Math.floor((tokens.length - 1) / windows));
  const batches: WindowBatch[] = [];
  for (let w = 0; w < windows; w += B) {
    const rows = Math.min(B, windows - w);
    const batch = emptyBatch(rows, T);
    for (let r = 0; r < rows; r++) putWindow(batch, r, tokens, (w + r) * stride, T);
    batches.push(batch);
  }
  return batches;
}

/**
 * Mean next-token loss over the validation batches, weighted by their target counts. Every batch's
 * stats copy is queued before the next batch runs and all are awaited together: a read-back waits a
 * fixed poll interval however small, so one wait per evaluation instead of one per batch.
 */
export async function validationLoss(
  model: Pick<GptModel, "setBatch" | "evalStep" | "readStats">,
  batches: WindowBatch[],
): Promise<number> {
  const reads = batches.map((batch) => {
    model.setBatch(batch);
    model.evalStep("lm");
    return model.readStats();
  });
  let sum = 0;
  let count = 0;
  for (const stats of await Promise.all(reads)) {
    sum += stats.loss * stats.count;
    count += stats.count;
  }
  return sum / Math.max(1, count);
}
