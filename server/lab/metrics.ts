/**
 * The weak-to-strong metrics, each formula in exactly one place (docs/science.md):
 * accuracy, PGR and its "gap too small" flag, agreement, the auxiliary confidence (logconf) targets and
 * their α schedule, and the interval estimates reported next to every accuracy and PGR.
 * A hard prediction from a positive-class probability p is 1 iff p > 0.5 (a tie at 0.5 is 0, like an
 * argmax that picks the first class on ties); every function here uses that rule.
 */

import { seededRandom } from "../../kernels/random.ts";
import { SUITE_MEDIAN_DRAWS } from "../contract/intervals.ts";
import type { Agreement, ChanceCheck, Interval } from "../contract/results.ts";

export type Label = 0 | 1;

/** hard(p) = 1 if p > 0.5 else 0. */
export function hardLabel(probPos: number): Label {
  return probPos > 0.5 ? 1 : 0;
}

export function hardLabels(probPos: readonly number[]): Label[] {
  return probPos.map(hardLabel);
}

function checkSameLength(what: string, ...arrays: readonly (readonly number[])[]): void {
  const n = arrays[0].length;
  if (arrays.some((a) => a.length !== n)) {
    throw new Error(`${what}: arrays differ in length (${arrays.map((a) => a.length).join(" vs ")})`);
  }
}

/** accuracy = (1/n) Σ [pred_i = label_i] over hard predictions; NaN for n = 0. */
export function accuracy(predictions: readonly number[], labels: readonly number[]): number {
  checkSameLength("accuracy", predictions, labels);
  if (predictions.length === 0) return NaN;
  let correct = 0;
  for (let i = 0; i < predictions.length; i++) if (predictions[i] === labels[i]) correct++;
  return correct / predictions.length;
}

/**
 * Performance gap recovered: PGR = (acc_student − acc_weak) / (acc_ceiling − acc_weak).
 * 0 = the student is no better than its supervisor, 1 = it matches the ceiling. NaN when
 * acc_ceiling = acc_weak (no gap to recover); check gapTooSmall first for a meaningful value.
 */
export function pgr(weakAcc: number, ceilingAcc: number, studentAcc: number): number {
  const gap = ceilingAcc - weakAcc;
  return gap === 0 ? NaN : (studentAcc - weakAcc) / gap;
}

/**
 * A pair is flagged "gap too small" when acc_ceiling − acc_weak ≤ noise: its PGR would be a ratio of
 * noise. `noise` comes from gapNoise (test-set sampling) or from the seed-to-seed spread.
 */
export function gapTooSmall(weakAcc: number, ceilingAcc: number, noise: number): boolean {
  if (!(noise >= 0)) throw new Error(`gapTooSmall: noise must be ≥ 0, got ${noise}`);
  return !(ceilingAcc - weakAcc > noise);
}

/**
 * Is a model within test-sampling noise of chance? chance = the majority-class share r of the test
 * labels; noise = z · √(r(1 − r)/n), the half-width of the band a model that always guesses would land
 * in; a model is "near chance" when acc ≤ r + noise.
 */
export function chanceCheck(
  testLabels: readonly number[],
  acc: { weak: number; ceiling: number; student: number },
  z = 1.96,
): ChanceCheck {
  const n = testLabels.length;
  if (n === 0) throw new Error("chanceCheck: no test labels");
  const positive = testLabels.filter((y) => y === 1).length / n;
  const rate = Math.max(positive, 1 - positive);
  const noise = z * Math.sqrt((rate * (1 - rate)) / n);
  const near = (a: number) => !(a > rate + noise);
  return {
    rate,
    noise,
    near: { weak: near(acc.weak), ceiling: near(acc.ceiling), student: near(acc.student) },
  };
}

/**
 * Noise level of the gap from test-set sampling alone: z · sqrt(w(1−w)/n + c(1−c)/n) (the normal
 * standard error of a difference of two accuracies on n test examples), at least `floor` (e.g. the
 * seed spread, about 0.03 at CPU scale — docs/notebook.md).
 */
export function gapNoise(weakAcc: number, ceilingAcc: number, nTest: number, z = 1.96, floor = 0): number {
  if (!(nTest > 0)) throw new Error(`gapNoise: nTest must be > 0, got ${nTest}`);
  const se = Math.sqrt((weakAcc * (1 - weakAcc)) / nTest + (ceilingAcc * (1 - ceilingAcc)) / nTest);
  return Math.max(z * se, floor);
}

export interface PgrPair {
  weakAcc: number;
  ceilingAcc: number;
  studentAcc: number;
  /** Set when the pair's gap is within noise; such pairs are left out of medians. */
  gapTooSmall?: boolean;
}

