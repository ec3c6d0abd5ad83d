/**
 * The weak→strong pipeline end to end on a tiny task (a JSONL file: the label is whether the text's last
 * letter is in a–m) with two tiny randomly initialized GPTs over the byte tokenizer: the readings and
 * agreement are checked against the per-example predictions recomputed independently, the cache is
 * checked to skip training (and to be shared across methods), and bad task lines are named.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ExperimentCache } from "../server/lab/cache.ts";
import { agreement, pgr, pgrBootstrap } from "../server/lab/metrics.ts";
import { runExperiment } from "../server/lab/w2s.ts";
import { loadTaskSplits } from "../server/tasks/load.ts";
import { randomWords, tinyModels, writeJsonl } from "./helpers/tiny-ladder.ts";

/** 240 texts of two random words; the label is whether the last letter is in a–m. */
function writeTask(dir: string): Promise<string> {
  const word = randomWords(99, 2, 3);
  const rows = Array.from({ length: 240 }, () => {
    const text = `${word()} ${word()}`;
    return { txt: text, hard_label: text.charCodeAt(text.length - 1) <= 109 ? 1 : 0 };
  });
  return writeJsonl(dir, "last-letter.jsonl", rows);
}

Deno.test("w2s: tiny experiment end to end, readings recomputed, cache reused across runs and methods", async () => {
  const dir = await Deno.makeTempDir({ prefix: "w2s-test-" });
  try {
    const task = await writeTask(dir);
    const models = tinyModels();
    const cache = new ExperimentCache(join(dir, "cache"));
    const options = {
      task,
      weak: "tiny",
      strong: "big",
      method: "naive" as const,
      seed: 3,
      epochs: 6,
      lr: 3e-3,
      batchSize: 16,
    };
    const roles: string[] = [];
    let lastProgress = { step: 0, total: 0 };
    const first = await runExperiment(options, {
      models,
      cache,
      onRun: (run) => void roles.push(`${run.role}:${run.cached}`),
      onProgress: (p) => (lastProgress = p),
    });
    assert.deepEqual(roles, ["weak:false", "ceiling:false", "student:false"]);
    assert.equal(lastProgress.step, lastProgress.total);
    // 240 examples, 30/30/15/25 % → test ≈ 60; the rule is learnable: the ceiling must learn it.
    assert.ok(first.n.test >= 50 && first.n.test <= 70, `test size ${first.n.test}`);
    assert.ok(first.ceiling_acc >= 0.85, `ceiling ${first.ceiling_acc}`);
    assert.ok(first.weak_acc > 0.5, `weak ${first.weak_acc}`);
    // PGR and accuracy intervals from the reported accuracies.
    assert.equal(first.pgr, pgr(first.weak_acc, first.ceiling_acc, first.student_acc));
    for (const key of ["weak_acc", "ceiling_acc", "student_acc"] as const) {
      assert.ok(first.ci[key].lo <= first[key] && first[key] <= first.ci[key].hi, key);
    }
    // Each run's selected point is the best validation point of its curve; the oracle the best test point.
    for (const run of first.runs) {
      const bestVal = Math.max(...run.curve.map((p) => p.valAcc));
      const bestTest = Math.max(...run.curve.map((p) => p.testAcc));
      assert.equal(run.selected.valAcc, bestVal, `${run.role} selection`);
      assert.equal(run.oracle.testAcc, bestTest, `${run.role} oracle`);
      assert.ok(run.oracle.testAcc >= run.selected.testAcc);
      assert.equal(run.curve.at(-1)!.step, run.steps);
    }
    assert.equal(first.oracle.student_acc, first.runs[2].oracle.testAcc);

    // Same experiment again: everything from the cache, identical readings, no training.
    const again = await runExperiment(options, { models, cache });
    assert.ok(again.runs.every((r) => r.cached));
    for (const key of ["weak_acc", "ceiling_acc", "student_acc", "pgr"] as const) {
      assert.equal(again[key], first[key]);
    }
    assert.deepEqual(again.agreement, first.agreement);
    assert.ok(again.seconds < first.seconds / 2, `cached ${again.seconds}s vs ${first.seconds}s`);

    // Another method shares the weak model and the ceiling; only the student trains.
    const aux = await runExperiment({ ...options, method: "auxconf" }, { models, cache });
    assert.deepEqual(aux.runs.map((r) => `${r.role}:${r.cached}`), [
      "weak:true",
      "ceiling:true",
      "student:false",
    ]);
    assert.equal(aux.alpha_max, 0.5);
    assert.equal(aux.weak_acc, first.weak_acc);
    assert.equal(aux.ceiling_acc, first.ceiling_acc);
    // A student trained with α warmup records α along its curve: 0 → 0.5, never above.
    const alphas = aux.runs[2].curve.map((p) => p.alpha);
    assert.ok(alphas.every((a) => a >= 0 && a <= 0.5) && alphas.at(-1) === 0.5, `alphas ${alphas}`);

    // Bootstrapping goes through the ladder sizes between weak and strong: tiny → small → big, with the
    // intermediate size trained twice (2-fold cross-fitting: no model labels its own training examples).
    const boot = await runExperiment({ ...options, method: "bootstrap" }, { models, cache });
    const bootRoles = boot.runs.map((r) => `${r.role}:${r.size}`);
    assert.deepEqual(bootRoles.filter((r) => r.startsWith("bootstrap")), [
      "bootstrap:small",
      "bootstrap:small",
    ]);
    assert.equal(boot.runs.find((r) => r.role === "weak")!.cached, true);
    assert.equal(boot.runs.find((r) => r.role === "student")!.size, "big");
    assert.equal(boot.pgr, pgr(boot.weak_acc, boot.ceiling_acc, boot.student_acc));

    // Generative finetuning: the strong model is LM-finetuned on the task's texts first, so neither the
    // ceiling nor the student can come from the plain caches.
    const gen = await runExperiment({ ...options, method: "generative", lmEpochs: 1 }, { models, cache });
    assert.equal(gen.runs.find((r) => r.role === "weak")!.cached, true);
    assert.equal(gen.runs.find((r) => r.role === "ceiling")!.cached, false);
    assert.equal(gen.runs.find((r) => r.role === "student")!.cached, false);
    assert.equal(gen.pgr, pgr(gen.weak_acc, gen.ceiling_acc, gen.student_acc));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("w2s: agreement and PGR interval come from the per-example predictions", () => {
  // Hand-made predictions on 6 examples: weak right on 0–2, wrong on 3–5.
  const gt = [1, 0, 1, 0, 1, 0];
  const weak = [1, 0, 1, 1, 0, 1];
  const student = [1, 0, 0, 0, 0, 1];
  const a = agreement(student, weak, gt);
  assert.equal(a.all, 4 / 6); // agree on 0, 1, 4, 5
  assert.equal(a.supervisor_correct, 2 / 3);
  assert.equal(a.supervisor_wrong, 2 / 3);
  // A student identical to the ceiling has PGR 1 on every resample with a gap.
  const ceiling = [...gt];
  const interval = pgrBootstrap(gt, weak, ceiling, ceiling, 200, 1);
  assert.equal(interval.lo, 1);
  assert.equal(interval.hi, 1);
});

Deno.test("w2s: a bad line of a task file is named by number, unknown tasks list the built-ins", async () => {
  const dir = await Deno.makeTempDir({ prefix: "w2s-task-" });
  try {
    const path = join(dir, "bad.jsonl");
    const good = Array.from({ length: 30 }, (_, i) => JSON.stringify({ txt: `t${i}`, hard_label: i % 2 }));
    good.splice(6, 0, JSON.stringify({ txt: "x", hard_label: 2 }));
    await Deno.writeTextFile(path, good.join("\n"));
    await assert.rejects(() => loadTaskSplits(path, 0), /bad\.jsonl: line 7: `hard_label` must be 0 or 1/);
    await assert.rejects(
      () => loadTaskSplits("no-such-task", 0),
      /unknown task "no-such-task".*polarity.*world tasks: names starting "world-"/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
