/**
 * Sizes pretrained at once, each in a worker (server/lab/pretrain-pool.ts): every size ends with exactly
 * the parameters it gets when pretrained alone in process, the results come back in the jobs' order, each
 * job's progress reaches its budget, the largest budget starts first, and a failing job rejects with its
 * own error.
 */
import assert from "node:assert/strict";
import { loadCheckpoint } from "../kernels/checkpoint.ts";
import { pretrainSize } from "../server/lab/pretrain.ts";
import { type PretrainJob, pretrainSizes } from "../server/lab/pretrain-pool.ts";
import { TINY_CORPUS, tinySize } from "./helpers/tiny-ladder.ts";

const quiet = { evalEvery: 6, checkpointEvery: 8, logEvery: 4, valWindows: 24, knowledgeEntities: 8 };
const jobs = (dataDir: string): PretrainJob[] => [
  { size: tinySize("nano", 16), dataDir, corpus: TINY_CORPUS, seed: 3, ...quiet },
  { size: tinySize("micro", 24, 24), dataDir, corpus: TINY_CORPUS, seed: 4, ...quiet },
];

Deno.test("pretraining two sizes at once gives each the parameters it gets alone", async () => {
  const [together, alone] = await Promise.all([1, 2].map(() => Deno.makeTempDir({ prefix: "pool-" })));
  try {
    const seen = new Map<number, { tokens: number; total: number }>();
    const results = await pretrainSizes(jobs(together), {
      concurrency: 2,
      onProgress: (i, p) => seen.set(i, { tokens: p.tokens, total: p.totalTokens }),
    });
    assert.deepEqual(results.map((r) => r.status.size), ["nano", "micro"], "results in the jobs' order");
    for (const [i, job] of jobs(alone).entries()) {
      const one = await pretrainSize(job);
      assert.equal(results[i].status.val_loss, one.status.val_loss, `${one.status.size} validation loss`);
      assert.deepEqual(
        (await loadCheckpoint(results[i].dir)).params,
        (await loadCheckpoint(one.dir)).params,
        `${one.status.size}: the same bits together as alone`,
      );
      assert.deepEqual(
        seen.get(i),
        { tokens: one.status.tokens, total: one.status.tokens },
        "progress to the end",
      );
    }
  } finally {
    await Promise.all([together, alone].map((d) => Deno.remove(d, { recursive: true })));
  }
});

Deno.test("one size at a time starts with the largest budget; a failing job rejects with its error", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "pool-" });
  try {
    const started: number[] = [];
    await pretrainSizes(jobs(dataDir), {
      concurrency: 1,
      onProgress: (i) => started.includes(i) || started.push(i),
    });
    assert.deepEqual(started, [1, 0], "micro (24 steps) before nano (16)");
    await assert.rejects(
      pretrainSizes([{ size: "no-such-size", dataDir }]),
      /no-such-size/,
    );
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
