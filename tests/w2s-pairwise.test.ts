/**
 * The reward-modeling setting end to end: comparison files (prompt?, chosen, rejected) through the
 * weak→strong pipeline on tiny randomly initialized GPTs over the byte tokenizer. The pairs' ground truth
 * is recomputed from the raw file, the roles' targets are checked where they meet the training loop, and
 * the reward head must learn a rule that only it can read (which member ends in a–m).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ExperimentCache } from "../server/lab/cache.ts";
import { hardLabels, pgr } from "../server/lab/metrics.ts";
import type { RoleTraining } from "../server/lab/roles.ts";
import { sizeHyper } from "../server/lab/ladder.ts";
import { runExperiment } from "../server/lab/w2s.ts";
import { loadTaskSplits } from "../server/tasks/load.ts";
import { randomWords, tinyModels, writeJsonl } from "./helpers/tiny-ladder.ts";

const models = tinyModels();

const FIXTURE = new URL("./fixtures/comparisons.jsonl", import.meta.url).pathname;

/** The file's comparisons as written: the preferred and the other full text of each line. */
async function rawComparisons(path: string): Promise<Map<string, string>> {
  const preferredOf = new Map<string, string>();
  for (const line of (await Deno.readTextFile(path)).split("\n").filter((l) => l.trim())) {
    const { prompt = "", chosen, rejected } = JSON.parse(line);
    preferredOf.set(`${prompt}${chosen}\u0000${prompt}${rejected}`, prompt + chosen);
    preferredOf.set(`${prompt}${rejected}\u0000${prompt}${chosen}`, prompt + chosen);
  }
  return preferredOf;
}

/** Comparisons of two random words, one ending in a–m (preferred), the other in n–z. */
function writeLetterTask(dir: string): Promise<string> {
  const word = randomWords(11, 2, 4);
  const early = (w: string) => w.at(-1)! <= "m";
  const rows: { chosen: string; rejected: string }[] = [];
  while (rows.length < 240) {
    const [a, b] = [word(), word()];
    if (early(a) !== early(b)) rows.push(early(a) ? { chosen: a, rejected: b } : { chosen: b, rejected: a });
  }
  return writeJsonl(dir, "early-letter.jsonl", rows);
}

