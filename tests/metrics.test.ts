// Hand-computed checks of the weak-to-strong formulas in server/lab/metrics.ts.
import assert from "node:assert/strict";
import {
  accuracy,
  agreement,
  auxconfAlpha,
  auxconfHardLabels,
  auxconfLoss,
  auxconfTargets,
  gapNoise,
  gapTooSmall,
  hardLabel,
  median,
  medianPgr,
  pgr,
  type PgrWithInterval,
  quantile,
  suiteMedianInterval,
  tInterval95,
  wilsonInterval,
} from "../server/lab/metrics.ts";

function close(actual: number, expected: number, tol = 1e-12, what = "") {
  assert.ok(Math.abs(actual - expected) <= tol, `${what} ${actual} ≠ ${expected} (tol ${tol})`);
}
function closeAll(actual: number[], expected: number[], tol = 1e-12) {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, i) => close(a, expected[i], tol, `[${i}]`));
}

Deno.test("pgr: (student − weak) / (ceiling − weak), NaN without a gap", () => {
  close(pgr(0.6, 0.9, 0.75), 0.5);
  close(pgr(0.8, 0.99, 0.9), 0.1 / 0.19, 1e-12);
  close(pgr(0.6, 0.8, 0.5), -0.5);
  close(pgr(0.5, 0.9, 0.9), 1);
  assert.ok(Number.isNaN(pgr(0.7, 0.7, 0.8)));
});

Deno.test("gap too small: flagged when ceiling − weak ≤ noise; noise from test size", () => {
  assert.equal(gapTooSmall(0.8, 0.82, 0.03), true);
  assert.equal(gapTooSmall(0.8, 0.9, 0.03), false);
  assert.equal(gapTooSmall(0.5, 0.75, 0.25), true); // exactly at the noise level
  assert.equal(gapTooSmall(0.9, 0.8, 0.01), true); // ceiling below weak
  // 1.96 · sqrt(0.8·0.2/100 + 0.9·0.1/100) = 1.96 · 0.05
  close(gapNoise(0.8, 0.9, 100), 0.098, 1e-12);
  close(gapNoise(0.8, 0.9, 100, 1.96, 0.2), 0.2);
  assert.throws(() => gapTooSmall(0.5, 0.6, -1), /noise/);
});

Deno.test("median PGR skips flagged pairs and pairs without a gap", () => {
  const result = medianPgr([
    { weakAcc: 0.5, ceilingAcc: 0.9, studentAcc: 0.7 }, // 0.5
    { weakAcc: 0.6, ceilingAcc: 0.8, studentAcc: 0.75 }, // 0.75
    { weakAcc: 0.5, ceilingAcc: 1.0, studentAcc: 0.6 }, // 0.2
    { weakAcc: 0.7, ceilingAcc: 0.72, studentAcc: 0.9, gapTooSmall: true }, // 10, flagged
    { weakAcc: 0.7, ceilingAcc: 0.7, studentAcc: 0.9 }, // NaN
  ]);
  close(result.median, 0.5, 1e-12);
  assert.equal(result.used, 3);
  assert.equal(result.skipped, 2);
  assert.ok(Number.isNaN(medianPgr([]).median));
});

Deno.test("accuracy and hard labels (0.5 is negative)", () => {
  assert.equal(hardLabel(0.5), 0);
  assert.equal(hardLabel(0.5000001), 1);
  close(accuracy([1, 0, 1, 1], [1, 1, 1, 0]), 0.5);
  assert.ok(Number.isNaN(accuracy([], [])));
  assert.throws(() => accuracy([1], [1, 0]), /length/);
});

Deno.test("agreement overall, where the supervisor is right and where it is wrong", () => {
  const student = [1, 0, 1, 1, 0, 0];
  const supervisor = [1, 0, 0, 1, 1, 0];
  const truth = [1, 1, 0, 0, 1, 0];
  // supervisor right at 0, 2, 4, 5 → student agrees at 0 and 5; wrong at 1, 3 → agrees at both
  const a = agreement(student, supervisor, truth);
  close(a.all!, 4 / 6);
  close(a.supervisor_correct!, 0.5);
  close(a.supervisor_wrong!, 1);
});