/** Median PGR over pairs that are not flagged (and whose PGR is finite); NaN when none is left. */
export function medianPgr(pairs: readonly PgrPair[]): { median: number; used: number; skipped: number } {
  const values = pairs.filter((p) => !p.gapTooSmall).map((p) => pgr(p.weakAcc, p.ceilingAcc, p.studentAcc))
    .filter(Number.isFinite);
  return { median: median(values), used: values.length, skipped: pairs.length - values.length };
}

/**
 * Agreement of hard predictions: mean over examples of [student_i = supervisor_i], overall and split
 * by whether supervisor_i = groundTruth_i. An empty subset gives null (not 0 and not NaN) so it
 * survives JSON and is not mistaken for "never agrees".
 */
export function agreement(
  studentPred: readonly number[],
  supervisorPred: readonly number[],
  groundTruth: readonly number[],
): Agreement {
  checkSameLength("agreement", studentPred, supervisorPred, groundTruth);
  const counts = { all: [0, 0], correct: [0, 0], wrong: [0, 0] }; // [agreeing, total]
  for (let i = 0; i < studentPred.length; i++) {
    const agrees = studentPred[i] === supervisorPred[i] ? 1 : 0;
    const subset = supervisorPred[i] === groundTruth[i] ? counts.correct : counts.wrong;
    counts.all[0] += agrees;
    counts.all[1]++;
    subset[0] += agrees;
    subset[1]++;
  }
  const share = ([agreeing, total]: number[]) => (total === 0 ? null : agreeing / total);
  return {
    all: share(counts.all),
    supervisor_correct: share(counts.correct),
    supervisor_wrong: share(counts.wrong),
  };
}

/**
 * The student's own thresholded labels for the aux confidence loss, following openai/weak-to-strong
 * `logconf_loss_fn` (threshold = torch.quantile of the class-0 probabilities at q = the mean of the SOFT
 * weak positive probabilities, hard = [p0 < threshold]) — the same rule the GPU kernel applies per batch
 * (kernels/ops/crossentropy.ts) — restated on the positive-class probabilities p_1..p_n of one batch:
 *   r = (1/n) Σ weak_i                            the weak labels' positive rate (mean of soft labels)
 *   T = quantile_{1−r}(p) with linear interpolation: sort p ascending into s_0 ≤ … ≤ s_{n−1},
 *       h = (1−r)(n−1), T = s_⌊h⌋ + (h − ⌊h⌋)(s_⌈h⌉ − s_⌊h⌋)
 *   hard_i = 1 if p_i > T else 0                  strictly greater: p_i = T gives 0
 * (In exact arithmetic this equals the openai rule, since quantile_r(1−p) = 1 − quantile_{1−r}(p).)
 * Ties: every p_i equal to T is 0, so with ties at the threshold the positive rate falls below r;
 * with all p equal, all are 0; r = 0 gives all 0; r = 1 gives 1 for all but the p equal to min(p).
 */
export function auxconfHardLabels(
  studentProbPos: readonly number[],
  weakProbPos: readonly number[],
): Label[] {
  checkSameLength("auxconfHardLabels", studentProbPos, weakProbPos);
  const n = studentProbPos.length;
  if (n === 0) return [];
  const rate = Math.min(1, Math.max(0, weakProbPos.reduce((s, p) => s + p, 0) / n));
  const sorted = [...studentProbPos].sort((a, b) => a - b);
  const h = (1 - rate) * (n - 1);
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  const threshold = sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
  return studentProbPos.map((p) => (p > threshold ? 1 : 0));
}

/**
 * Aux confidence (logconf) soft targets: target_i = (1−α)·weak_i + α·hard_i, with weak_i the weak
 * model's soft positive-class probability and hard_i from auxconfHardLabels. The loss is then
 * L = (1/n) Σ CE(target_i, p_i) = (1−α)·CE(f, f_w) + α·CE(f, hard(f)) (see auxconfLoss).
 */
export function auxconfTargets(
  studentProbPos: readonly number[],
  weakProbPos: readonly number[],
  alpha: number,
): number[] {
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`auxconfTargets: alpha must be in [0, 1], got ${alpha}`);
  const hard = auxconfHardLabels(studentProbPos, weakProbPos);
  return weakProbPos.map((w, i) => (1 - alpha) * w + alpha * hard[i]);
}

/** Mean binary cross-entropy −[t log p + (1−t) log(1−p)] of the student against the logconf targets. */
export function auxconfLoss(
  studentProbPos: readonly number[],
  weakProbPos: readonly number[],
  alpha: number,
): number {
  const targets = auxconfTargets(studentProbPos, weakProbPos, alpha);
  let sum = 0;
  for (let i = 0; i < targets.length; i++) {
    const p = studentProbPos[i];
    const t = targets[i];
    sum -= (t > 0 ? t * Math.log(p) : 0) + (t < 1 ? (1 - t) * Math.log(1 - p) : 0);
  }
  return sum / targets.length;
}

