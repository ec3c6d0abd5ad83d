/**
 * Sweep summaries (server/lab/sweep.ts) against hand-computed values: the cell's PGR is the PGR of the
 * seed-mean accuracies, a cell is flagged "gap too small" when ceiling − weak is within the test-sampling
 * noise or the seed-to-seed spread of the gap, and flagged cells stay out of each method's median PGR.
 */
import assert from "node:assert/strict";
import {
  sizePairs,
  summarizeCell,
  summarizeMedians,
  summarizeResults,
  sweepCsv,
} from "../server/lab/sweep.ts";
import { formatSweep } from "../scripts/cli/sweep.ts";

type Result = Parameters<typeof summarizeCell>[0][number];

/** An experiment result with the fields the summaries read (the rest of the pipeline is not involved). */
function result(
  pair: [string, string],
  method: "naive" | "auxconf",
  seed: number,
  [weak, ceiling, student]: [number, number, number],
  nTest = 400,
): Result {
  return {
    task: "toy",
    weak: pair[0],
    strong: pair[1],
    method,
    seed,
    n: { train1: 10, train2: 10, validation: 10, test: nTest },
    weak_acc: weak,
    ceiling_acc: ceiling,
    student_acc: student,
    pgr: (student - weak) / (ceiling - weak),
    gap_too_small: false,
    agreement: { all: 0.5, supervisor_correct: 1, supervisor_wrong: 0 },
    oracle: { weak_acc: weak, ceiling_acc: ceiling, student_acc: student + 0.01, pgr: 0, student_step: 3 },
    // A stand-in for the experiment's paired-bootstrap interval: its PGR ± 0.1.
    ci: {
      pgr: { lo: (student - weak) / (ceiling - weak) - 0.1, hi: (student - weak) / (ceiling - weak) + 0.1 },
    },
  } as unknown as Result;
}

const close = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-4, `${what}: ${actual} vs ${expected}`);

Deno.test("sweep: pairs are every weak before strong in the size order", () => {
  assert.deepEqual(sizePairs(["a", "b", "c"]), [["a", "b"], ["a", "c"], ["b", "c"]]);
});

Deno.test("sweep: one-seed cells — PGR, test-sampling noise and the gap flag, by hand", () => {
  // weak 0.6, ceiling 0.9, n 400: noise 1.96·√(0.6·0.4/400 + 0.9·0.1/400) = 0.056297 < gap 0.3.
  const wide = summarizeCell([result(["a", "b"], "naive", 0, [0.6, 0.9, 0.8])]);
  close(wide.pgr, 0.2 / 0.3, "pgr");
  close(wide.gap_noise, 0.056297, "noise");
  assert.equal(wide.gap_too_small, false);
  // One seed: the cell's interval is the experiment's own (paired bootstrap), not an undefined t-interval.
  close(wide.pgr_ci.lo, 0.2 / 0.3 - 0.1, "one-seed interval lo");
  close(wide.pgr_ci.hi, 0.2 / 0.3 + 0.1, "one-seed interval hi");
  close(wide.oracle_student_acc, 0.81, "oracle student");
  // weak 0.9, ceiling 0.92: noise 1.96·√(0.09/400 + 0.0736/400) = 0.039637 > gap 0.02.
  const narrow = summarizeCell([result(["b", "c"], "naive", 0, [0.9, 0.92, 0.95])]);
  close(narrow.gap_noise, 0.039637, "noise");
  assert.equal(narrow.gap_too_small, true);
});

Deno.test("sweep: two seeds — PGR of the mean accuracies, and the seed spread of the gap as noise", () => {
  const cell = summarizeCell([
    result(["a", "b"], "naive", 0, [0.6, 0.9, 0.75], 100),
    result(["a", "b"], "naive", 1, [0.7, 0.9, 0.8], 100),
  ]);
  assert.deepEqual(cell.seeds, [0, 1]);
  close(cell.weak_acc.mean, 0.65, "weak mean");
  close(cell.student_acc.mean, 0.775, "student mean");
  close(cell.pgr, (0.775 - 0.65) / (0.9 - 0.65), "pgr of the means");
  // Gaps 0.3 and 0.2: sd 0.0707107, t(1) = 12.706, half-width 12.706 · 0.0707107 / √2 = 0.6353, larger
  // than the sampling noise 1.96·√(0.65·0.35/100 + 0.9·0.1/100) = 0.1104: the cell is flagged.
  close(cell.gap_noise, 0.6353, "noise from the seed spread");
  assert.equal(cell.gap_too_small, true);
  close(cell.pgr_ci.mean, 0.5, "mean of per-seed PGRs");
  // An accuracy's t-interval is cut to [0, 1]: weak 0.6 and 0.7, half 0.6353 → [0.0147, 1.2853] → hi 1.
  close(cell.weak_acc.lo, 0.65 - 0.6353, "weak lo");
  assert.equal(cell.weak_acc.hi, 1, "weak hi, cut to 1");
  // The PGR's is not a share's: per-seed PGRs 0.5 and 0.5, no spread; the gaps' spread stays uncut above.
  close(cell.pgr_ci.lo, 0.5, "pgr lo");
});