Deno.test("agreement: an empty subset is null", () => {
  const perfect = agreement([1, 0, 0], [1, 1, 0], [1, 1, 0]);
  assert.equal(perfect.supervisor_wrong, null);
  close(perfect.supervisor_correct!, 2 / 3);
  const allWrong = agreement([1, 1], [0, 1], [1, 0]);
  assert.equal(allWrong.supervisor_correct, null);
  close(allWrong.supervisor_wrong!, 0.5);
  assert.deepEqual(agreement([], [], []), { all: null, supervisor_correct: null, supervisor_wrong: null });
  assert.throws(() => agreement([1], [1], [1, 0]), /length/);
});

Deno.test("auxconf targets: threshold at the weak positive rate, worked by hand", () => {
  // r = mean of the SOFT weak labels = 1.9/4 = 0.475; sorted p [.2,.4,.6,.9], h = 0.525·3 = 1.575
  // → T = 0.4 + 0.575·0.2 = 0.515
  // hard = [1,0,1,0]; targets = 0.5·weak + 0.5·hard
  closeAll(auxconfTargets([0.9, 0.2, 0.6, 0.4], [0.8, 0.3, 0.7, 0.1], 0.5), [0.9, 0.15, 0.85, 0.05]);
  // r = 2.2/5 = 0.44; h = 0.56·4 = 2.24 → T = 0.5 + 0.24·0.2 = 0.548 → hard [0,0,0,1,1]
  const p = [0.1, 0.3, 0.5, 0.7, 0.9];
  const weak = [0.9, 0.6, 0.2, 0.1, 0.4];
  assert.deepEqual(auxconfHardLabels(p, weak), [0, 0, 0, 1, 1]);
  closeAll(auxconfTargets(p, weak, 0.25), [0.675, 0.45, 0.15, 0.325, 0.55], 1e-12);
  // α = 0 is the naive loss target (the weak soft labels), α = 1 the student's own hard labels
  closeAll(auxconfTargets(p, weak, 0), weak);
  closeAll(auxconfTargets(p, weak, 1), [0, 0, 0, 1, 1]);
});

Deno.test("auxconf targets: ties and edge rates", () => {
  // r = (0.5 + 0.25 + 0.25 + 0)/4 = 1/4; h = 0.75·3 = 2.25; sorted [.3,.3,.7,.7] → T = 0.7;
  // p equal to T is 0, so the tie at the threshold leaves no positive at all.
  assert.deepEqual(auxconfHardLabels([0.7, 0.7, 0.3, 0.3], [0.5, 0.25, 0.25, 0]), [0, 0, 0, 0]);
  // The rate is the soft mean, not the hard one: weak [.9,.5,.1,.3] → r = 0.45 (hard rate 0.25);
  // h = 0.55·3 = 1.65 → T = 0.3 + 0.65·0.4 = 0.56 → the two 0.7 are positive.
  assert.deepEqual(auxconfHardLabels([0.7, 0.7, 0.3, 0.3], [0.9, 0.5, 0.1, 0.3]), [1, 1, 0, 0]);
  // r = 3.0/4 = 3/4; h = 0.25·3 = 0.75; sorted [.1,.5,.5,.5] → T = 0.1 + 0.75·0.4 = 0.4: the three tied 0.5 are 1
  assert.deepEqual(auxconfHardLabels([0.5, 0.5, 0.5, 0.1], [0.9, 0.8, 0.7, 0.6]), [1, 1, 1, 0]);
  // all equal: everything is 0 whatever the rate
  assert.deepEqual(auxconfHardLabels([0.6, 0.6, 0.6], [0.9, 0.9, 0.1]), [0, 0, 0]);
  // r = 0 → T = max → all 0; r = 1 → T = min → all but the minimum are 1
  assert.deepEqual(auxconfHardLabels([0.2, 0.8, 0.5], [0, 0, 0]), [0, 0, 0]);
  assert.deepEqual(auxconfHardLabels([0.2, 0.8, 0.5], [1, 1, 1]), [0, 1, 1]);
  // r = 0.2 → h = 0.8·2 = 1.6; sorted [.2,.5,.8] → T = 0.5 + 0.6·0.3 = 0.68 → only 0.8 is positive
  assert.deepEqual(auxconfHardLabels([0.2, 0.8, 0.5], [0.1, 0.2, 0.3]), [0, 1, 0]);
  assert.deepEqual(auxconfHardLabels([], []), []);
  assert.throws(() => auxconfTargets([0.5], [0.5], 1.5), /alpha/);
});

