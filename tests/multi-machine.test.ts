/**
 * More than one machine on one real Postgres, without a shared disk: the artifact store keeps blobs once, in
 * chunks, and drops them when no name points at them; a size published from one data directory is pulled
 * into another (and listed there); two `lab worker` processes with SEPARATE data directories: worker A
 * pretrains nano, a kill -9 of A mid-way through micro resumes on worker B from the last published training
 * state, and B runs a w2s job on A's nano; then a sweep's cell jobs run on both workers and sum up as the
 * one-job path does. Skipped without Postgres binaries unless REQUIRE_ALL=1.
 */
import assert from "node:assert/strict";
import { eq, sql } from "drizzle-orm";
import { join } from "node:path";
import { postgresArtifactStore } from "../db/artifacts.ts";
import { type LabDb, openDb, rowsOf } from "../db/client.ts";
import { artifactChunks, experiments, jobs, models } from "../db/schema.ts";
import { saveCheckpoint } from "../kernels/checkpoint.ts";
import { initParameters } from "../kernels/config.ts";
import { type PgCluster, startPgCluster } from "../scripts/pg-cluster.ts";
import { DEFAULT_WORLD_SPEC, storeLabWorld, worldKey, worldSpecWith } from "../server/corpus/world-spec.ts";
import { SweepCreate } from "../server/contract/experiments.ts";
import { dbTaskLookup, sweepOptions, sweepSummary } from "../server/jobs/experiment-jobs.ts";
import { SWEEP_CELL_JOB } from "../server/contract/jobs.ts";
import { enqueueJob } from "../server/jobs/queue.ts";
import {
  type ArtifactStore,
  publishModel,
  pullModel,
  useArtifactStore,
} from "../server/lab/artifact-store.ts";
import { modelDir, type PretrainStatus, writeStatus } from "../server/lab/model-store.ts";
import { ExperimentCache } from "../server/lab/cache.ts";
import { ladderStatus } from "../server/lab/models.ts";
import { modelSourceFor } from "../server/lab/own-models.ts";
import { runSweep } from "../server/lab/sweep.ts";
import { waitFor } from "./helpers/wait.ts";
import { spawnWorkerProcess, type WorkerProcess } from "./helpers/worker-process.ts";
import { freePort } from "../scripts/load.ts";
import { postgresTest } from "./helpers/postgres-test.ts";

/** A 24-entity world: its corpus builds and a nano pretrains in seconds. */
const TINY_WORLD = worldSpecWith(DEFAULT_WORLD_SPEC, { seed: 5, entities: 24, maxMentions: 6 });

/** sha-256 hex by WebCrypto: an implementation independent of the store's node:crypto. */
async function webSha256(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(bytes)));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A `deno task lab worker` process on its own data directory. */
function spawnWorker(databaseUrl: string, dataDir: string): WorkerProcess {
  return spawnWorkerProcess(["--lease-ms", "4000", "--heartbeat-ms", "400", "--poll-ms", "100"], {
    DATABASE_URL: databaseUrl,
    LAB_DATA_DIR: dataDir,
    LAB_AUTOTUNE: "0",
    LAB_WORLD: "",
  });
}

/** The job's row once it is done; a failed job throws with its error and the workers' output. */
function finished(db: LabDb, id: number, workers: WorkerProcess[], ms: number) {
  return waitFor(
    `job ${id} to finish`,
    async () => {
      const [row] = await db.select().from(jobs).where(eq(jobs.id, id));
      if (row.status === "failed") {
        throw new Error(`job ${id} failed: ${row.error}\n${workers.map((w) => w.output()).join("\n")}`);
      }
      return row.status === "done" ? row : undefined;
    },
    ms,
    100,
  );
}

const chunkCount = async (db: LabDb, hash: string) =>
  (await db.select().from(artifactChunks).where(eq(artifactChunks.hash, hash))).length;

/** Blobs are chunked, kept once whatever the number of names, verified on read, dropped when unnamed. */
async function checkStore(db: LabDb) {
  const store = postgresArtifactStore(db, 5);
  const first = new TextEncoder().encode("thirteen byte");
  const second = new TextEncoder().encode("other");
  const firstHash = await webSha256(first);
  await store.write("a/one", first);
  await store.write("b/same", first);
  assert.equal(await chunkCount(db, firstHash), 3, "13 bytes in chunks of 5: 3 chunks, kept once");
  const [entry] = await store.list("a/");
  assert.deepEqual(entry, { key: "a/one", hash: firstHash, size: 13 });
  assert.deepEqual(await store.read(entry), first);
  await store.write("a/one", second);
  assert.equal(await chunkCount(db, firstHash), 3, "still named by b/same");
  await store.remove(["b/same"]);
  assert.equal(await chunkCount(db, firstHash), 0, "no name points at it: its chunks are gone");
  const [replaced] = await store.list("a/");
  await db.execute(sql`update artifact_chunks set bytes = '\\x00' where hash = ${replaced.hash}`);
  await assert.rejects(store.read(replaced), /artifact a\/one: the store holds 1 bytes/);
  await store.remove(["a/one"]);
}