Deno.test("sweep: agreement intervals — Wilson over one seed's test subsets, t over seeds cut to [0, 1]", () => {
  // One seed: weak 0.6 of 400 test examples, so the supervisor is right on 240 and wrong on 160.
  const one = summarizeCell([result(["a", "b"], "naive", 0, [0.6, 0.9, 0.8])]); // all 0.5, right 1, wrong 0
  // Wilson(200 of 400): centre 0.5, half 1.96/(1 + 1.96²/400) · √(0.25/400 + 1.96²/(4·400²)) = 0.048766.
  close(one.agreement_ci.all!.lo, 0.451234, "all lo");
  close(one.agreement_ci.all!.hi, 0.548766, "all hi");
  // 240 of 240 and 0 of 160: the ends are exact, the other bound z²/(n + z²).
  assert.equal(one.agreement_ci.supervisor_correct!.hi, 1);
  close(one.agreement_ci.supervisor_correct!.lo, 240 / (240 + 1.96 ** 2), "right lo");
  assert.equal(one.agreement_ci.supervisor_wrong!.lo, 0);
  close(one.agreement_ci.supervisor_wrong!.hi, 1.96 ** 2 / (160 + 1.96 ** 2), "wrong hi");
  // Two seeds at 0.9 and 0.96: mean 0.93, s = 0.042426, t(1) = 12.706, half 12.706 · s / √2 = 0.381180:
  // [0.548820, 1.311180], its upper end cut to 1 (a share's mean is at most 1).
  const seeds = [0.9, 0.96].map((all, seed) => ({
    ...result(["a", "b"], "naive", seed, [0.6, 0.9, 0.8]),
    agreement: { all, supervisor_correct: 0.9, supervisor_wrong: null },
  }));
  const two = summarizeCell(seeds);
  close(two.agreement_ci.all!.lo, 0.93 - 0.381180, "t lo");
  assert.equal(two.agreement_ci.all!.hi, 1, "t hi, cut to 1");
  close(two.agreement_ci.supervisor_correct!.hi, 0.9, "no spread, no width");
  assert.equal(two.agreement_ci.supervisor_wrong, null, "no shares, no interval");
});

Deno.test("lab sweep's table: agree(wrong) with its interval where the cell has one", () => {
  // One seed, weak 0.6 of 400: the student agrees with none of the 160 wrong labels, Wilson [0, z²/(160 + z²)].
  const one = summarizeCell([result(["a", "b"], "naive", 0, [0.6, 0.9, 0.8])]);
  // Two seeds with no wrong labels to agree on: no share, no interval.
  const none = summarizeCell([0, 1].map((seed) => ({
    ...result(["a", "c"], "naive", seed, [0.6, 0.9, 0.8]),
    agreement: { all: 0.5, supervisor_correct: 0.9, supervisor_wrong: null },
  })));
  const table = formatSweep({
    cells: [{ ...one, results: [] }, { ...none, results: [] }],
    medians: [],
    experiments: 3,
    seconds: 1,
  }).split("\n");
  assert.match(table[0], /agree\(wrong\) \[95% CI\] {2}oracle PGR/);
  assert.match(table[1], /a→b .* 0\.00 \[0\.00, 0\.02\]\s+0\.70$/, table[1]);
  assert.match(table[2], /a→c .*\]\s+-\s+0\.70$/, table[2]);
  // A cell whose gap is too small prints no PGR at all, the oracle's included (it was 16.26 in one demo cell).
  const flagged = formatSweep({
    cells: [{ ...one, gap_too_small: true, results: [] }],
    medians: [],
    experiments: 1,
    seconds: 1,
  }).split("\n")[1];
  assert.match(flagged, /gap too small\s+0\.00 \[0\.00, 0\.02\]\s+-$/, flagged);
});