Deno.test("auxconf hard labels equal the openai rule (torch.quantile on class-0 probabilities)", () => {
  // Independent reference: r = mean of the soft weak labels, threshold = quantile_r(1 − p) (linear),
  // hard = [(1 − p) < threshold].
  let state = 12345;
  const random = () => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let trial = 0; trial < 50; trial++) {
    const n = 3 + Math.floor(random() * 30);
    const p = Array.from({ length: n }, () => random());
    const weak = Array.from({ length: n }, () => random());
    const r = weak.reduce((s, w) => s + w, 0) / n;
    const p0 = p.map((x) => 1 - x);
    const sorted = [...p0].sort((a, b) => a - b);
    const h = r * (n - 1); // torch.quantile, linear interpolation
    const threshold = sorted[Math.floor(h)] +
      (h - Math.floor(h)) * (sorted[Math.ceil(h)] - sorted[Math.floor(h)]);
    const reference = p0.map((x) => (x < threshold ? 1 : 0));
    assert.deepEqual(auxconfHardLabels(p, weak), reference, `trial ${trial}`);
  }
});

Deno.test("auxconf loss is the mean cross-entropy against the targets", () => {
  // α = 0: −[0.8 log 0.9 + 0.2 log 0.1] and −[0.3 log 0.2 + 0.7 log 0.8], averaged
  const expected = -(0.8 * Math.log(0.9) + 0.2 * Math.log(0.1) + 0.3 * Math.log(0.2) + 0.7 * Math.log(0.8)) /
    2;
  close(auxconfLoss([0.9, 0.2], [0.8, 0.3], 0), expected, 1e-12);
});

Deno.test("auxconf alpha: linear warmup over the first 20 %, then flat, no jump", () => {
  close(auxconfAlpha(0, 100, 0.5), 0);
  close(auxconfAlpha(10, 100, 0.5), 0.25);
  close(auxconfAlpha(20, 100, 0.5), 0.5);
  close(auxconfAlpha(99, 100, 0.5), 0.5);
  close(auxconfAlpha(19, 100, 0.75), 0.7125);
  close(auxconfAlpha(5, 100, 0.5, 0.1), 0.25);
  close(auxconfAlpha(3, 10, 0.5, 0), 0.5);
  let previous = 0;
  for (let step = 0; step < 137; step++) {
    const alpha = auxconfAlpha(step, 137, 0.75);
    assert.ok(alpha - previous <= 0.75 / (0.2 * 137) + 1e-12 && alpha >= previous, `step ${step}`);
    previous = alpha;
  }
  assert.throws(() => auxconfAlpha(1, 0, 0.5), /totalSteps/);
});