Deno.test("pairwise: the reward head learns a comparison rule; readings, auxconf and generative on pairs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "w2s-pairs-" });
  try {
    const task = await writeLetterTask(dir);
    const cache = new ExperimentCache(join(dir, "cache"));
    const options = {
      task,
      weak: "tiny",
      strong: "big",
      method: "naive" as const,
      seed: 2,
      epochs: 8,
      lr: 3e-3,
      batchSize: 16,
      headInit: "zero" as const,
      embeddings: "train" as const,
    };
    const result = await runExperiment(options, { models, cache });
    assert.equal(result.format, "pairwise");
    assert.equal(result.n.train1 + result.n.train2 + result.n.validation + result.n.test, 240);
    assert.ok(result.ceiling_acc >= 0.85, `ceiling ${result.ceiling_acc}`);
    assert.ok(result.weak_acc > 0.6, `weak ${result.weak_acc}`);
    assert.equal(result.pgr, pgr(result.weak_acc, result.ceiling_acc, result.student_acc));

    // auxconf on the preference logit: the weak model and the ceiling come from the cache, α warms up.
    const aux = await runExperiment({ ...options, method: "auxconf" }, { models, cache });
    assert.deepEqual(aux.runs.map((r) => `${r.role}:${r.cached}`), [
      "weak:true",
      "ceiling:true",
      "student:false",
    ]);
    assert.equal(aux.runs[2].curve.at(-1)!.alpha, 0.5);

    // Generative finetuning on the preferred texts of train1, then the ceiling and the student anew.
    const gen = await runExperiment({ ...options, method: "generative", lmEpochs: 1 }, { models, cache });
    assert.equal(gen.format, "pairwise");
    assert.equal(gen.runs.find((r) => r.role === "ceiling")!.cached, false);

    // Bootstrapping through the middle size (2-fold) and the probe student: both read pairs too.
    const boot = await runExperiment({ ...options, method: "bootstrap" }, { models, cache });
    assert.deepEqual(boot.runs.filter((r) => r.role === "bootstrap").map((r) => r.size), ["small", "small"]);
    const { embeddings: _e, headInit: _h, ...plain } = options;
    const probe = await runExperiment({ ...plain, mode: "probe" }, { models, cache });
    assert.equal(probe.format, "pairwise");
    // The frozen features of the big model still rank the rule's pairs: a linear reward on h₂ − h₁.
    assert.ok(probe.ceiling_acc > 0.6, `probe ceiling ${probe.ceiling_acc}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pairwise: a hand-written comparison file runs end to end; targets meet the loop as they should", async () => {
  const preferredOf = await rawComparisons(FIXTURE);
  const seed = 1;
  const splits = await loadTaskSplits(FIXTURE, seed);
  // Ground truth recomputed from the raw file: label 1 exactly when `other` is the preferred text.
  const truth = (e: { txt: string; other?: string }) =>
    preferredOf.get(`${e.txt}\u0000${e.other}`) === e.other ? 1 : 0;
  for (const split of [splits.train1, splits.train2, splits.validation, splits.test]) {
    for (const e of split) {
      assert.ok(preferredOf.has(`${e.txt}\u0000${e.other}`), `unknown pair ${JSON.stringify(e)}`);
      assert.equal(e.hard_label, truth(e));
    }
  }
  const seen: RoleTraining[] = [];
  let weakTrain2: number[] = [];
  let weakValidation: number[] = [];
  const result = await runExperiment(
    { task: FIXTURE, weak: "tiny", strong: "big", method: "naive", seed, batchSize: 4 },
    {
      models,
      trainer: async (input, run) => {
        seen.push(input);
        const out = await run();
        if (input.role === "weak") {
          weakTrain2 = out.predictions.train2;
          weakValidation = out.predictions.validation;
        }
        return out;
      },
    },
  );
  assert.equal(result.format, "pairwise");
  assert.equal(result.n.train1 + result.n.train2 + result.n.validation + result.n.test, 25);
  const [weak, ceiling, student] = seen;
  assert.deepEqual([weak.role, ceiling.role, student.role], ["weak", "ceiling", "student"]);
  assert.deepEqual([...weak.trainTargets], splits.train1.map(truth));
  assert.deepEqual([...ceiling.trainTargets], splits.train2.map(truth));
  // The student learns the weak reward model's preferences, never the ground truth.
  assert.deepEqual([...student.trainTargets], weakTrain2);
  assert.equal(weakTrain2.length, splits.train2.length);
  assert.deepEqual([...student.validationLabels], hardLabels(weakValidation));
  assert.deepEqual([...weak.testLabels], splits.test.map(truth));
  // No lr or epochs given: every role takes the pairwise defaults (ladder.ts PAIRWISE_HYPER), not the base's.
  for (const run of result.runs) assert.deepEqual([run.hyper!.lr, run.hyper!.epochs], [1e-3, 8], run.role);
});

Deno.test("pairwise: a malformed comparison line is named by number; prompting is refused for pairs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "w2s-pairs-bad-" });
  try {
    const lines = (await Deno.readTextFile(FIXTURE)).split("\n").filter((l) => l.trim());
    const broken = lines.slice();
    broken[6] = JSON.stringify({ prompt: "Human: hi\n\nAssistant:", chosen: " Hello." });
    const path = join(dir, "broken.jsonl");
    await Deno.writeTextFile(path, broken.join("\n"));
    await assert.rejects(() => loadTaskSplits(path, 0), /broken\.jsonl: line 7: .*rejected/);
    await assert.rejects(
      () =>
        runExperiment(
          { task: FIXTURE, weak: "tiny", strong: "big", method: "naive", seed: 0, promptingShots: 2 },
          { models },
        ),
      /pairwise task: the prompting baselines/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pairwise defaults: lr 1e-3 for 8 epochs over the base, the user's settings win", () => {
  const base = sizeHyper("micro");
  const pairwise = sizeHyper("micro", {}, "pairwise");
  assert.deepEqual([base.lr, base.epochs], [1e-4, 4]);
  assert.deepEqual({ ...pairwise, lr: base.lr, epochs: base.epochs }, base);
  assert.deepEqual([pairwise.lr, pairwise.epochs], [1e-3, 8]);
  assert.deepEqual([sizeHyper("micro", { lr: 3e-4 }, "pairwise").lr], [3e-4]);
});
