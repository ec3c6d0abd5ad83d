/**
 * Do the words of a task's texts give its labels away without any knowledge? A lookup classifier — naive
 * Bayes over the pieces of each name (first and last two letters, letter trigrams) and the other words
 * (the template) — is fitted on the finetuning splits' ground truth and scored on test. A task passes
 * when that accuracy is not above chance (the lower end of its 95 % Wilson interval is at most 0.5): the
 * label must come from what the model learned in pretraining, not from how the question is written. A
 * lookup below chance is a lookup that fitted noise; it gives nothing away.
 */

import { wilsonInterval } from "./metrics.ts";
import type { TaskExample, TaskSplits } from "../tasks/types.ts";

export interface SurfaceCueCheck {
  accuracy: number;
  low: number;
  high: number;
  n: number;
  /** Not above chance: no cue in names or templates. */
  atChance: boolean;
}

/** The lookup features of a text: name pieces for capitalized words, the word itself otherwise. */
export function surfaceFeatures(text: string): string[] {
  const features: string[] = [];
  for (const word of text.split(/\s+/).filter((w) => /[A-Za-z]/.test(w))) {
    if (/^[A-Z]/.test(word)) {
      const w = word.toLowerCase();
      features.push(`pre:${w.slice(0, 2)}`, `suf:${w.slice(-2)}`);
      for (let i = 0; i + 3 <= w.length; i++) features.push(`tri:${w.slice(i, i + 3)}`);
    } else {
      features.push(`word:${word}`);
    }
  }
  return features;
}

/** Multinomial naive Bayes with add-one smoothing, fitted on `train`, accuracy on `test`. */
function lookupAccuracy(train: readonly TaskExample[], test: readonly TaskExample[]): number {
  const counts = [new Map<string, number>(), new Map<string, number>()];
  const totals = [0, 0];
  const docs = [0, 0];
  const vocabulary = new Set<string>();
  for (const ex of train) {
    docs[ex.hard_label]++;
    for (const f of surfaceFeatures(ex.txt)) {
      counts[ex.hard_label].set(f, (counts[ex.hard_label].get(f) ?? 0) + 1);
      totals[ex.hard_label]++;
      vocabulary.add(f);
    }
  }
  const score = (label: 0 | 1, features: string[]) =>
    Math.log((docs[label] + 1) / (train.length + 2)) +
    features.reduce(
      (s, f) => s + Math.log(((counts[label].get(f) ?? 0) + 1) / (totals[label] + vocabulary.size)),
      0,
    );
  let correct = 0;
  for (const ex of test) {
    const features = surfaceFeatures(ex.txt);
    const predicted = score(1, features) > score(0, features) ? 1 : 0;
    if (predicted === ex.hard_label) correct++;
  }
  return correct / test.length;
}

/** The check on a task's splits: fitted on train1, train2 and validation, scored on test. */
export function surfaceCueCheck(splits: TaskSplits): SurfaceCueCheck {
  const train = [...splits.train1, ...splits.train2, ...splits.validation];
  const accuracy = lookupAccuracy(train, splits.test);
  const n = splits.test.length;
  const { lo: low, hi: high } = wilsonInterval(Math.round(accuracy * n), n);
  return { accuracy, low, high, n, atChance: low <= 0.5 };
}