Deno.test("Wilson interval, t-interval, median, quantile", () => {
  const w = wilsonInterval(8, 10); // textbook: (0.4902, 0.9433)
  close(w.lo, 0.490157, 1e-5);
  close(w.hi, 0.943319, 1e-5);
  const zero = wilsonInterval(0, 20);
  close(zero.lo, 0);
  close(zero.hi, 3.8416 / 20 / (1 + 3.8416 / 20), 1e-12); // z²/n / (1 + z²/n) when p̂ = 0
  // All correct: the upper bound is exactly 1 (rounding once left it at 0.9999999999999999, below p̂).
  for (const n of [17, 60, 118, 600]) assert.equal(wilsonInterval(n, n).hi, 1);
  const t = tInterval95([1, 2, 3, 4, 5]); // 3 ± 2.776 · sqrt(2.5) / sqrt(5)
  close(t.mean, 3);
  close(t.lo, 3 - 2.776 * Math.sqrt(0.5), 1e-12);
  close(t.hi, 3 + 2.776 * Math.sqrt(0.5), 1e-12);
  assert.ok(Number.isNaN(tInterval95([0.4]).lo));
  close(median([3, 1, 2]), 2);
  close(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
  close(quantile([1, 2, 3, 4], 0.5), 2.5);
  close(quantile([1, 2, 3, 4], 0.25), 1.75);
});

/** `count` copies of one cell: PGR 0 with the interval [lo, hi] around it, pooled over `seeds` seeds. */
const suite = (count: number, lo: number, hi: number, seeds = 1): PgrWithInterval[] =>
  Array.from({ length: count }, () => ({ pgr: 0, interval: { mean: 0, lo, hi }, seeds }));

Deno.test("suite median interval: each cell drawn from its own interval, against exact order statistics", () => {
  // One cell: exactly its own interval; without one, none (never [x, x]).
  const one = { pgr: 0.3, interval: { mean: 0.31, lo: -0.2, hi: 0.9 }, seeds: 2 };
  assert.deepEqual(suiteMedianInterval([one]), { lo: -0.2, hi: 0.9 });
  const bare = suiteMedianInterval([{ ...one, interval: { mean: 0.3, lo: NaN, hi: NaN } }]);
  assert.ok(Number.isNaN(bare.lo) && Number.isNaN(bare.hi));
  // 25 one-seed cells, each N(0, 0.1²) (interval ±1.96·0.1): the median is their 13th order statistic,
  // whose 97.5 % quantile solves P(Binomial(25, Φ(x/0.1)) ≥ 13) = 0.975: x = 0.04872.
  const normal = suiteMedianInterval(suite(25, -0.196, 0.196));
  close(normal.hi, 0.04872, 0.006);
  close(normal.lo, -0.04872, 0.006);
  // Each side scaled to its own half-width: twice as far below as above.
  const skewed = suiteMedianInterval(suite(25, -0.392, 0.196));
  close(skewed.hi, 0.04872, 0.006);
  close(skewed.lo, -0.09744, 0.012);
  // Two seeds: t with 1 degree of freedom, a Cauchy scaled so that ±12.706·0.1 is the 95 % interval. The
  // median of three: P(med ≤ x) = 3F² − 2F³ with F the Cauchy(0, 0.1) CDF; 0.975 at x = 0.3276.
  const cauchy = suiteMedianInterval(suite(3, -1.2706, 1.2706, 2));
  close(cauchy.hi, 0.3276, 0.04);
  close(cauchy.lo, -0.3276, 0.04);
  // No cell with an interval: no interval. One cell with spread among exact ones: the median moves only as
  // far as that cell can carry it (here between the exact 0.2 and 0.5).
  const exact = [0.1, 0.5, 0.2].map((pgr) => ({ pgr, interval: { mean: pgr, lo: NaN, hi: NaN }, seeds: 1 }));
  assert.ok(Number.isNaN(suiteMedianInterval(exact).lo));
  const mixed = suiteMedianInterval([...exact.slice(0, 2), {
    ...exact[2],
    interval: { mean: 0.2, lo: -1, hi: 1.4 },
  }]);
  assert.ok(mixed.lo >= 0.1 && mixed.lo < 0.15 && mixed.hi > 0.45 && mixed.hi <= 0.5, JSON.stringify(mixed));
  // Seeded: the same cells, the same interval.
  assert.deepEqual(suiteMedianInterval(suite(5, -0.3, 0.2, 3)), suiteMedianInterval(suite(5, -0.3, 0.2, 3)));
});
