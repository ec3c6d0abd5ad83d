/**
 * The lab's world over HTTP, against the real app and an embedded PGlite database: the default world on a
 * fresh data directory, a hand-written world file made the lab's world (its tasks then listed everywhere),
 * bad files refused with their fields named, a switch refused while a pretrain job is queued, the way back
 * to the default world, and what a pretrained size knows, read from a snapshot written on disk.
 */
import assert from "node:assert/strict";
import { openDb } from "../db/client.ts";
import { initParameters } from "../kernels/config.ts";
import { createApp } from "../server/api/app.ts";
import type { TaskListing } from "../server/contract/tasks.ts";
import type { WorldOverview } from "../server/contract/world.ts";
import { DEFAULT_WORLD_SPEC, labWorldPath, worldKey } from "../server/corpus/world-spec.ts";
import { EventBus } from "../server/jobs/bus.ts";
import { cancelJob, enqueueJob } from "../server/jobs/queue.ts";
import type { KnowledgeReport } from "../server/lab/knowledge.ts";
import { writeSnapshot } from "../server/lab/model-store.ts";

const dataDir = await Deno.makeTempDir({ prefix: "lab-world-api-test-" });
const opened = await openDb({ dataDir });
const TOKEN = "world-test-token";
const app = createApp({ db: opened.db, dataDir, token: TOKEN, bus: new EventBus(), dbKind: opened.kind });
const MOONS = JSON.parse(await Deno.readTextFile(new URL("./fixtures/world-moons.json", import.meta.url)));

Deno.test.afterAll(async () => {
  await opened.close();
  await Deno.remove(dataDir, { recursive: true });
});

function call(method: string, path: string, body?: unknown, token: string | null = TOKEN) {
  const headers: Record<string, string> = {};
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  return app.request(path, { method, headers, body: payload });
}

async function json<T>(res: Response, status: number): Promise<T> {
  const text = await res.text();
  assert.equal(res.status, status, text.slice(0, 400));
  return JSON.parse(text) as T;
}

const getWorld = async () => await json<WorldOverview>(await call("GET", "/api/world"), 200);
const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

/**
 * Each world task's splits come from the examples `lab tasks` (GET /api/tasks) counts for it: every split is
 * balanced 50/50 by dropping its surplus of one label, so the sizes are even and sum to at most the count —
 * and, in these worlds, to most of it.
 */
async function assertSplitsCoverExamples(world: WorldOverview) {
  const listed = await json<TaskListing[]>(await call("GET", "/api/tasks"), 200);
  for (const t of world.tasks) {
    const listing = listed.find((l) => l.name === t.name);
    assert.ok(listing, `${t.name} is listed by /api/tasks`);
    const { train1, train2, validation, test } = t.splits;
    const sizes = [train1, train2, validation, test];
    assert.ok(sizes.every((n) => n > 0 && n % 2 === 0), `${t.name}: balanced splits ${sizes}`);
    const sum = train1 + train2 + validation + test;
    const count = listing.exampleCount!;
    assert.ok(sum <= count && sum > count / 2, `${t.name}: splits sum to ${sum} of ${count} examples`);
  }
  return listed;
}

Deno.test("GET /api/world on a fresh data directory: the default world, its tasks and no models", async () => {
  const world = await getWorld();
  assert.match(world.key, /^default-[0-9a-f]{10}$/);
  assert.equal(world.key, worldKey(DEFAULT_WORLD_SPEC));
  assert.equal(world.entities, DEFAULT_WORLD_SPEC.entities.count);
  assert.ok(world.tasks.length >= 8, `${world.tasks.length} tasks`);
  assert.deepEqual(world.tasks.map((t) => t.name), DEFAULT_WORLD_SPEC.tasks.map((t) => t.name));
  await assertSplitsCoverExamples(world);
  for (const t of world.tasks) {
    const cue = t.surfaceCue;
    assert.ok(cue.low <= cue.accuracy && cue.accuracy <= cue.high, `${t.name}: interval holds the estimate`);
  }
  assert.deepEqual(world.models, []);
});

