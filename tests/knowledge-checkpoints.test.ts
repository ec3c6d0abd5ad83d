/**
 * Knowledge as an axis: pretraining keeps a loadable snapshot with its knowledge report at 10, 30 and
 * 100 % of a size's token budget (steps hand-computed from the budget), a run that crashes and resumes
 * ends with the same snapshots, neither lost nor doubled; the reference "SIZE@PCT" is parsed with errors
 * that name the fix, a snapshot is refused as the weak model, and an experiment with strong "SIZE@10"
 * trains its ceiling and student from the snapshot's file and records the snapshot's recall.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { openDb } from "../db/client.ts";
import { loadCheckpoint } from "../kernels/checkpoint.ts";
import type { Gpu } from "../kernels/device.ts";
import { getGpu } from "../kernels/device.ts";
import {
  bootstrapChainError,
  pairError,
  sizesBetween,
  sweepSizesError,
} from "../server/contract/ladder-rule.ts";
import { MODEL_REF, parseModelRef } from "../server/contract/model-ref.ts";
import { createApp } from "../server/api/app.ts";
import type { ModelListing } from "../server/contract/models.ts";
import { EventBus } from "../server/jobs/bus.ts";
import type { FinetuneResult } from "../server/lab/finetune.ts";
import { KnowledgeProbe } from "../server/lab/knowledge.ts";
import { type LabCorpusOptions, labWorld } from "../server/lab/lab-corpus.ts";
import { LADDER, type LadderSize, sizeHyper } from "../server/lab/ladder.ts";
import { ladderModelSource, missingSnapshotError } from "../server/lab/model-source.ts";
import { modelDir, readSnapshot, snapshotDir } from "../server/lab/model-store.ts";
import { ladderStatus } from "../server/lab/models.ts";
import { pretrainSize } from "../server/lab/pretrain.ts";
import type { RoleTrainer, RoleTraining } from "../server/lab/roles.ts";
import { runExperiment } from "../server/lab/w2s.ts";
import { BUILTIN_TASKS } from "../server/tasks/registry.ts";

const corpus: LabCorpusOptions = { world: { seed: 5, entities: 24, maxMentions: 6 }, merges: 32 };
// 20 steps of 8 rows × 16 tokens: snapshots after steps 2 (10 %), 6 (30 %) and 20 (100 %).
const ROWS = 8, CONTEXT = 16, STEPS = 20;
const tiny = (name: string, width: number): LadderSize => ({
  name,
  width,
  layers: 1,
  heads: 2,
  contextLength: CONTEXT,
  tokens: STEPS * ROWS * CONTEXT,
  batchSize: ROWS,
  lr: 1e-2,
  cpu: true,
});
const quiet = { evalEvery: 5, checkpointEvery: 4, logEvery: 4, valWindows: 8, knowledgeEntities: 8 };
const EXPECTED = [{ pct: 10, step: 2 }, { pct: 30, step: 6 }, { pct: 100, step: 20 }];
const SIZES = LADDER.map((s) => s.name);

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
  return diff;
}

const fileHash = async (path: string) =>
  createHash("sha256").update(await Deno.readFile(path)).digest("hex").slice(0, 24);

/** Wilson's 95 % interval of k of n, written out: (p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n). */
function wilson(k: number, n: number): [number, number] {
  const [z, p] = [1.96, k / n];
  const centre = (p + z * z / (2 * n)) / (1 + z * z / n);
  const half = z / (1 + z * z / n) * Math.sqrt(p * (1 - p) / n + z * z / (4 * n * n));
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

Deno.test("pretraining keeps loadable snapshots with knowledge at 10, 30 and 100 % of the budget", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "snapshots-test-" });
  try {
    const size = tiny("nano", 16);
    const run = await pretrainSize({ size, dataDir, corpus, seed: 3, ...quiet });
    assert.equal(run.status.step, STEPS);
    const final = await loadCheckpoint(run.dir);
    const { world, tokenizer } = await labWorld(dataDir, corpus);
    const gpu = await getGpu();
    for (const { pct, step } of EXPECTED) {
      const record = (await readSnapshot(dataDir, "nano", pct))!;
      assert.ok(record, `no snapshot at ${pct} %`);
      assert.deepEqual([record.pct, record.step, record.totalSteps], [pct, step, STEPS]);
      assert.equal(record.tokens, step * ROWS * CONTEXT);
      const snapshot = await loadCheckpoint(snapshotDir(dataDir, "nano", pct));
      assert.deepEqual(snapshot.config, final.config);
      // The report: every world attribute over the curve's 8 entities, split by times stated.
      const report = record.report as Awaited<ReturnType<KnowledgeProbe["measure"]>>;
      assert.deepEqual(report.attributes.map((a) => a.attribute), world.attributes.map((a) => a.name));
      assert.equal(record.knowledgeAttribute, "region");
      assert.equal(record.recall, report.attributes[0].accuracy);
      for (const a of report.attributes) assert.equal(a.buckets.reduce((n, b) => n + b.n, 0), 8);
      // The report is of the snapshot's own parameters.
      const probe = new KnowledgeProbe(gpu, snapshot.config, tokenizer, world, { maxEntities: 8 });
      try {
        assert.deepEqual(await probe.measure(snapshot.params), report);
      } finally {
        probe.destroy();
      }
    }
    const at = (pct: number) => loadCheckpoint(snapshotDir(dataDir, "nano", pct)).then((c) => c.params);
    assert.equal(maxAbsDiff(await at(100), final.params), 0, "the 100 % snapshot is the final model");
    assert.ok(maxAbsDiff(await at(10), final.params) > 1e-3, "the 10 % snapshot holds earlier parameters");

    // The listing shows each snapshot with its reference, tokens and recall.
    const nano = (await ladderStatus(dataDir)).find((e) => e.name === "nano")!;
    assert.deepEqual(nano.snapshots!.map((s) => [s.ref, s.step, s.tokens]), [
      ["nano@10", 2, 256],
      ["nano@30", 6, 768],
      ["nano@100", 20, 2560],
    ]);
    // Each recall with its Wilson interval over the 8 entities asked, by the formula here; the size's
    // last recall (the 100 % snapshot's) with the same.
    for (const s of [...nano.snapshots!, { recall: nano.knowledge!, n: 8, ci: nano.knowledgeCi! }]) {
      assert.equal(s.n, 8);
      const [lo, hi] = wilson(Math.round(s.recall! * 8), 8);
      assert.ok(Math.abs(s.ci!.lo - lo) < 1e-9 && Math.abs(s.ci!.hi - hi) < 1e-9, `${s.recall}: ${s.ci}`);
    }
    assert.equal(nano.knowledge, nano.snapshots!.at(-1)!.recall);

    // A run that crashes at step 7 resumes from its state at step 4 and passes step 6 again: the same
    // three snapshots, rewritten in place, none doubled or left half-written.
    const otherDir = join(dataDir, "other");
    await assert.rejects(
      pretrainSize({
        size,
        dataDir: otherDir,
        corpus,
        seed: 3,
        ...quiet,
        onProgress: (p) => {
          if (p.step === 7) throw new Error("simulated crash");
        },
      }),
      /simulated crash/,
    );
    assert.ok(await readSnapshot(otherDir, "nano", 30), "the crashed run had written its 30 % snapshot");
    const resumed = await pretrainSize({ size, dataDir: otherDir, corpus, seed: 3, ...quiet });
    assert.equal(resumed.resumedFromStep, 4);
    const entries = [...Deno.readDirSync(join(modelDir(otherDir, "nano"), "at"))].map((e) => e.name).sort();
    assert.deepEqual(entries, ["10", "100", "30"]);
    for (const { pct } of EXPECTED) {
      const again = await loadCheckpoint(snapshotDir(otherDir, "nano", pct));
      assert.ok(maxAbsDiff(again.params, await at(pct)) < 1e-5, `resumed ${pct} % snapshot differs`);
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("model references: SIZE@PCT parsed with errors naming the fix; snapshots only as strong", () => {
  assert.deepEqual(parseModelRef("medium@30", SIZES), { size: "medium", pct: 30 });
  assert.deepEqual(parseModelRef("medium", SIZES), { size: "medium", pct: 100 });
  assert.deepEqual(parseModelRef("medium@100", SIZES), { size: "medium", pct: 100 });
  assert.throws(
    () => parseModelRef("medium@7", SIZES),
    /snapshots at 10, 30, 100 % of the token budget; use medium@10, medium@30, medium@100/,
  );
  assert.throws(
    () => parseModelRef("huge@30", SIZES),
    /unknown size "huge" in "huge@30"; sizes are: nano, micro/,
  );
  assert.throws(() => parseModelRef("medium@", SIZES), /needs a percentage after "@": one of 10, 30, 100/);
  assert.throws(() => parseModelRef("@30", SIZES), /names no size before "@"/);
  const form = MODEL_REF.safeParse("medium@7");
  assert.ok(!form.success && /use medium@10/.test(form.error.issues[0].message));

  // The ladder rule ranks a snapshot as its size and refuses it on the weak side.
  assert.match(
    pairError(SIZES, "mini@30", "small")!,
    /"mini@30" is a pretraining snapshot.*use mini as the weak/,
  );
  assert.equal(pairError(SIZES, "mini", "small@30"), null);
  assert.equal(pairError(SIZES, "mini@100", "small"), null);
  assert.match(pairError(SIZES, "medium@10", "medium")!, /snapshot/);
  assert.match(pairError(SIZES, "medium", "medium@30")!, /weak model must be smaller/);
  assert.match(pairError(SIZES, "mini", "huge@30")!, /unknown size "huge"/);
  assert.deepEqual(sizesBetween(SIZES, "nano", "small@30"), ["micro", "mini"]);
  assert.equal(bootstrapChainError(SIZES, "nano", "small@30", ["micro", "mini"]), null);

  // A sweep: every model must take part in a pair; a snapshot needs a smaller size to supervise it.
  assert.equal(sweepSizesError(SIZES, ["mini", "medium@10", "medium@30", "medium"]), null);
  assert.match(sweepSizesError(SIZES, ["medium@10", "medium@30"])!, /medium@10 is a snapshot.*smaller size/);

  // A snapshot is finetuned with its size's settings.
  assert.deepEqual(sizeHyper("medium@30"), sizeHyper("medium"));
});

/** Stands in for training: records what each role starts from and predicts 0.25 / 0.75 alternately. */
function standIn(calls: RoleTraining[]): RoleTrainer {
  return (input) => {
    calls.push(input);
    const predictions = Object.fromEntries(
      Object.entries(input.predict).map((
        [name, set],
      ) => [name, Array.from({ length: set.n }, (_, i) => 0.25 + (i % 2) / 2)]),
    );
    const reading = { step: 1, valAcc: 0.5, testAcc: input.role === "weak" ? 0.6 : 0.8 };
    const result: FinetuneResult = {
      curve: [],
      final: reading,
      selected: reading,
      oracle: reading,
      predictions,
      steps: 1,
      seconds: 0,
    };
    return Promise.resolve(result);
  };
}

Deno.test("w2s with strong SIZE@10 trains ceiling and student from the snapshot's file", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "snapshots-w2s-" });
  try {
    await pretrainSize({ size: tiny("nano", 8), dataDir, corpus, seed: 1, ...quiet });
    await pretrainSize({ size: tiny("micro", 16), dataDir, corpus, seed: 2, ...quiet });
    const lines = Array.from(
      { length: 120 },
      (_, i) =>
        JSON.stringify({
          txt: `item ${String.fromCharCode(97 + (i * 7) % 26)}`,
          hard_label: i % 3 === 0 ? 1 : 0,
        }),
    );
    const task = join(dataDir, "task.jsonl");
    await Deno.writeTextFile(task, lines.join("\n") + "\n");

    const models = ladderModelSource(dataDir, { corpus });
    const calls: RoleTraining[] = [];
    const result = await runExperiment(
      { task, weak: "nano", strong: "micro@10", method: "naive", seed: 0 },
      { models, trainer: standIn(calls), gpu: {} as Gpu },
    );
    const snapshotHash = await fileHash(join(snapshotDir(dataDir, "micro", 10), "model.safetensors"));
    const finalHash = await fileHash(join(modelDir(dataDir, "micro"), "model.safetensors"));
    assert.notEqual(snapshotHash, finalHash);
    assert.deepEqual(calls.map((c) => [c.role, c.size, c.startsFrom]), [
      ["weak", "nano", await fileHash(join(modelDir(dataDir, "nano"), "model.safetensors"))],
      ["ceiling", "micro@10", snapshotHash],
      ["student", "micro@10", snapshotHash],
    ]);
    const loaded = await models.load("micro@10");
    const file = await loadCheckpoint(snapshotDir(dataDir, "micro", 10));
    assert.equal(maxAbsDiff(loaded.params, file.params), 0);
    // The result records the snapshot's recall, read here from its knowledge.json.
    const record = JSON.parse(
      await Deno.readTextFile(join(snapshotDir(dataDir, "micro", 10), "knowledge.json")),
    );
    assert.equal(result.strong, "micro@10");
    assert.equal(result.strongKnowledge, record.recall);
    assert.equal(typeof result.strongKnowledge, "number");

    // A snapshot as the weak model is refused; a missing snapshot names the fix.
    await assert.rejects(
      runExperiment(
        { task, weak: "nano@10", strong: "micro", method: "naive", seed: 0 },
        { models, trainer: standIn([]), gpu: {} as Gpu },
      ),
      /snapshots are for the strong side only/,
    );
    await Deno.remove(snapshotDir(dataDir, "micro", 30), { recursive: true });
    const fix = "micro@30 has no snapshot: pretrain micro again (snapshots are kept at 10, 30, 100 %)";
    assert.equal(await missingSnapshotError(dataDir, "micro@30"), fix);
    assert.equal(await missingSnapshotError(dataDir, "micro@10"), null);
    await assert.rejects(models.load("micro@30"), (err: Error) => err.message === fix);
    await checkApi(dataDir, fix);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

/** The API on the ladder of the test above (micro's 30 % snapshot removed): validation and the listing. */
async function checkApi(dataDir: string, missing: string): Promise<void> {
  const opened = await openDb({ dataDir });
  try {
    const app = createApp({ db: opened.db, dataDir, token: "t", bus: new EventBus(), dbKind: opened.kind });
    const post = async (path: string, body: unknown) => {
      const res = await app.request(path, {
        method: "POST",
        headers: { Authorization: "Bearer t", "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      return { status: res.status, text: await res.text() };
    };
    const experiment = (weak: string, strong: string) =>
      post("/api/experiments", { task: BUILTIN_TASKS[0].name, weak, strong });
    const sweep = (sizes: string[]) =>
      post("/api/sweeps", { tasks: [BUILTIN_TASKS[0].name], sizes, methods: ["naive"], seeds: [0] });
    const refused = async (call: Promise<{ status: number; text: string }>, message: RegExp | string) => {
      const { status, text } = await call;
      assert.equal(status, 400, text);
      const error = JSON.parse(text).error.message as string;
      assert.ok(typeof message === "string" ? error.includes(message) : message.test(error), error);
    };
    await refused(experiment("nano", "micro@7"), /use micro@10, micro@30, micro@100/);
    await refused(experiment("nano", "micro@30"), `strong: ${missing}`);
    await refused(experiment("nano@10", "micro"), /snapshots are for the strong side only/);
    await refused(experiment("nano", "huge@10"), /strong: unknown model size "huge"/);
    assert.equal((await experiment("nano", "micro@10")).status, 201);
    await refused(sweep(["micro@10", "micro"]), /micro@10 is a snapshot.*smaller size/);
    await refused(sweep(["nano", "micro@30", "micro"]), `sizes: ${missing}`);
    assert.equal((await sweep(["nano", "micro@10", "micro"])).status, 201);

    // GET /api/models lists each size's snapshots with the recall their knowledge.json records.
    const listing = await (await app.request("/api/models")).json() as ModelListing[];
    const micro = listing.find((m) => m.name === "micro")!;
    assert.deepEqual(micro.snapshots.map((s) => s.ref), ["micro@10", "micro@100"]);
    const record = JSON.parse(
      await Deno.readTextFile(join(snapshotDir(dataDir, "micro", 100), "knowledge.json")),
    );
    assert.equal(micro.snapshots[1].recall, record.recall);
    assert.equal(micro.snapshots[1].tokens, STEPS * ROWS * CONTEXT);
    assert.deepEqual(listing.find((m) => m.name === "mini")!.snapshots, []);
  } finally {
    await opened.close();
  }
}
