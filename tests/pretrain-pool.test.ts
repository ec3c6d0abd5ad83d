/**
 * Sizes pretrained at once, each in a worker (server/lab/pretrain-pool.ts): every size ends with exactly
 * the parameters it gets when pretrained alone in process; the worker reports its start, progress and
 * checkpoints and waits for the checkpoint callback (one that throws fails it); an abort gives
 * pretrainSize's own interrupted error; the pool returns results in the requests' order, starts the largest
 * budget first, and a failing size stops the one beside it and rejects with its own error.
 */
import assert from "node:assert/strict";
import { loadCheckpoint } from "../kernels/checkpoint.ts";
import { PretrainInterrupted, type PretrainResult, pretrainSize } from "../server/lab/pretrain.ts";
import { pretrainInWorker, type PretrainRequest, pretrainSizes } from "../server/lab/pretrain-pool.ts";
import { TINY_CORPUS, tinySize } from "./helpers/tiny-ladder.ts";

const quiet = { evalEvery: 6, checkpointEvery: 8, logEvery: 4, valWindows: 24, knowledgeEntities: 8 };
const requests = (dataDir: string): PretrainRequest[] => [
  { size: tinySize("nano", 16), dataDir, corpus: TINY_CORPUS, seed: 3, ...quiet },
  { size: tinySize("micro", 24, 24), dataDir, corpus: TINY_CORPUS, seed: 4, ...quiet },
];

Deno.test("pretraining two sizes at once gives each the parameters it gets alone", async () => {
  const [together, alone] = await Promise.all([1, 2].map(() => Deno.makeTempDir({ prefix: "pool-" })));
  try {
    const seen = new Map<string, { tokens: number; total: number; params?: number; checkpoints: number[] }>();
    const track = (r: PretrainRequest): PretrainRequest => {
      const name = typeof r.size === "string" ? r.size : r.size.name;
      const s = { tokens: 0, total: 0, params: undefined as number | undefined, checkpoints: [] as number[] };
      seen.set(name, s);
      let checkpointing = false;
      return {
        ...r,
        onStart: (info) => s.params = info.params,
        onProgress: (p) => {
          assert.ok(!checkpointing, `${name}: the worker went on before its checkpoint callback ended`);
          [s.tokens, s.total] = [p.tokens, p.totalTokens];
        },
        onCheckpoint: async (status) => {
          checkpointing = true;
          await new Promise((resolve) => setTimeout(resolve, 150));
          s.checkpoints.push(status.step);
          checkpointing = false;
        },
      };
    };
    const results = await pretrainSizes(requests(together).map(track), { concurrency: 2 });
    assert.deepEqual(results.map((r) => r.status.size), ["nano", "micro"], "results in the requests' order");
    for (const [i, request] of requests(alone).entries()) {
      const one = await pretrainSize(request);
      const name = one.status.size;
      assert.equal(results[i].status.val_loss, one.status.val_loss, `${name} validation loss`);
      assert.deepEqual(
        (await loadCheckpoint(results[i].dir)).params,
        (await loadCheckpoint(one.dir)).params,
        `${name}: the same bits together as alone`,
      );
      const s = seen.get(name)!;
      assert.deepEqual([s.tokens, s.total], [one.status.tokens, one.status.tokens], "progress to the end");
      assert.equal(s.params, one.status.params, "onStart came through");
      assert.equal(s.checkpoints.at(-1), one.status.totalSteps, "the last checkpoint came through");
      assert.ok(s.checkpoints.length >= 2, `${name}: checkpoints ${s.checkpoints}`);
    }
  } finally {
    await Promise.all([together, alone].map((d) => Deno.remove(d, { recursive: true })));
  }
});

Deno.test("a worker's pretraining stops on abort with pretrainSize's error; a bad size or callback, with its own", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "pool-" });
  try {
    const controller = new AbortController();
    const stopped = pretrainInWorker({
      ...requests(dataDir)[0],
      size: tinySize("nano", 400),
      signal: controller.signal,
      onProgress: (p) => p.step > 0 && controller.abort(),
    });
    const err = await stopped.then(() => undefined, (e) => e);
    assert.ok(err instanceof PretrainInterrupted, `an interrupted error, got ${err}`);
    assert.ok(err.step > 0 && err.step < 400, `stopped at step ${err.step}`);
    await assert.rejects(pretrainInWorker({ size: "no-such-size", dataDir }), /no-such-size/);
    // A callback that throws fails the pretraining, as in process (no unhandled rejection left behind).
    await assert.rejects(
      pretrainInWorker({
        ...requests(dataDir)[0],
        size: tinySize("pico", 16),
        onCheckpoint: () => Promise.reject(new Error("the artifact store is down")),
      }),
      /the artifact store is down/,
    );
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

/** A stand-in run: resolves after `ms`, or fails, or waits for its abort. */
function standIn(log: string[]) {
  return (r: PretrainRequest): Promise<PretrainResult> => {
    const name = r.size as string;
    log.push(`start ${name}`);
    if (name === "fails") return Promise.reject(new Error("fails: out of memory"));
    return new Promise((resolve, reject) => {
      const done = () => resolve({ status: { size: name }, dir: name } as unknown as PretrainResult);
      if (name !== "waits") return setTimeout(done, 5);
      r.signal!.addEventListener("abort", () => {
        log.push("waits aborted");
        reject(new PretrainInterrupted(3));
      }, { once: true });
    });
  };
}

Deno.test("the pool starts the largest budget first; a failure stops the size beside it", async () => {
  const log: string[] = [];
  const results = await pretrainSizes(
    [{ size: "nano", dataDir: "" }, { size: "small", dataDir: "" }, { size: "micro", dataDir: "" }],
    { concurrency: 1, run: standIn(log) },
  );
  assert.deepEqual(log, ["start small", "start micro", "start nano"], "by the ladder's budgets");
  assert.deepEqual(results.map((r) => r.dir), ["nano", "small", "micro"], "results in the requests' order");

  log.length = 0;
  const user = new AbortController();
  await assert.rejects(
    pretrainSizes(
      [{ size: "waits", dataDir: "", tokens: 9, signal: user.signal }, {
        size: "fails",
        dataDir: "",
        tokens: 8,
      }, {
        size: "never",
        dataDir: "",
        tokens: 1,
      }],
      { concurrency: 2, run: standIn(log) },
    ),
    /fails: out of memory/,
  );
  assert.deepEqual(
    log,
    ["start waits", "start fails", "waits aborted"],
    "stopped beside it; the third not run",
  );
  assert.equal(user.signal.aborted, false, "the caller's own signal is left alone");
});