Deno.test("POST /api/world: a world file becomes the lab's world and its tasks are the lab's", async () => {
  assert.equal((await call("POST", "/api/world", MOONS, null)).status, 401, "a switch needs the token");
  const created = await json<WorldOverview>(await call("POST", "/api/world", MOONS), 201);
  assert.match(created.key, /^moons-[0-9a-f]{10}$/);
  assert.ok(await exists(labWorldPath(dataDir)), "stored as the data directory's world");

  const world = await getWorld();
  assert.equal(world.key, created.key);
  assert.equal(world.entities, 48);
  assert.deepEqual(world.tasks.map((t) => t.name), MOONS.tasks.map((t: { name: string }) => t.name));
  assert.deepEqual(
    world.attributes.map((a) => [a.name, a.values, a.invented]),
    [["metal", ["tin", "gold", "iron", "lead"], false], ["tide", ["high", "low"], false]],
  );
  assert.deepEqual(world.derived, [{ name: "worth", of: "metal", map: MOONS.derived[0].map }]);
  // Every fact stated 1 to 3 times (mentions per fact), plus 3 statements of each metal's worth.
  const derivedStatements = 4 * 3;
  assert.ok(world.statements >= 48 * 2 * 1 + derivedStatements, `${world.statements} statements`);
  assert.ok(world.statements <= 48 * 2 * 3 + derivedStatements, `${world.statements} statements`);
  for (const a of world.attributes) assert.ok(a.meanStated >= 1 && a.meanStated <= 3, `${a.name}`);

  const listed = await assertSplitsCoverExamples(world);
  assert.ok(listed.some((t) => t.name === "world-rich-moon"), "GET /api/tasks lists the new world's task");
  assert.ok(!listed.some((t) => t.name === "world-region"), "and no longer the default world's");
});

Deno.test("POST /api/world: a broken file is a 400 naming each field, and the world stays", async () => {
  const before = (await getWorld()).key;
  const noValue = structuredClone(MOONS);
  noValue.attributes[0].templates[0] = "the moon {X} is made of metal";
  const shape = await json<{ error: { code: string; message: string; details: { problems: string[] } } }>(
    await call("POST", "/api/world", noValue),
    400,
  );
  assert.equal(shape.error.code, "invalid_world");
  assert.match(shape.error.message, /attributes\.0\.templates\.0: a template must contain "\{X\}".*"\{V\}"/);
  assert.ok(shape.error.details.problems.some((p) => p.startsWith("attributes.0.templates.0:")));

  const noSuchValue = structuredClone(MOONS);
  noSuchValue.tasks[1].positive = ["medium"];
  const crossField = await json<{ error: { message: string } }>(
    await call("POST", "/api/world", noSuchValue),
    400,
  );
  assert.match(crossField.error.message, /tasks\[1\]\.positive: "medium" is not a value/);

  const notJson = await json<{ error: { code: string } }>(await call("POST", "/api/world", "{name:"), 400);
  assert.equal(notJson.error.code, "bad_json");
  assert.equal((await getWorld()).key, before, "a refused file changes nothing");
});

Deno.test("a world switch is refused (409) while a pretrain job is queued", async () => {
  const job = await enqueueJob(opened.db, "pretrain", { size: "nano" });
  try {
    for (const method of ["DELETE", "POST"]) {
      const refused = await json<{ error: { code: string; message: string } }>(
        await call(method, "/api/world", method === "POST" ? MOONS : undefined),
        409,
      );
      assert.equal(refused.error.code, "world_in_use");
      assert.match(refused.error.message, new RegExp(`job ${job.id} \\(pretrain\\) is queued`));
    }
  } finally {
    await cancelJob(opened.db, job.id);
  }
  assert.match((await getWorld()).key, /^moons-/, "the refused switch left the world as it was");
});

Deno.test("DELETE /api/world: back to the default world", async () => {
  const back = await json<WorldOverview>(await call("DELETE", "/api/world"), 200);
  assert.equal(back.key, worldKey(DEFAULT_WORLD_SPEC));
  assert.equal(await exists(labWorldPath(dataDir)), false);
  assert.equal((await getWorld()).key, back.key);
  assert.equal((await json<WorldOverview>(await call("DELETE", "/api/world"), 200)).key, back.key, "twice");
});