/** A size published from one data directory appears, byte for byte, in another, and in its listing. */
async function checkPublishPull(store: ArtifactStore, dirA: string, dirB: string) {
  useArtifactStore(store);
  const config = { vocabSize: 300, contextLength: 8, width: 8, layers: 1, heads: 1 };
  await saveCheckpoint(modelDir(dirA, "nano"), { config, params: initParameters(config, 3) });
  const status = {
    size: "nano",
    status: "pretrained",
    params: 1,
    config,
    step: 4,
    totalSteps: 4,
    tokens: 64,
  };
  const curves = { train: [], val: [{ step: 4, tokens: 64, value: 5.25 }], knowledge: [] };
  const full = {
    ...status,
    batchSize: 2,
    seqLen: 8,
    seed: 1,
    lr: 0.01,
    corpusHash: "c",
    tokenizerId: "t",
    knowledgeAttribute: "region",
    val_loss: 5.25,
    knowledge: null,
    wallSeconds: 1,
    tokensPerSecond: null,
    curves,
    updatedAt: "2026-01-01T00:00:00.000Z",
  } as PretrainStatus;
  await writeStatus(dirA, "nano", full);
  assert.equal(await publishModel(dirA, "nano"), true);
  assert.equal(await pullModel(dirB, "nano"), true);
  for (const file of ["config.json", "model.safetensors", "status.json"]) {
    const [a, b] = [dirA, dirB].map((d) => Deno.readFileSync(join(modelDir(d, "nano"), file)));
    assert.deepEqual(b, a, `${file} pulled byte for byte`);
  }
  assert.equal(await pullModel(dirB, "nano"), false, "up to date: nothing pulled");
  // A local status newer than the store's is a run ahead of it: never overwritten.
  await writeStatus(dirB, "nano", { ...full, step: 5, updatedAt: "2026-01-02T00:00:00.000Z" });
  assert.equal(await pullModel(dirB, "nano"), false);
  const dirC = await Deno.makeTempDir({ prefix: "lab-mm-c-" });
  const nano = (await ladderStatus(dirC)).find((e) => e.name === "nano")!;
  assert.deepEqual([nano.status, nano.val_loss], ["pretrained", 5.25], "listed on a third data directory");
  await Deno.remove(dirC, { recursive: true });
  await store.remove((await store.list("worlds/")).map((e) => e.key));
  useArtifactStore(undefined);
}

/** The step of the training state the store holds for `size`, or 0. */
async function publishedStep(store: ArtifactStore, key: string): Promise<number> {
  const [entry] = await store.list(`${key}/status.json`);
  return entry ? JSON.parse(new TextDecoder().decode(await store.read(entry))).step : 0;
}

async function checkTwoMachines(
  db: LabDb,
  url: string,
  dirA: string,
  dirB: string,
  workers: WorkerProcess[],
) {
  const store = postgresArtifactStore(db);
  const key = (size: string) => `worlds/${worldKey(TINY_WORLD)}/models/${size}`;
  for (const dir of [dirA, dirB]) await storeLabWorld(dir, TINY_WORLD);
  const a = spawnWorker(url, dirA);
  workers.push(a);
  const nanoJob = await enqueueJob(db, "pretrain", { size: "nano", tokens: 20480 });
  await finished(db, nanoJob.id, workers, 60_000);

  const microJob = await enqueueJob(db, "pretrain", { size: "micro", tokens: 40960 });
  const killedAt = await waitFor(
    "micro's training state published at step ≥ 16",
    async () => {
      const step = await publishedStep(store, key("micro"));
      return step >= 16 ? step : undefined;
    },
    60_000,
    50,
  );
  await a.stop("SIGKILL");
  const b = spawnWorker(url, dirB);
  workers.push(b);
  const micro = await finished(db, microJob.id, workers, 60_000);
  const result = micro.result as { resumedFromStep: number; steps: number; cached: boolean };
  assert.equal(micro.attempts, 2, "requeued once after A's lease expired");
  assert.ok(
    result.resumedFromStep >= killedAt && result.resumedFromStep < result.steps,
    `resumed at step ${result.resumedFromStep} (published ${killedAt} before the kill), not 0`,
  );
  assert.equal(result.cached, false);
  const [row] = await db.select().from(models).where(eq(models.name, "micro"));
  assert.deepEqual([row.status, row.checkpointKey], ["pretrained", key("micro")], "a relative key");

  // B never pretrained nano: the w2s job pulls A's checkpoint.
  const config = { task: "world-region", weak: "nano", strong: "micro", maxExamples: 32, epochs: 1 };
  const [experiment] = await db.insert(experiments).values({ kind: "experiment", config }).returning();
  const w2s = await enqueueJob(db, "w2s", { ...config, experimentId: experiment.id });
  await finished(db, w2s.id, workers, 60_000);
  assert.match(b.output(), /pulled from the artifact store: .*nano/);
  const [nanoA, nanoB] = [dirA, dirB].map((d) =>
    Deno.readFileSync(join(d, key("nano"), "model.safetensors"))
  );
  assert.deepEqual(nanoB, nanoA, "B loaded A's nano");
  const paths = rowsOf<{ n: number }>(
    await db.execute(sql`select count(*)::int as n from artifacts where key like '/%'`),
  );
  assert.equal(paths[0].n, 0, "no absolute paths in the store");
}