Deno.test("sweep: each method's median PGR leaves out flagged cells", () => {
  const cells = [
    summarizeCell([result(["a", "b"], "naive", 0, [0.6, 0.9, 0.8])]), // pgr 0.6667
    summarizeCell([result(["a", "c"], "naive", 0, [0.6, 1.0, 0.7])]), // pgr 0.25
    summarizeCell([result(["b", "c"], "naive", 0, [0.9, 0.92, 0.95])]), // pgr 2.5, flagged
    summarizeCell([result(["a", "b"], "auxconf", 0, [0.6, 0.9, 0.9])]), // pgr 1
  ];
  const medians = summarizeMedians(cells);
  // One task: a line per task × method, then the same per method over all tasks (task null).
  assert.deepEqual(medians.map((m) => [m.task, m.method]), [
    ["toy", "naive"],
    ["toy", "auxconf"],
    [null, "naive"],
    [null, "auxconf"],
  ]);
  const [naive, auxconf] = medians;
  assert.equal(naive.method, "naive");
  close(naive.median_pgr, (0.2 / 0.3 + 0.25) / 2, "naive median of the two unflagged cells");
  assert.equal(naive.cells, 2);
  assert.equal(naive.skipped, 1);
  // The suite's interval: each cell's PGR drawn from its own ±0.1 (normal, σ = 0.1/1.96); the median of two
  // is their mean, σ/√2 = 0.0361, so 0.4583 ± 0.0707 (the cells' spread, 0.25 to 0.67, is not noise).
  assert.ok(Math.abs(naive.median_ci.lo - 0.3876) < 0.006, `lo ${naive.median_ci.lo}`);
  assert.ok(Math.abs(naive.median_ci.hi - 0.5290) < 0.006, `hi ${naive.median_ci.hi}`);
  assert.equal(auxconf.method, "auxconf");
  close(auxconf.median_pgr, 1, "auxconf");
});

Deno.test("stored results: settings never pool, a repeated seed counts once, one cell keeps its own interval", () => {
  const full = result(["a", "b"], "naive", 0, [0.6, 0.9, 0.8]); // pgr 0.6667
  const rerun = result(["a", "b"], "naive", 0, [0.6, 0.9, 0.8]);
  const probe = result(["a", "b"], "naive", 0, [0.5, 0.5, 0.5]); // a different setting: 16 examples, probe
  const seed1 = result(["a", "b"], "naive", 1, [0.6, 0.9, 0.75]); // pgr 0.5
  const settings = ["", "", "studentMode probe, maxExamples 16", ""];
  const summary = summarizeResults([full, rerun, probe, seed1], (i) => settings[i]);
  assert.deepEqual(summary.cells.map((c) => [c.settings ?? "", c.seeds]), [
    ["", [0, 1]],
    ["studentMode probe, maxExamples 16", [0]],
  ]);
  // The defaults' cell: seed 0 once (its rerun is the same experiment) and seed 1, by hand.
  close(summary.cells[0].ceiling_acc.mean, 0.9, "ceiling not mixed with the probe run's 0.5");
  close(summary.cells[0].student_acc.mean, 0.775, "student mean of seeds 0 and 1");
  // Medians per settings; over one cell the interval is that cell's own, never [x, x].
  const perMethod = summary.medians.filter((m) => m.task === null);
  assert.deepEqual(perMethod.map((m) => [m.settings ?? "", m.cells]), [
    ["", 1],
    ["studentMode probe, maxExamples 16", 0],
  ]);
  close(perMethod[0].median_ci.lo, summary.cells[0].pgr_ci.lo, "one cell: its own interval, lo");
  close(perMethod[0].median_ci.hi, summary.cells[0].pgr_ci.hi, "one cell: its own interval, hi");
  assert.ok(perMethod[0].median_ci.hi - perMethod[0].median_ci.lo > 0.1);
  // The probe cell's gap is zero: flagged, so its median has no cell and no interval.
  const flagged = summary.medians.find((m) => m.task === null && m.settings);
  assert.deepEqual([flagged?.cells, flagged?.skipped, Number.isNaN(flagged?.median_ci.lo)], [0, 1, true]);
});

Deno.test("sweep: CSV has one row per experiment with the header's columns", () => {
  const results = [result(["a", "b"], "naive", 3, [0.6, 0.9, 0.8])];
  const cell = { ...summarizeCell(results), results };
  const csv = sweepCsv({ cells: [cell], medians: [], experiments: 1, seconds: 0 });
  const [header, row, ...rest] = csv.split("\n");
  assert.equal(rest.length, 0);
  assert.equal(header.split(",").length, row.split(",").length);
  assert.equal(row.split(",").slice(0, 8).join(","), "toy,a,b,naive,3,0.6,0.9,0.8");
  assert.ok(header.endsWith(",format") && row.endsWith(",classification"), row);
  const pairwise = [{ ...results[0], format: "pairwise" as const }];
  const pairCsv = sweepCsv({
    cells: [{ ...cell, results: pairwise }],
    medians: [],
    experiments: 1,
    seconds: 0,
  });
  assert.ok(pairCsv.endsWith(",pairwise"), pairCsv);
});

Deno.test("sweep: summarizeResults groups experiments into cells by task, pair and method, seeds pooled", () => {
  const summary = summarizeResults([
    result(["a", "b"], "naive", 0, [0.6, 0.9, 0.8]),
    result(["a", "b"], "naive", 1, [0.6, 0.9, 0.8]),
    result(["a", "c"], "naive", 0, [0.6, 1.0, 0.7]),
  ]);
  assert.deepEqual(summary.cells.map((c) => [c.weak, c.strong, c.seeds]), [["a", "b", [0, 1]], ["a", "c", [
    0,
  ]]]);
  close(summary.medians[0].median_pgr, (0.2 / 0.3 + 0.25) / 2, "median over the two cells");
});