/** A hand-made knowledge report of the region attribute: 3 of 4 recalled, buckets by times stated. */
function regionReport(correct: number): KnowledgeReport {
  return {
    attributes: [{
      attribute: "region",
      n: 4,
      correct,
      accuracy: correct / 4,
      majority: 0.25,
      candidates: 12,
      buckets: [
        { label: "0", n: 0, correct: 0, accuracy: null },
        { label: "1", n: 2, correct: Math.min(correct, 1), accuracy: Math.min(correct, 1) / 2 },
        { label: "2-3", n: 2, correct: Math.max(correct - 1, 0), accuracy: Math.max(correct - 1, 0) / 2 },
      ],
      predictions: [0, 1, 2, 3],
    }],
  };
}

Deno.test("what a model knows: a snapshot on disk appears in GET /api/world, only in its own world", async () => {
  const config = { vocabSize: 8, contextLength: 4, width: 4, layers: 1, heads: 1 };
  for (const [pct, correct] of [[30, 3], [10, 1]]) {
    await writeSnapshot(dataDir, { config, params: initParameters(config, 1), meta: {} }, {
      size: "nano",
      pct,
      step: pct,
      totalSteps: 100,
      tokens: pct * 1000,
      corpusHash: "test",
      tokenizerId: "test",
      knowledgeAttribute: "region",
      recall: correct / 4,
      report: regionReport(correct),
    });
  }
  const world = await getWorld();
  // Each recall's 95 % Wilson interval over its entities, computed by hand (z = 1.96): 3 of 4
  // [0.30064, 0.95441], 1 of 4 [0.04559, 0.69936], 1 of 2 [0.09453, 0.90547], 2 of 2 [0.34237, 1],
  // 0 of 2 [0, 0.65763]. Compared to 5 decimals below, then left out of the deepEqual.
  const wilson: Record<string, [number, number]> = {
    "3/4": [0.30064, 0.95441],
    "1/4": [0.04559, 0.69936],
    "1/2": [0.09453, 0.90547],
    "2/2": [0.34237, 1],
    "0/2": [0, 0.65763],
  };
  const near = (ci: { lo: number; hi: number } | null, key: string) =>
    assert.ok(
      ci && Math.abs(ci.lo - wilson[key][0]) < 1e-5 && Math.abs(ci.hi - wilson[key][1]) < 1e-5,
      `${key}: ${JSON.stringify(ci)}`,
    );
  const [early, late] = world.models[0].snapshots.map((s) => s.attributes[0]);
  near(early.ci, "1/4");
  near(late.ci, "3/4");
  near(early.buckets[1].ci, "1/2");
  near(late.buckets[2].ci, "2/2");
  near(early.buckets[2].ci, "0/2");
  assert.equal(late.buckets[0].ci, null, "no entity stated 0 times: no interval");
  const withoutIntervals = world.models.map((m) => ({
    ...m,
    snapshots: m.snapshots.map((s) => ({
      ...s,
      attributes: s.attributes.map(({ ci: _, buckets, ...a }) => ({
        ...a,
        buckets: buckets.map(({ ci: _ci, ...b }) => b),
      })),
    })),
  }));
  assert.deepEqual(withoutIntervals, [{
    size: "nano",
    snapshots: [10, 30].map((pct) => ({
      pct,
      tokens: pct * 1000,
      attributes: [{
        attribute: "region",
        n: 4,
        accuracy: pct === 30 ? 0.75 : 0.25,
        majority: 0.25,
        candidates: 12,
        buckets: [
          { label: "0", n: 0, accuracy: null },
          { label: "1", n: 2, accuracy: 0.5 },
          { label: "2-3", n: 2, accuracy: pct === 30 ? 1 : 0 },
        ],
      }],
    })),
  }], "earliest first, per-entity predictions left out");

  // Models live under their world's key: another world has none of them.
  assert.deepEqual((await json<WorldOverview>(await call("POST", "/api/world", MOONS), 201)).models, []);
  assert.equal((await json<WorldOverview>(await call("DELETE", "/api/world"), 200)).models.length, 1);
});