/**
 * α schedule: α(step) = α_max · min(1, step / (warmupFraction · totalSteps)), step counted from 0.
 * Linear from 0 at step 0 to α_max at warmupFraction of the run, constant after: no jump (unlike
 * the openai code, which switches from step_frac to 1 at the end of its warmup).
 */
export function auxconfAlpha(
  step: number,
  totalSteps: number,
  alphaMax: number,
  warmupFraction = 0.2,
): number {
  if (!(totalSteps > 0)) throw new Error(`auxconfAlpha: totalSteps must be > 0, got ${totalSteps}`);
  if (!(step >= 0)) throw new Error(`auxconfAlpha: step must be ≥ 0, got ${step}`);
  if (!(warmupFraction >= 0 && warmupFraction <= 1)) {
    throw new Error(`auxconfAlpha: warmupFraction must be in [0, 1], got ${warmupFraction}`);
  }
  const warmupSteps = warmupFraction * totalSteps;
  if (warmupSteps === 0) return alphaMax;
  return alphaMax * Math.min(1, step / warmupSteps);
}

/** The sum of the values (0 when there are none). */
export function sum(values: Iterable<number>): number {
  let total = 0;
  for (const v of values) total += v;
  return total;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? NaN : values.reduce((s, v) => s + v, 0) / values.length;
}

/** Middle value; the mean of the two middle values for an even count; NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Sample standard deviation (n − 1 in the denominator); NaN for fewer than two values. */
export function sampleStd(values: readonly number[]): number {
  if (values.length < 2) return NaN;
  const m = mean(values);
  return Math.sqrt(values.reduce((s, v) => s + (v - m) ** 2, 0) / (values.length - 1));
}

// The Wilson interval lives in the contract: the dashboard draws it too (probe accuracies).
export { shareInterval, wilsonInterval } from "../contract/intervals.ts";

// Two-sided 95 % Student t quantiles t_{0.975, df} for df = 1..30; beyond, the normal 1.96 is close.
const T975 = [
  12.706,
  4.303,
  3.182,
  2.776,
  2.571,
  2.447,
  2.365,
  2.306,
  2.262,
  2.228,
  2.201,
  2.179,
  2.16,
  2.145,
  2.131,
  2.12,
  2.11,
  2.101,
  2.093,
  2.086,
  2.08,
  2.074,
  2.069,
  2.064,
  2.06,
  2.056,
  2.052,
  2.048,
  2.045,
  2.042,
];

/** t_{0.975, df}; the normal 1.96 for df < 1 (no t: one seed's interval is over test examples) or past 30. */
const t975 = (df: number) => (df >= 1 ? T975[df - 1] ?? 1.96 : 1.96);

/** 95 % t-interval of the mean across seeds: mean ± t_{0.975, n−1} · s / sqrt(n); needs n ≥ 2. */
export function tInterval95(values: readonly number[]): Interval & { mean: number } {
  const finite = values.filter(Number.isFinite);
  const m = mean(finite);
  if (finite.length < 2) return { mean: m, lo: NaN, hi: NaN };
  const t = t975(finite.length - 1);
  const half = (t * sampleStd(finite)) / Math.sqrt(finite.length);
  return { mean: m, lo: m - half, hi: m + half };
}

/**
 * tInterval95 of shares (accuracies, agreements), its ends cut to [0, 1]: a mean of shares lies there, so the
 * cut interval covers it whenever the t-interval does. Over two seeds (t = 12.7) the uncut one ran to
 * [−1.41, 2.46] for an agreement of 0.53. Differences and PGRs keep tInterval95.
 */
export function shareTInterval95(values: readonly number[]): Interval & { mean: number } {
  const t = tInterval95(values);
  return { mean: t.mean, lo: Math.max(0, t.lo), hi: Math.min(1, t.hi) };
}

/** A cell's PGR with its 95 % interval: over seeds (a t-interval), or one seed's over test examples. */
export interface PgrWithInterval {
  pgr: number;
  /** The interval's centre and ends (over seeds: the mean of the per-seed PGRs ± t·s/√n). */
  interval: { mean: number; lo: number; hi: number };
  /** How many seeds the cell pooled: t with seeds − 1 degrees of freedom above one, normal at one. */
  seeds: number;
}

/** Standard normal draws (Box–Muller: each pair of uniforms gives two, the second kept for the next call). */
function normalDraws(random: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const z = spare;
      spare = null;
      return z;
    }
    const r = Math.sqrt(-2 * Math.log(1 - random())), theta = 2 * Math.PI * random();
    spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  };
}

