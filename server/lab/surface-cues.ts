/**
 * Do the words of a task's texts give its labels away without any knowledge? A lookup classifier — naive
 * Bayes over the pieces of each name (first and last two letters, letter trigrams) and the other words
 * (the template) — is fitted on the finetuning splits' ground truth and scored on test. A task passes
 * when that accuracy is not above chance (the lower end of its 95 % Wilson interval is at most 0.5): the
 * label must come from what the model learned in pretraining, not from how the question is written. A
 * lookup below chance is a lookup that fitted noise; it gives nothing away.
 *
 * A pairwise task is checked the same way with its two texts: the lookup learns which texts are the
 * preferred ones (each pair's preferred text against its other one), then picks, of each test pair, the
 * text it scores higher. Chance is 0.5 there too: the coin that orders each pair makes position useless.
 */

import { shareInterval } from "./metrics.ts";
import { type TaskExample, taskFormat, type TaskSplits } from "../tasks/types.ts";

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

/**
 * Multinomial naive Bayes with add-one smoothing fitted on labelled texts: the log-odds of label 1 over
 * label 0 for a text (positive: the lookup says 1).
 */
function fitLookup(train: readonly { text: string; label: 0 | 1 }[]): (text: string) => number {
  const counts = [new Map<string, number>(), new Map<string, number>()];
  const totals = [0, 0];
  const docs = [0, 0];
  const vocabulary = new Set<string>();
  for (const { text, label } of train) {
    docs[label]++;
    for (const f of surfaceFeatures(text)) {
      counts[label].set(f, (counts[label].get(f) ?? 0) + 1);
      totals[label]++;
      vocabulary.add(f);
    }
  }
  const score = (label: 0 | 1, features: string[]) =>
    Math.log((docs[label] + 1) / (train.length + 2)) +
    features.reduce(
      (s, f) => s + Math.log(((counts[label].get(f) ?? 0) + 1) / (totals[label] + vocabulary.size)),
      0,
    );
  return (text) => {
    const features = surfaceFeatures(text);
    return score(1, features) - score(0, features);
  };
}

/** Classification: fitted on the texts and their labels, accuracy of its label on `test`. */
function lookupAccuracy(train: readonly TaskExample[], test: readonly TaskExample[]): number {
  const logOdds = fitLookup(train.map((e) => ({ text: e.txt, label: e.hard_label })));
  return test.filter((e) => (logOdds(e.txt) > 0 ? 1 : 0) === e.hard_label).length / test.length;
}

/**
 * Pairwise: fitted on preferred (1) against not preferred (0) texts; on each test pair it picks `other`
 * (label 1) when it scores `other` higher than `txt`, else `txt` (label 0).
 */
function pairwiseLookupAccuracy(train: readonly TaskExample[], test: readonly TaskExample[]): number {
  const logOdds = fitLookup(train.flatMap((e) => {
    const [preferred, rejected] = e.hard_label === 1 ? [e.other!, e.txt] : [e.txt, e.other!];
    return [{ text: preferred, label: 1 as const }, { text: rejected, label: 0 as const }];
  }));
  const picked = (e: TaskExample) => (logOdds(e.other!) > logOdds(e.txt) ? 1 : 0);
  return test.filter((e) => picked(e) === e.hard_label).length / test.length;
}

/** The check on a task's splits (either format): fitted on train1, train2 and validation, scored on test. */
export function surfaceCueCheck(splits: TaskSplits): SurfaceCueCheck {
  const train = [...splits.train1, ...splits.train2, ...splits.validation];
  const pairwise = taskFormat([...train, ...splits.test]) === "pairwise";
  const accuracy = (pairwise ? pairwiseLookupAccuracy : lookupAccuracy)(train, splits.test);
  const n = splits.test.length;
  const { lo: low, hi: high } = shareInterval(accuracy, n);
  return { accuracy, low, high, n, atChance: low <= 0.5 };
}