/** The owner name a `lab worker` process announces once it polls the queue. */
function ownerOf(worker: WorkerProcess): Promise<string> {
  return waitFor(
    "the worker to poll the queue",
    () => Promise.resolve(worker.output().match(/worker (\S+) polling the queue/)?.[1]),
    60_000,
    100,
  );
}

/** A sweep of two cells (two seeds) on A and B, each with its own data directory: one cell each. */
async function checkSweep(db: LabDb, url: string, dirA: string, dirB: string, workers: WorkerProcess[]) {
  const a = spawnWorker(url, dirA);
  workers.push(a);
  const b = workers[1];
  const owners = [await ownerOf(a), await ownerOf(b)].sort();
  const request = SweepCreate.parse({
    tasks: ["world-region"],
    sizes: ["nano", "micro"],
    methods: ["naive"],
    seeds: [1, 2],
    epochs: 1,
    maxExamples: 32,
  });
  const [experiment] = await db.insert(experiments).values({ kind: "sweep", config: request }).returning();
  const sweep = await enqueueJob(db, "sweep", { ...request, experimentId: experiment.id });
  await db.update(experiments).set({ jobId: sweep.id }).where(eq(experiments.id, experiment.id));
  const done = await finished(db, sweep.id, workers, 120_000);
  const cells = await db.select().from(jobs).where(eq(jobs.parentId, sweep.id)).orderBy(jobs.id);
  assert.deepEqual(cells.map((c) => [c.type, c.status]), [[SWEEP_CELL_JOB, "done"], [
    SWEEP_CELL_JOB,
    "done",
  ]]);
  const ranOn = cells.map((c) => (c.ranOn as { owner: string }).owner).sort();
  assert.deepEqual(ranOn, owners, "one cell on each worker");

  // The one-job path in this process, on B's models, a fresh cache and no artifact store.
  const reference = await runSweep(sweepOptions(request), {
    models: await modelSourceFor(dirB),
    cache: new ExperimentCache(join(dirB, "reference-cache")),
    importedTasks: dbTaskLookup(db),
  });
  assert.deepEqual(done.result, JSON.parse(JSON.stringify(sweepSummary(reference))));
}

postgresTest(
  "multi-machine: artifact store, separate data dirs, kill -9 resumes on the other worker, a sweep on both",
  async (pgBin) => {
    const [dirA, dirB] = [
      await Deno.makeTempDir({ prefix: "lab-mm-a-" }),
      await Deno.makeTempDir({ prefix: "lab-mm-b-" }),
    ];
    const workers: WorkerProcess[] = [];
    let cluster: PgCluster | undefined;
    let close: (() => Promise<void>) | undefined;
    try {
      cluster = await startPgCluster(pgBin, freePort());
      const opened = await openDb({ dataDir: dirA, databaseUrl: cluster.url });
      close = opened.close;
      await checkStore(opened.db);
      await checkPublishPull(postgresArtifactStore(opened.db), dirA, dirB);
      await Promise.all([dirA, dirB].map((d) => Deno.remove(join(d, "worlds"), { recursive: true })));
      await checkTwoMachines(opened.db, cluster.url, dirA, dirB, workers);
      await checkSweep(opened.db, cluster.url, dirA, dirB, workers);
    } finally {
      useArtifactStore(undefined);
      await Promise.all(workers.map((w) => w.stop("SIGKILL")));
      await close?.();
      await cluster?.destroy();
      for (const dir of [dirA, dirB]) await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);