/** One Student t draw with `df` degrees of freedom: Z / √(χ²_df / df). */
function tDraw(normal: () => number, df: number): number {
  let chi2 = 0;
  for (let i = 0; i < df; i++) chi2 += normal() ** 2;
  return normal() / Math.sqrt(chi2 / df);
}

/**
 * 95 % interval of the median PGR of a suite: these cells (tasks and pairs), not a sample of other tasks.
 * Each of `draws` rounds (SUITE_MEDIAN_DRAWS, seeded: the same cells always give the same interval) takes
 * every cell's PGR from its own interval — Student t with seeds − 1 degrees of freedom for a cell over seeds,
 * normal for one seed's interval over test examples, each side of the estimate scaled to that side's
 * half-width — and keeps the median; the interval is the rounds' 2.5 % and 97.5 % quantiles. So it answers
 * where the suite's median would land with new seeds (and test sets), as one cell's interval does for that
 * cell: a single cell gets exactly its own interval. Cells were once resampled instead, which treats each
 * cell's PGR as exact: over two cells that gave [min, max] of two values whose own intervals spanned ±2. A
 * cell without an interval adds no spread; when no cell has one, there is no interval (NaN).
 */
export function suiteMedianInterval(
  cells: readonly PgrWithInterval[],
  opts: { draws?: number; seed?: number } = {},
): Interval {
  const usable = cells.filter((c) => Number.isFinite(c.pgr));
  if (usable.length === 0) return { lo: NaN, hi: NaN };
  const spread = (c: PgrWithInterval) => Number.isFinite(c.interval.lo) && Number.isFinite(c.interval.hi);
  // No cell with an interval: nothing says how far the median could move, so no interval (never [x, x]).
  if (!usable.some(spread)) return { lo: NaN, hi: NaN };
  if (usable.length === 1) return { lo: usable[0].interval.lo, hi: usable[0].interval.hi };
  const normal = normalDraws(seededRandom(opts.seed ?? 0, "suite-median"));
  const rounds = opts.draws ?? SUITE_MEDIAN_DRAWS;
  const medians = new Float64Array(rounds);
  // Typed arrays sort numerically without a comparator: a summary over hundreds of cells stays quick.
  const values = new Float64Array(usable.length);
  const mid = usable.length >> 1;
  // Per cell: its degrees of freedom (0: normal, −1: no spread) and each side's half-width per unit of q.
  const draws = usable.map((c) => {
    const df = spread(c) ? c.seeds - 1 : -1;
    const t = t975(df);
    return {
      pgr: c.pgr,
      df,
      below: (c.interval.mean - c.interval.lo) / t,
      above: (c.interval.hi - c.interval.mean) / t,
    };
  });
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < draws.length; i++) {
      const d = draws[i];
      if (d.df < 0) {
        values[i] = d.pgr;
        continue;
      }
      const q = d.df >= 1 ? tDraw(normal, d.df) : normal();
      values[i] = d.pgr + q * (q < 0 ? d.below : d.above);
    }
    values.sort();
    medians[round] = usable.length % 2 === 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
  }
  const sorted = Array.from(medians.sort());
  return { lo: quantile(sorted, 0.025), hi: quantile(sorted, 0.975) };
}

/**
 * 95 % paired bootstrap interval of PGR over test examples: resample the examples with replacement
 * `resamples` times (seeded), recompute the weak, ceiling and student accuracies on each resample, and
 * take the 2.5 % and 97.5 % quantiles of the finite PGRs.
 */
export function pgrBootstrap(
  gt: readonly number[],
  weakPred: readonly number[],
  ceilingPred: readonly number[],
  studentPred: readonly number[],
  resamples = 1000,
  seed = 0,
): Interval {
  const random = seededRandom(seed, "pgr-bootstrap");
  const n = gt.length;
  const values: number[] = [];
  for (let r = 0; r < resamples; r++) {
    let w = 0, c = 0, s = 0;
    for (let i = 0; i < n; i++) {
      const j = Math.floor(random() * n);
      w += weakPred[j] === gt[j] ? 1 : 0;
      c += ceilingPred[j] === gt[j] ? 1 : 0;
      s += studentPred[j] === gt[j] ? 1 : 0;
    }
    const value = pgr(w / n, c / n, s / n);
    if (Number.isFinite(value)) values.push(value);
  }
  values.sort((a, b) => a - b);
  return { lo: quantile(values, 0.025), hi: quantile(values, 0.975) };
}

/** Linear-interpolation quantile of already sorted values (torch.quantile / numpy "linear"). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const h = q * (sorted.length - 1);
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}
