/**
 * The HTTP API against the real app and an embedded PGlite database (no mocks): the job lifecycle with an
 * in-process worker, validation errors, auth, SSE progress, metric downsampling, import, export, OpenAPI.
 */
import assert from "node:assert/strict";
import type { Hono } from "hono";
import { openDb } from "../db/client.ts";
import { experiments, jobs, metrics, results, runs } from "../db/schema.ts";
import { createApp } from "../server/api/app.ts";
import { OPERATIONS } from "../server/api/openapi.ts";
import { resolveToken } from "../server/api/token.ts";
import { modelDir } from "../server/lab/model-store.ts";
import { createTokenizer } from "../server/corpus/tokenizer.ts";
import { generateWorld } from "../server/corpus/world.ts";
import { DEFAULT_LAB_CORPUS } from "../server/lab/lab-corpus.ts";
import { DEFAULT_WORLD_SPEC } from "../server/corpus/world-spec.ts";
import { EventBus } from "../server/jobs/bus.ts";
import "../server/jobs/handlers.ts";
import { startWorker } from "../server/jobs/worker.ts";
import { createServerApp, signInLink } from "../server/main.ts";
import { exposureWarning } from "../server/api/security.ts";
import { readEvents } from "./helpers/sse.ts";
import { sweepCsv } from "../server/lab/sweep.ts";
import { sweepRecording } from "../server/jobs/experiment-jobs.ts";
import type { JobContext } from "../server/jobs/registry.ts";
import type { ExperimentResult } from "../server/contract/results.ts";
import { waitFor } from "./helpers/wait.ts";
import { checkResponses } from "./helpers/openapi-check.ts";
import { loadCheckpoint, saveCheckpoint } from "../kernels/checkpoint.ts";
import { initParameters } from "../kernels/config.ts";
import { storeLabWorld, worldSpecWith } from "../server/corpus/world-spec.ts";
import { loadLabCorpus } from "../server/lab/lab-corpus.ts";
import { hfExportFiles } from "../server/lab/hf-export.ts";

const dataDir = await Deno.makeTempDir({ prefix: "lab-api-test-" });
const opened = await openDb({ dataDir });
const db = opened.db;
const TOKEN = "test-token-123";
const bus = new EventBus();
// Every response the tests get is held to the OpenAPI document (a mismatch throws, naming the field).
const app = checkResponses(createApp({ db, dataDir, token: TOKEN, bus, dbKind: opened.kind }));
// The worker runs toy-train and w2s (no checkpoints here: fails cleanly) and leaves sweep/bench/pretrain queued.
const worker = startWorker({ db, dataDir, bus, pollMs: 20, log: () => {}, types: ["toy-train", "w2s"] });
const TASK = "world-region";

Deno.test.afterAll(async () => {
  await worker.stop();
  await opened.close();
  await Deno.remove(dataDir, { recursive: true });
});

function call(
  method: string,
  path: string,
  body?: unknown,
  opts: { token?: string | null; type?: string } = {},
) {
  const headers: Record<string, string> = {};
  const token = opts.token === undefined ? TOKEN : opts.token;
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = opts.type ?? "application/json";
  const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  return app.request(path, { method, headers, body: payload });
}

async function json(res: Response) {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`not JSON (${res.status}): ${text.slice(0, 200)}`);
  }
}

Deno.test("a toy-train job goes queued → running → done and SSE streams its progress", async () => {
  const stream = await app.request("/api/events");
  assert.equal(stream.headers.get("content-type"), "text/event-stream");
  let jobId = -1;
  const eventsDone = readEvents(
    stream,
    (events) =>
      events.some((e) =>
        (e.data as { jobId?: number })?.jobId === jobId && (e.data as { status: string }).status === "done"
      ),
  );
  await new Promise((r) => setTimeout(r, 50));

  const created = await call("POST", "/api/jobs", {
    type: "toy-train",
    params: { steps: 40, seed: 5, stepDelayMs: 10 },
  });
  assert.equal(created.status, 201);
  const job = await json(created);
  jobId = job.id;
  assert.equal(job.status, "queued");
  assert.equal(job.params.samples, 200, "defaults filled in by the schema");
  const seen = new Set<string>();
  const done = await waitFor("done", async () => {
    const row = await json(await app.request(`/api/jobs/${jobId}`));
    seen.add(row.status);
    return row.status === "done" ? row : undefined;
  });
  assert.ok(seen.has("running"), `statuses seen: ${[...seen]}`);
  assert.ok(done.result.accuracy > 0.85, `accuracy ${done.result.accuracy} (Bayes 0.92)`);
  assert.equal(done.progress.step, 40);

  const events = await eventsDone;
  assert.equal(events[0].event, "snapshot");
  const mine = events.filter((e) => e.event === "job" && (e.data as { jobId: number }).jobId === jobId)
    .map((e) =>
      e.data as { status: string; step?: number; total?: number; loss?: number; etaSeconds?: number }
    );
  const running = mine.filter((e) => e.status === "running");
  assert.ok(running.length >= 2, `running events: ${running.length}`);
  assert.ok(running.every((e) => e.total === 40 && typeof e.loss === "number" && e.step! >= 1));
  assert.ok(running.some((e) => typeof e.etaSeconds === "number"));
  assert.equal(mine.at(-1)?.status, "done");
  assert.equal(mine[0].status, "queued");

  // Its metrics are readable per run, and every progress event named that run.
  const runList = await json(await app.request(`/api/runs?jobId=${jobId}`));
  assert.equal(runList.length, 1);
  assert.ok(
    running.every((e) => JSON.stringify((e as { runIds?: number[] }).runIds) === `[${runList[0].id}]`),
    `runIds of the progress events: ${
      running.map((e) => JSON.stringify((e as { runIds?: number[] }).runIds))
    }`,
  );
  const series = await json(
    await app.request(`/api/runs/${runList[0].id}/metrics?names=loss&maxPoints=1000`),
  );
  assert.equal(series.series.loss.points.length, 40);
  assert.equal(series.series.accuracy, undefined);
  assert.equal(series.series.loss.points[39].value, done.result.loss);
});

/** A request the API must refuse: the status it answers and what its error message names. */
interface MalformedRequest {
  name: string;
  method?: string;
  path: string;
  body?: unknown;
  type?: string;
  status: number;
  message: RegExp;
}

const VALID_EXPERIMENT = { task: TASK, weak: "nano", strong: "small" };

/** Ids past the 32-bit columns, ids that are not plain decimal digits, numbers out of range: a 400 naming why. */
const BAD_NUMBERS: MalformedRequest[] = [
  ...["/api/jobs/2147483648", "/api/experiments/9007199254740991", "/api/runs?jobId=2147483648"].map((
    path,
  ) => ({
    name: `id past int32: ${path}`,
    method: "GET",
    path,
    status: 400,
    message: /(path\.id|query\.jobId): (id|jobId) must be ≤ 2147483647$/,
  })),
  {
    name: "toStep past int32",
    method: "GET",
    path: "/api/runs/1/metrics?toStep=3000000000",
    status: 400,
    message: /^query\.toStep: toStep must be ≤ 2147483647$/,
  },
  ...[["%207%20", '" 7 "'], ["1e3", '"1e3"'], ["0x10", '"0x10"'], ["7.0", '"7.0"']].map(([id, shown]) => ({
    name: `id not plain digits: ${id}`,
    path: `/api/jobs/${id}/cancel`,
    status: 400,
    message: new RegExp(`^path\\.id: id must be a number in plain decimal digits, got ${shown}$`),
  })),
  ...[["limit=0", "limit must be ≥ 1"], ["offset=-1", "offset must be ≥ 0"], [
    "limit=1001",
    "limit must be ≤ 1000",
  ]]
    .map(([query, problem]) => ({
      name: `page ${query}`,
      method: "GET",
      path: `/api/jobs?${query}`,
      status: 400,
      message: new RegExp(`^query\\.${query.split("=")[0]}: ${problem}$`),
    })),
  {
    name: "batchSize 0",
    path: "/api/experiments",
    body: { ...VALID_EXPERIMENT, batchSize: 0 },
    status: 400,
    message: /^body\.batchSize: batchSize must be ≥ 1$/,
  },
  {
    name: "negative seed in a sweep",
    path: "/api/sweeps",
    body: { tasks: [TASK], sizes: ["nano", "small"], methods: ["naive"], seeds: [-5] },
    status: 400,
    message: /^body\.seeds\.0: seed must be ≥ 0$/,
  },
  // A whole number past 2^53 breaks one rule, its bound: one message (zod alone also said "must be an
  // integer", first), the same whichever field or target it comes in.
  {
    name: "huge seed in a sweep",
    path: "/api/sweeps",
    body: { tasks: [TASK], sizes: ["nano", "small"], methods: ["naive"], seeds: [0, 1.2e29] },
    status: 400,
    message: /^body\.seeds\.1: seed must be ≤ 2147483647$/,
  },
  {
    name: "huge seed",
    path: "/api/experiments",
    body: { ...VALID_EXPERIMENT, seed: 1.2e29 },
    status: 400,
    message: /^body\.seed: seed must be ≤ 2147483647$/,
  },
  {
    name: "huge negative seed",
    path: "/api/experiments",
    body: { ...VALID_EXPERIMENT, seed: -1.2e29 },
    status: 400,
    message: /^body\.seed: seed must be ≥ 0$/,
  },
  {
    name: "huge epochs: the field's own bound, not the database's",
    path: "/api/experiments",
    body: { ...VALID_EXPERIMENT, epochs: 1.2e29 },
    status: 400,
    message: /^body\.epochs: epochs must be ≤ 1000$/,
  },
  {
    name: "fractional seed",
    path: "/api/experiments",
    body: { ...VALID_EXPERIMENT, seed: 1.5 },
    status: 400,
    message: /^body\.seed: seed must be an integer$/,
  },
  {
    name: "huge limit",
    method: "GET",
    path: "/api/jobs?limit=100000000000000000000000",
    status: 400,
    message: /^query\.limit: limit must be ≤ 1000$/,
  },
  {
    name: "huge id",
    method: "GET",
    path: "/api/runs/100000000000000000000000000000",
    status: 400,
    message: /^path\.id: id must be ≤ 2147483647$/,
  },
];

/**
 * A list filter with a value no row can hold is a typo, not an empty answer: a 400 naming the parameter and
 * the values it takes.
 */
const UNKNOWN_FILTER_VALUES: MalformedRequest[] = [
  ["/api/jobs?type=bogus", "type", "toy-train, bench, pretrain, w2s, sweep, sweep-cell, demo"],
  ["/api/jobs?status=bogus", "status", "queued, running, done, failed, cancelled"],
  ["/api/experiments?status=Done", "status", "queued, running, done, failed, cancelled"],
  ["/api/sweeps?status=finished", "status", "queued, running, done, failed, cancelled"],
  ["/api/runs?role=students", "role", "weak, ceiling, student, bootstrap, control, pretrain, toy"],
  ["/api/runs?status=queued", "status", "running, done, failed, cancelled"],
  ["/api/runs?method=aux", "method", "naive, auxconf, bootstrap, generative"],
].map(([path, field, values]) => ({
  name: `unknown filter value: ${path}`,
  method: "GET",
  path,
  status: 400,
  message: new RegExp(`^query\\.${field}: ${field} must be one of: ${values}$`),
}));

const NUL = /must not contain a NUL character/;
const LONE_SURROGATE = /must not contain a lone UTF-16 surrogate/;
const CLASSIFICATION_LINES = Array.from(
  { length: 24 },
  (_, i) => JSON.stringify({ txt: `t${i}`, hard_label: i % 2 }),
);

/** NUL bytes and lone surrogates, which Postgres cannot store, in every kind of string that reaches it. */
const UNSTORABLE_TEXT: MalformedRequest[] = [
  ...[["a\u0000b", NUL], ["a\ud800b", LONE_SURROGATE], ["\udfff", LONE_SURROGATE]].map(([name, problem]) => ({
    name: `experiment name ${JSON.stringify(name)}`,
    path: "/api/experiments",
    body: { ...VALID_EXPERIMENT, name },
    status: 400,
    message: new RegExp(`^body\\.name: name ${(problem as RegExp).source}`),
  })),
  {
    name: "import description with NUL",
    path: "/api/tasks/import",
    body: { name: "nul-description", description: "a\u0000", jsonl: CLASSIFICATION_LINES.join("\n") },
    status: 400,
    message: /^body\.description: description must not contain a NUL character/,
  },
  ...[["txt", "a\u0000b", NUL], ["txt", "\ud83d", LONE_SURROGATE]].map(([field, value, problem]) => ({
    name: `JSONL ${field} ${JSON.stringify(value)}`,
    path: "/api/tasks/import",
    body: {
      name: "broken",
      jsonl: [CLASSIFICATION_LINES[0], JSON.stringify({ txt: value, hard_label: 1 }), ...CLASSIFICATION_LINES]
        .join("\n"),
    },
    status: 400,
    message: new RegExp(`^line 2: \`txt\` ${(problem as RegExp).source}`),
  })),
  {
    name: "raw JSONL comparison prompt with NUL",
    path: "/api/tasks/import?name=broken",
    body: JSON.stringify({ prompt: "p\u0000", chosen: "a", rejected: "b" }),
    type: "application/x-ndjson",
    status: 400,
    message: /^line 1: `prompt` must not contain a NUL character/,
  },
  {
    name: "raw JSONL import name with NUL",
    path: "/api/tasks/import?name=a%00b",
    body: CLASSIFICATION_LINES.join("\n"),
    type: "text/plain",
    status: 400,
    message: /^query\.name: task name must not contain a NUL character/,
  },
  {
    name: "bench kernel with NUL",
    path: "/api/bench",
    body: { kernels: ["mat\u0000mul"] },
    status: 400,
    message: /^body\.kernels\.0: kernels must not contain a NUL character/,
  },
  ...[
    "/api/runs?size=a%00b",
    "/api/results?task=a%00b",
    "/api/runs?q=%00",
    "/api/bench/results?device=%00",
  ]
    .map((path) => ({
      name: `query filter with NUL: ${path}`,
      method: "GET",
      path,
      status: 400,
      message: /^query\.(size|task|q|device): (size|task|q|device) must not contain a NUL character/,
    })),
  ...["/api/tasks/a%00b", "/api/models/a%00b"].map((path) => ({
    name: `path name with NUL: ${path}`,
    method: "GET",
    path,
    status: 400,
    message: /^path\.name: name must not contain a NUL character/,
  })),
];

const MALFORMED_REQUESTS: MalformedRequest[] = [
  {
    name: "unknown key",
    path: "/api/sweeps",
    body: { tasks: [TASK], sizes: ["nano", "micro"], methods: ["naive"], seeds: [0], evaluateOn: "test" },
    status: 400,
    message:
      /^body: Unrecognized key: "evaluateOn"; accepted keys: name, tasks, sizes, ladder, methods, seeds,/,
  },
  {
    name: "wrong type",
    path: "/api/experiments",
    body: { ...VALID_EXPERIMENT, weak: 3 },
    status: 400,
    message: /body\.weak: size name must be a string/,
  },
  {
    name: "missing fields",
    path: "/api/experiments",
    body: {},
    status: 400,
    message: /body\.task: .*body\.weak: .*body\.strong/,
  },
  {
    name: "unknown task",
    path: "/api/experiments",
    body: { ...VALID_EXPERIMENT, task: "nope" },
    status: 400,
    message: new RegExp(`unknown task "nope"; known tasks: .*${TASK}`),
  },
  {
    name: "unknown size",
    path: "/api/experiments",
    body: { ...VALID_EXPERIMENT, strong: "huge" },
    status: 400,
    message: /strong: unknown model size "huge"; sizes: nano, micro, mini, small/,
  },
  {
    name: "weak not smaller",
    path: "/api/experiments",
    body: { ...VALID_EXPERIMENT, weak: "small", strong: "nano" },
    status: 400,
    message: /weak model must be smaller/,
  },
  {
    name: "negative seed",
    path: "/api/experiments",
    body: { ...VALID_EXPERIMENT, seed: -1 },
    status: 400,
    message: /body\.seed: seed must be ≥ 0/,
  },
  {
    name: "unknown method",
    path: "/api/experiments",
    body: { ...VALID_EXPERIMENT, method: "magic" },
    status: 400,
    message: /method must be one of: naive, auxconf, bootstrap, generative/,
  },
  {
    name: "unknown field",
    path: "/api/experiments",
    body: { ...VALID_EXPERIMENT, colour: "red" },
    status: 400,
    message: /colour/,
  },
  { name: "bad JSON", path: "/api/experiments", body: '{"task": ', status: 400, message: /Malformed JSON/ },
  {
    name: "not JSON",
    path: "/api/experiments",
    body: "task=x",
    type: "application/x-www-form-urlencoded",
    status: 400,
    message: /must be JSON/,
  },
  {
    name: "huge body",
    path: "/api/experiments",
    body: { ...VALID_EXPERIMENT, name: "x".repeat(70_000) },
    status: 413,
    message: /exceeds 65536 bytes/,
  },
  {
    name: "huge JSON import (read whole)",
    path: "/api/tasks/import",
    body: { name: "big", jsonl: "x".repeat(10 * 1024 * 1024 + 10) },
    status: 413,
    message: /exceeds 10485760 bytes/,
  },
  {
    // Streamed line by line, a raw file past the JSON limit is read: its first line is what is wrong.
    name: "raw import past the JSON limit",
    path: "/api/tasks/import?name=big",
    body: "x".repeat(10 * 1024 * 1024 + 10),
    type: "text/plain",
    status: 400,
    message: /^line 1: /,
  },
  {
    name: "negative steps",
    path: "/api/jobs",
    body: { type: "toy-train", params: { steps: -5 } },
    status: 400,
    message: /body\.params\.steps: steps must be ≥ 1/,
  },
  {
    name: "unknown job type",
    path: "/api/jobs",
    body: { type: "rm-rf" },
    status: 400,
    message: /type must be "toy-train"/,
  },
  {
    name: "sweep of one size",
    path: "/api/sweeps",
    body: { tasks: [TASK], sizes: ["nano"], methods: ["naive"], seeds: [0] },
    status: 400,
    message: /at least two sizes/,
  },
  {
    name: "sweep unknown size",
    path: "/api/sweeps",
    body: { tasks: [TASK], sizes: ["nano", "giant"], methods: ["naive"], seeds: [0] },
    status: 400,
    message: /unknown model size "giant"/,
  },
  {
    name: "pretrain unknown size",
    path: "/api/models/giant/pretrain",
    body: {},
    status: 404,
    message: /unknown model size "giant"; sizes: nano/,
  },
  {
    name: "pretrain size one typo away",
    path: "/api/models/Medum/pretrain",
    body: {},
    status: 404,
    message: /^name: unknown model size "Medum"; sizes: nano, .*; did you mean "medium"\?$/,
  },
  {
    name: "pretrain negative tokens",
    path: "/api/models/nano/pretrain",
    body: { tokens: -3 },
    status: 400,
    message: /^body\.tokens: tokens must be ≥ 1$/,
  },
  {
    name: "pretrain leakage on the world alone",
    path: "/api/models/nano/pretrain",
    body: { leakage: true },
    status: 400,
    message: /^body\.leakage: leakage needs realShare > 0/,
  },
  {
    name: "pretrain bad split seed",
    path: "/api/models/nano/pretrain",
    body: { realShare: 0.25, splitSeeds: [0, 1.5] },
    status: 400,
    message: /^body\.splitSeeds\.1: splitSeeds must be an integer/,
  },
  {
    name: "import bad line",
    path: "/api/tasks/import",
    body: {
      name: "broken",
      jsonl: '{"txt":"a","hard_label":1}\n{"txt":"b","hard_label":0}\n{"txt":"c","hard_label":2}\n',
    },
    status: 400,
    message: /^line 3: `hard_label` must be 0 or 1/,
  },
  {
    name: "import bad name",
    path: "/api/tasks/import",
    body: { name: "../etc", jsonl: "x" },
    status: 400,
    message: /body\.name: task name must be/,
  },
  {
    name: "bad id",
    method: "GET",
    path: "/api/jobs/abc",
    status: 400,
    message: /path\.id: id must be a number/,
  },
  {
    name: "unknown job",
    method: "GET",
    path: "/api/jobs/999999",
    status: 404,
    message: /job 999999 not found/,
  },
  {
    name: "bad maxPoints",
    method: "GET",
    path: "/api/runs/1/metrics?maxPoints=abc",
    status: 400,
    message: /query\.maxPoints: maxPoints must be a number/,
  },
  {
    name: "step range reversed",
    method: "GET",
    path: "/api/runs/1/metrics?fromStep=9&toStep=3",
    status: 400,
    message: /fromStep must be ≤ toStep/,
  },
  ...BAD_NUMBERS,
  ...UNKNOWN_FILTER_VALUES,
  ...UNSTORABLE_TEXT,
  {
    name: "unknown route",
    method: "GET",
    path: "/api/nothing",
    status: 404,
    message: /no route for GET \/api\/nothing/,
  },
];

/** Sends one malformed request: its status, an error code, a message naming the problem, no stack trace. */
async function assertRefused(c: MalformedRequest) {
  const res = await call(c.method ?? "POST", c.path, c.body, { type: c.type });
  const text = await res.text();
  assert.equal(res.status, c.status, `${c.name}: ${text.slice(0, 300)}`);
  const body = JSON.parse(text);
  assert.equal(typeof body.error.code, "string", c.name);
  assert.match(body.error.message, c.message, c.name);
  assert.doesNotMatch(text, /\.ts:\d+|at async|Stack/, `${c.name}: no stack trace`);
}

/** The refused import (a bad line) left no task behind. */
async function assertNothingHalfImported() {
  const tasks = await json(await app.request("/api/tasks"));
  assert.ok(!tasks.some((t: { name: string }) => t.name === "broken"), "nothing half-imported");
}

Deno.test("malformed requests get 4xx with a message naming the problem", async () => {
  for (const c of MALFORMED_REQUESTS) await assertRefused(c);
  await assertNothingHalfImported();
});

Deno.test("list filters take every value a row can hold, and filter on it", async () => {
  const lists: [string, string, string[]][] = [
    ["/api/jobs", "type", ["toy-train", "bench", "pretrain", "w2s", "sweep", "sweep-cell", "demo"]],
    ["/api/jobs", "status", ["queued", "running", "done", "failed", "cancelled"]],
    ["/api/runs", "role", ["weak", "ceiling", "student", "bootstrap", "control", "pretrain", "toy"]],
    ["/api/runs", "status", ["running", "done", "failed", "cancelled"]],
    ["/api/runs", "method", ["naive", "auxconf", "bootstrap", "generative"]],
  ];
  for (const [path, field, values] of lists) {
    for (const value of values) {
      const res = await app.request(`${path}?${field}=${value}`);
      const rows = await json(res);
      assert.equal(res.status, 200, `${path}?${field}=${value}`);
      assert.ok(Array.isArray(rows), `${path}?${field}=${value}`);
    }
  }
  // The toy-train job of the first test, and only jobs of its type.
  const toys = await json(await app.request("/api/jobs?type=toy-train"));
  assert.ok(toys.length > 0 && toys.every((j: { type: string }) => j.type === "toy-train"));
  const toyRuns = await json(await app.request("/api/runs?role=toy&status=done"));
  assert.ok(toyRuns.length > 0 && toyRuns.every((r: { role: string }) => r.role === "toy"));
});

Deno.test("a query key an operation does not take is refused, naming the keys it does take", async () => {
  // A misspelt filter must not be ignored: /api/results?tsk=world-region would answer every task's rows.
  const misspelt = await app.request("/api/results?tsk=world-region");
  assert.equal(misspelt.status, 400);
  assert.equal(
    (await json(misspelt)).error.message,
    'query: Unrecognized key: "tsk"; accepted keys: limit, offset, experimentId, task',
  );
  // Every operation with a query schema, GET or not (the body check comes after the query's).
  const withQuery = OPERATIONS.filter((op) => op.query && op.path !== "/events");
  assert.ok(withQuery.length >= 10, `${withQuery.length} operations take a query`);
  for (const op of withQuery) {
    const path = "/api" + op.path.replace("{id}", "1").replace("{name}", "zz-none") + "?bogusKey=1";
    const res = await call(op.method.toUpperCase(), path, op.method === "get" ? undefined : {});
    const body = await json(res);
    assert.equal(res.status, 400, `${op.method} ${op.path}`);
    assert.match(body.error.message, /^query: Unrecognized key: "bogusKey"; accepted keys: /, op.path);
  }
});

Deno.test("DELETE and OPTIONS without a body are not refused for their media type", async () => {
  // A body stream that is there but empty, with no Content-Type: what a browser's fetch DELETE sends.
  for (const method of ["DELETE", "OPTIONS"]) {
    const res = await app.request("/api/experiments/999999", {
      method,
      headers: { Authorization: `Bearer ${TOKEN}` },
      body: new Uint8Array(0),
    });
    const text = await res.text();
    assert.doesNotMatch(text, /unsupported_media_type/, `${method}: ${text}`);
    assert.equal(res.status, 404, `${method}: ${text}`);
  }
  const declared = await app.request("/api/experiments/999999", {
    method: "DELETE",
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Length": "5" },
    body: "x=1&y",
  });
  assert.equal(declared.status, 400, "a body that is sent, not JSON, is still refused");
});

Deno.test("mutations need the bearer token; reads are open", async () => {
  for (const token of [null, "wrong"]) {
    const res = await call("POST", "/api/jobs", { type: "toy-train" }, { token });
    assert.equal(res.status, 401);
    assert.equal((await json(res)).error.code, "unauthorized");
  }
  assert.equal((await call("DELETE", "/api/experiments/1", undefined, { token: null })).status, 401);
  assert.equal((await call("POST", "/api/jobs/1/cancel", undefined, { token: null })).status, 401);
  assert.equal((await app.request("/api/jobs")).status, 200);
  assert.equal((await app.request("/api/models")).status, 200);
});

Deno.test("GET /api/auth answers 200 for the right token and 401 otherwise, naming the problem", async () => {
  const ok = await call("GET", "/api/auth");
  assert.equal(ok.status, 200);
  assert.deepEqual(await json(ok), { ok: true });
  const missing = await call("GET", "/api/auth", undefined, { token: null });
  assert.equal(missing.status, 401);
  assert.match((await json(missing)).error.message, /needs `Authorization: Bearer <token>`/);
  const wrong = await call("GET", "/api/auth", undefined, { token: "wrong" });
  assert.equal(wrong.status, 401);
  assert.equal((await json(wrong)).error.message, "wrong API token");
  const doc = await json(await app.request("/api/openapi.json"));
  assert.deepEqual(doc.paths["/auth"].get.security, [{ bearer: [] }]);
  assert.ok(doc.paths["/auth"].get.responses["401"]);
  assert.deepEqual(doc.paths["/health"].get.security, [], "other reads stay open");
});

Deno.test("sign-in link: loopback for wildcard binds, brackets for IPv6, token escaped", () => {
  assert.equal(signInLink("127.0.0.1", 8787, "abc123"), "http://127.0.0.1:8787/#token=abc123");
  assert.equal(signInLink("0.0.0.0", 9000, "t"), "http://127.0.0.1:9000/#token=t");
  assert.equal(signInLink("::1", 80, "t"), "http://[::1]:80/#token=t");
  assert.equal(signInLink("localhost", 1, "a b&c"), "http://localhost:1/#token=a%20b%26c");
});

/** The status of a bodyless HTTP/1.1 POST (no Content-Length header), sent by hand: fetch adds one. */
async function rawPost(port: number, path: string, token: string): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const request = `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\n` +
      "Connection: close\r\n\r\n";
    await conn.write(new TextEncoder().encode(request));
    const answer = await new Response(conn.readable).text();
    return Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]);
  } finally {
    try {
      conn.close();
    } catch { /* closed by reading to the end */ }
  }
}

/** Waits until two jobs run at once, each leased by its own worker thread; their owners. */
async function twoJobsAtOnce(base: string, token: string): Promise<string[]> {
  const post = () =>
    fetch(`${base}/api/jobs`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ type: "toy-train", params: { steps: 40, stepDelayMs: 250 } }),
    }).then((r) => r.json());
  const ids = [(await post()).id, (await post()).id];
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const rows = await Promise.all(ids.map((id) => fetch(`${base}/api/jobs/${id}`).then((r) => r.json())));
    if (rows.every((j) => j.status === "running")) return rows.map((j) => j.leaseOwner);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error("the two jobs never ran at once");
}

Deno.test("deno task start: first start serves the built dashboard and prints a sign-in link the API accepts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lab-start-test-" });
  const child = new Deno.Command(Deno.execPath(), {
    // Two worker threads (--workers 2): two jobs run at once.
    args: [
      "run",
      "-A",
      new URL("../server/main.ts", import.meta.url).pathname,
      "--port",
      "0",
      "--workers",
      "2",
    ],
    env: { LAB_DATA_DIR: dir, LAB_TOKEN: "", XDG_RUNTIME_DIR: dir },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let errors = "";
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void (errors += chunk) }),
  );
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let output = "";
  try {
    const deadline = Date.now() + 30_000;
    while (!/sign in to the dashboard: \S+\n/.test(output) && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      output += value;
    }
    const link = /sign in to the dashboard: (http:\/\/127\.0\.0\.1:(\d+)\/#token=([0-9a-f]+))\n/.exec(output);
    assert.ok(link, `no sign-in link in:\n${output}`);
    const token = (await Deno.readTextFile(`${dir}/token`)).trim();
    assert.equal(link[3], token, "the link carries the stored token");
    const base = `http://127.0.0.1:${link[2]}`;
    const authorized = await fetch(`${base}/api/auth`, { headers: { Authorization: `Bearer ${link[3]}` } });
    assert.deepEqual([authorized.status, await authorized.json()], [200, { ok: true }]);
    const page = await fetch(`${base}/experiments`);
    const html = await page.text();
    assert.match(html, /<script[^>]+src="\/main\.js/, "the built dashboard, not the placeholder page");
    const script = await fetch(`${base}/main.js`);
    assert.equal(script.status, 200);
    assert.ok((await script.arrayBuffer()).byteLength > 10_000);
    // A POST with no body at all (curl -X POST sends no Content-Length): the body limit copied the request
    // and with it request.signal, and Deno printed its "legacy behavior" warning on the server's terminal.
    const status = await rawPost(Number(link[2]), "/api/jobs/999999/cancel", token);
    assert.equal(status, 404);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.doesNotMatch(errors, /legacy behavior|request\.signal/, "the server's terminal stays quiet");
    const owners = await twoJobsAtOnce(base, token);
    assert.equal(new Set(owners).size, 2, `two worker threads lease them: ${owners}`);
  } finally {
    child.kill("SIGTERM");
    await reader.cancel().catch(() => {});
    await stderr.catch(() => {});
    await child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("student mode and generative settings: defaults, pass-through to the job, validation", async () => {
  const base = { task: TASK, weak: "nano", strong: "micro" };
  const create = async (body: Record<string, unknown>, path = "/api/experiments") => {
    const res = await call("POST", path, body);
    return { status: res.status, body: await json(res) };
  };
  const byDefault = await create(base);
  assert.equal(byDefault.status, 201);
  assert.equal(byDefault.body.job.params.studentMode, "finetune");
  const probe = await create({ ...base, studentMode: "probe", maxExamples: 64, promptingShots: 4 });
  assert.equal(probe.status, 201);
  assert.deepEqual(
    [
      probe.body.job.params.studentMode,
      probe.body.job.params.maxExamples,
      probe.body.job.params.promptingShots,
    ],
    ["probe", 64, 4],
  );
  const generative = await create({ ...base, method: "generative", generativeBase: "auxconf", lmEpochs: 3 });
  assert.equal(generative.status, 201);
  assert.deepEqual(
    [generative.body.job.params.generativeBase, generative.body.job.params.lmEpochs],
    ["auxconf", 3],
  );
  const sweep = await create(
    { tasks: [TASK], sizes: ["nano", "micro"], methods: ["naive"], seeds: [0], studentMode: "probe" },
    "/api/sweeps",
  );
  assert.equal(sweep.status, 201);
  assert.equal(sweep.body.job.params.studentMode, "probe");
  const refused: Array<[Record<string, unknown>, RegExp]> = [
    [{ ...base, studentMode: "linear" }, /body\.studentMode: studentMode must be one of: finetune, probe/],
    [
      { ...base, lmEpochs: 2 },
      /body\.lmEpochs: lmEpochs applies to the generative method only \(method is naive\)/,
    ],
    [
      { ...base, method: "auxconf", generativeBase: "naive" },
      /generativeBase applies to the generative method only/,
    ],
    [
      { ...base, method: "generative", generativeBase: "bootstrap" },
      /generativeBase must be one of: naive, auxconf/,
    ],
    [{ ...base, maxExamples: 4 }, /maxExamples must be ≥ 8/],
    [{ ...base, promptingShots: 0 }, /promptingShots must be ≥ 1/],
    [
      { ...base, task: "world-prefer-region", promptingShots: 2 },
      /promptingShots: world-prefer-region is a pairwise task/,
    ],
  ];
  for (const [body, message] of refused) {
    const res = await create(body);
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.match(res.body.error.message, message);
  }
  const badSweep = await create(
    { tasks: [TASK], sizes: ["nano", "micro"], methods: ["naive"], seeds: [0], studentMode: 1 },
    "/api/sweeps",
  );
  assert.equal(badSweep.status, 400);
  assert.match(badSweep.body.error.message, /studentMode/);
  // Leave nothing queued or running for the other tests: cancel what was created here.
  for (const created of [byDefault, probe, generative]) {
    await call("POST", `/api/experiments/${created.body.experiment.id}/cancel`);
  }
  await call("POST", `/api/sweeps/${sweep.body.experiment.id}/cancel`);
});

Deno.test("finetuning recipe: passed to the job, refused with the probe mode naming the field", async () => {
  const base = { task: TASK, weak: "nano", strong: "micro" };
  const recipe = { embeddings: "frozen", headInit: "probe", decayTo: "pretrained" };
  const created = await call("POST", "/api/experiments", { ...base, ...recipe });
  const body = await json(created);
  assert.equal(created.status, 201, JSON.stringify(body));
  assert.deepEqual([body.job.params.embeddings, body.job.params.headInit, body.job.params.decayTo], [
    "frozen",
    "probe",
    "pretrained",
  ]);
  await call("POST", `/api/experiments/${body.experiment.id}/cancel`);
  const sweep = { tasks: [TASK], sizes: ["nano", "micro"], methods: ["naive"], seeds: [0] };
  const refused: Array<[string, Record<string, unknown>, RegExp]> = [
    [
      "/api/experiments",
      { ...base, studentMode: "probe", embeddings: "frozen" },
      /body\.embeddings: embeddings is a finetuning-recipe option/,
    ],
    [
      "/api/sweeps",
      { ...sweep, studentMode: "probe", headInit: "probe" },
      /body\.headInit: headInit is a finetuning-recipe option/,
    ],
    [
      "/api/experiments",
      { ...base, decayTo: "one" },
      /body\.decayTo: decayTo must be one of: zero, pretrained/,
    ],
  ];
  for (const [path, request, message] of refused) {
    const res = await call("POST", path, request);
    const answer = await json(res);
    assert.equal(res.status, 400, JSON.stringify(request));
    assert.match(answer.error.message, message);
  }
});

Deno.test("token: generated once with mode 0600, reused, LAB_TOKEN wins", async () => {
  const dir = await Deno.makeTempDir();
  const first = await resolveToken(dir, "");
  assert.equal(first.generated, true);
  assert.match(first.token, /^[0-9a-f]{48}$/);
  assert.equal((await Deno.stat(`${dir}/token`)).mode! & 0o777, 0o600);
  const second = await resolveToken(dir, undefined);
  assert.deepEqual([second.token, second.generated], [first.token, false]);
  assert.equal((await resolveToken(dir, "from-env")).token, "from-env");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("experiments and sweeps: create enqueues, w2s without checkpoints fails cleanly, cancel and delete", async () => {
  const res = await call("POST", "/api/experiments", {
    task: TASK,
    weak: "nano",
    strong: "small",
    method: "auxconf",
  });
  assert.equal(res.status, 201);
  const { experiment, job } = await json(res);
  assert.equal(job.type, "w2s");
  assert.equal(job.params.experimentId, experiment.id);
  assert.equal(job.params.method, "auxconf");
  // No size is pretrained in this data dir: the w2s job fails with a clear message and the experiment
  // mirrors it.
  const failed = await waitFor("w2s to fail", async () => {
    const row = await json(await app.request(`/api/experiments/${experiment.id}`));
    return row.status === "failed" ? row : undefined;
  });
  assert.match(
    failed.job.error,
    /size "nano" has no pretrained checkpoint .*run: deno task lab pretrain --size nano/,
  );
  assert.deepEqual([failed.runs, failed.results, failed.probes], [[], [], []]);
  assert.equal((await call("POST", `/api/experiments/${experiment.id}/cancel`)).status, 409);
  assert.equal((await call("DELETE", `/api/experiments/${experiment.id}`)).status, 200);
  const deleted = await app.request(`/api/experiments/${experiment.id}`);
  assert.equal(deleted.status, 404);
  assert.equal((await json(deleted)).error.message, `experiment ${experiment.id} not found`);

  // A sweep stays queued (this worker does not lease sweeps): delete is refused until it is cancelled.
  const sweepRes = await call("POST", "/api/sweeps", {
    tasks: [TASK],
    sizes: ["nano", "micro"],
    methods: ["naive"],
    seeds: [0, 1],
  });
  assert.equal(sweepRes.status, 201);
  const sweep = (await json(sweepRes)).experiment;
  // A sweep is not an experiment (they share ids): the 404 says where it is.
  const notExperiment = await app.request(`/api/experiments/${sweep.id}`);
  assert.equal(notExperiment.status, 404);
  assert.equal(
    (await json(notExperiment)).error.message,
    `experiment ${sweep.id} not found (${sweep.id} is a sweep: /api/sweeps/${sweep.id})`,
  );
  const del = await call("DELETE", `/api/sweeps/${sweep.id}`);
  assert.equal(del.status, 409);
  assert.match((await json(del)).error.message, /queued; cancel it before deleting/);
  const cancelled = await json(await call("POST", `/api/sweeps/${sweep.id}/cancel`));
  assert.equal(cancelled.status, "cancelled");
  assert.equal((await call("POST", `/api/sweeps/${sweep.id}/cancel`)).status, 409);
  assert.equal((await call("DELETE", `/api/sweeps/${sweep.id}`)).status, 200);
  const list = await json(await app.request("/api/sweeps"));
  assert.ok(!list.some((s: { id: number }) => s.id === sweep.id));

  // Pretraining: a second request while one is queued is a conflict.
  const pre = await call("POST", "/api/models/micro/pretrain", { seed: 2 });
  assert.equal(pre.status, 201);
  assert.equal((await json(pre)).job.type, "pretrain");
  assert.equal((await call("POST", "/api/models/micro/pretrain", {})).status, 409);
  const models = await json(await app.request("/api/models"));
  const micro = models.find((m: { name: string }) => m.name === "micro");
  assert.equal(micro.status, "queued");
  // The ladder pretrains on the lab corpus: 256 bytes + its merges + one token per knowledge-world name,
  // per region and per other attribute value or half that BPE splits (counted here from the world).
  const worldVocab = (worldOptions: Parameters<typeof generateWorld>[0], merges: number) => {
    const world = generateWorld(worldOptions);
    const bpe = createTokenizer({ merges });
    const values = [
      ...world.attributes.flatMap((a) => a.values.map((v) => ({ attribute: a.name, v }))),
      ...world.derived.flatMap((d) => d.values.map((v) => ({ attribute: d.name, v }))),
    ].filter(({ attribute, v }) => attribute === "region" || bpe.encode(" " + v).length > 1);
    return 256 + merges + world.entities.length + values.length;
  };
  assert.equal(worldVocab({}, 4096), 6380, "the default world at 4,096 merges (a figure the design gives)");
  const vocab = worldVocab(DEFAULT_WORLD_SPEC, DEFAULT_LAB_CORPUS.merges);
  // Counted by hand: wte V·C + wpe T·C + L × (12·C² + 13·C) + ln_f 2·C + class head 2·C + 2 + reward head C.
  const { width: C, layers: L, contextLength: T } = micro;
  assert.equal(micro.params, vocab * C + T * C + L * (12 * C * C + 13 * C) + 2 * C + 2 * C + 2 + C);
  assert.equal(micro.valLoss, null);
  assert.equal(models.find((m: { name: string }) => m.name === "nano").status, "missing");
});

Deno.test("task import: JSON body or raw JSONL, listed, usable, no duplicates", async () => {
  const lines = Array.from({ length: 24 }, (_, i) => JSON.stringify({ txt: `item ${i}`, hard_label: i % 2 }));
  const res = await call("POST", "/api/tasks/import", {
    name: "my-task",
    description: "mine",
    jsonl: lines.join("\n"),
  });
  assert.equal(res.status, 201, await res.clone().text());
  assert.equal((await json(res)).exampleCount, 24);
  const raw = await call("POST", "/api/tasks/import?name=raw-task", lines.slice(0, 20).join("\n"), {
    type: "application/x-ndjson",
  });
  assert.equal(raw.status, 201);
  const dup = await call("POST", "/api/tasks/import", { name: "my-task", jsonl: lines.join("\n") });
  assert.equal(dup.status, 409);
  // A refused body carries its issues as details, as every validated route does.
  const bad = await call("POST", "/api/tasks/import", { name: "no-lines", jsonl: 3, extra: 1 });
  assert.equal(bad.status, 400);
  const refusal = (await json(bad)).error;
  assert.match(refusal.message, /^body\.jsonl: .*; body: Unrecognized key: "extra"; accepted keys: name, /);
  assert.deepEqual(refusal.details.issues.map((i: { path: string[] }) => i.path), [["body", "jsonl"], [
    "body",
  ]]);
  const tasks = await json(await app.request("/api/tasks"));
  const mine = tasks.find((t: { name: string }) => t.name === "my-task");
  assert.deepEqual([mine.builtin, mine.exampleCount, mine.description], [false, 24, "mine"]);
  assert.ok(tasks.some((t: { name: string; builtin: boolean }) => t.name === TASK && t.builtin));
  const shown = await json(await app.request("/api/tasks/my-task"));
  assert.deepEqual(shown.sample[3], { txt: "item 3", hard_label: 1 });
  const exp = await call("POST", "/api/experiments", { task: "my-task", weak: "nano", strong: "micro" });
  assert.equal(exp.status, 201, "an imported task is a known task");
  assert.equal((await call("DELETE", `/api/tasks/${TASK}`)).status, 409);
  assert.equal((await call("DELETE", "/api/tasks/raw-task")).status, 200);
});

Deno.test("task names that differ only in case are refused at import, naming the existing task", async () => {
  const jsonl = Array.from({ length: 20 }, (_, i) => JSON.stringify({ txt: `x ${i}`, hard_label: i % 2 }))
    .join("\n");
  assert.equal((await call("POST", "/api/tasks/import", { name: "Case-Task", jsonl })).status, 201);
  for (const name of ["case-task", "CASE-TASK"]) {
    const res = await call("POST", "/api/tasks/import", { name, jsonl });
    assert.equal(res.status, 409, name);
    const { error } = await json(res);
    assert.equal(error.code, "task_exists");
    assert.match(error.message, /a task named "Case-Task" already exists \(the names differ only in case\)/);
  }
  const world = await call("POST", "/api/tasks/import", { name: TASK.toUpperCase(), jsonl });
  assert.equal(world.status, 409, "a world task's name in capitals");
  const names = (await json(await app.request("/api/tasks"))).map((t: { name: string }) => t.name);
  assert.deepEqual(names.filter((n: string) => n.toLowerCase() === "case-task"), ["Case-Task"]);
  assert.equal((await call("DELETE", "/api/tasks/Case-Task")).status, 200);
});

Deno.test("an imported task that a queued sweep or job uses cannot be deleted until it is cancelled", async () => {
  const jsonl = Array.from({ length: 20 }, (_, i) => JSON.stringify({ txt: `y ${i}`, hard_label: i % 2 }))
    .join("\n");
  assert.equal((await call("POST", "/api/tasks/import", { name: "busy-task", jsonl })).status, 201);
  // This worker does not lease sweeps: the sweep stays queued.
  const sweepRes = await call("POST", "/api/sweeps", {
    tasks: [TASK, "busy-task"],
    sizes: ["nano", "micro"],
    methods: ["naive"],
    seeds: [0],
  });
  assert.equal(sweepRes.status, 201);
  const sweep = (await json(sweepRes)).experiment;
  const refused = await call("DELETE", "/api/tasks/busy-task");
  assert.equal(refused.status, 409);
  const { error } = await json(refused);
  assert.equal(error.code, "task_in_use");
  assert.match(
    error.message,
    new RegExp(`task "busy-task" is used by sweep ${sweep.id} \\(job \\d+\\), which is queued`),
  );
  assert.equal((await call("POST", `/api/sweeps/${sweep.id}/cancel`)).status, 200);

  // A job that names the task in params.task (as an experiment's does), with no experiment row.
  const [job] = await db.insert(jobs).values({ type: "bench", params: { task: "busy-task" } }).returning();
  const byJob = await call("DELETE", "/api/tasks/busy-task");
  assert.equal(byJob.status, 409);
  assert.match((await json(byJob)).error.message, new RegExp(`used by job ${job.id}, which is queued`));
  assert.equal((await call("POST", `/api/jobs/${job.id}/cancel`)).status, 200);
  assert.equal((await call("DELETE", "/api/tasks/busy-task")).status, 200);
});

Deno.test("Host header: loopback, the bound host and LAB_ALLOWED_HOSTS pass, another name is refused", async () => {
  const hostRequest = (target: Hono, host: string, path = "/api/health") =>
    target.request(path, { headers: { Host: host } });
  for (const host of ["localhost:8787", "127.0.0.1:8787", "[::1]:8787", "LOCALHOST", "192.168.1.5:8787"]) {
    assert.equal((await hostRequest(app, host)).status, 200, host);
  }
  const refused = await hostRequest(app, "evil.example:8787");
  assert.equal(refused.status, 403);
  const { error } = await json(refused);
  assert.equal(error.code, "host_not_allowed");
  assert.match(error.message, /Host "evil\.example:8787" .*start it with LAB_ALLOWED_HOSTS=evil\.example$/);
  assert.equal(refused.headers.get("x-frame-options"), "DENY", "a refusal is not framable either");
  // Mutations are refused before auth: a rebinding page never learns whether a token would have passed.
  assert.equal(
    (await app.request("/api/tasks/import", { method: "POST", headers: { Host: "evil.example" } }))
      .status,
    403,
  );

  Deno.env.set("LAB_ALLOWED_HOSTS", "lab.example.org, proxy.local");
  try {
    const bound = createApp({ db, dataDir, token: TOKEN, bus, host: "lab-box" });
    for (const host of ["lab-box:8787", "lab.example.org", "proxy.local:443", "localhost"]) {
      assert.equal((await hostRequest(bound, host)).status, 200, host);
    }
    assert.equal((await hostRequest(bound, "evil.example")).status, 403);
  } finally {
    Deno.env.delete("LAB_ALLOWED_HOSTS");
  }
  assert.equal(
    (await hostRequest(app, "lab.example.org")).status,
    403,
    "the list is read when the app is built",
  );
});

Deno.test("every response, the dashboard's included, refuses to be framed", async () => {
  const server = await createServerApp(app);
  for (const path of ["/api/health", "/api/docs", "/api/no-such-route", "/experiments", "/favicon.ico"]) {
    const res = await server.request(path);
    await res.body?.cancel();
    assert.equal(res.headers.get("x-frame-options"), "DENY", path);
    const csp = res.headers.get("content-security-policy") ?? "";
    assert.match(csp, /(^|;\s*)frame-ancestors 'none'(;|$)/, path);
    // The docs page and the dashboard run inline or same-origin scripts: no script-src to break them.
    assert.doesNotMatch(csp, /script-src|default-src/, path);
  }
  const refused = await server.request("/experiments", { headers: { Host: "evil.example" } });
  assert.equal(refused.status, 403, "the dashboard checks the Host header too");
});

Deno.test("a bind other machines can reach is warned about; loopback binds are not", () => {
  for (const host of ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"]) {
    assert.equal(exposureWarning(host), undefined, host);
  }
  for (const host of ["0.0.0.0", "::", "192.168.1.5", "lab-box"]) {
    const warning = exposureWarning(host);
    assert.match(warning ?? "", /opens the lab to the network: every read .* token travels in clear/, host);
    assert.match(warning ?? "", /reverse proxy with TLS/, host);
  }
});

Deno.test("metric series: bucket means within a step range", async () => {
  const [run] = await db.insert(runs).values({ role: "weak", modelSize: "nano" }).returning();
  const rows = Array.from(
    { length: 1000 },
    (_, step) => ({ runId: run.id, name: "loss", step, value: 2 * step }),
  );
  await db.insert(metrics).values(rows);
  await db.insert(metrics).values([{ runId: run.id, name: "acc", step: 0, value: 0.5 }]);
  const all = await json(await app.request(`/api/runs/${run.id}/metrics?maxPoints=10`));
  const loss = all.series.loss;
  assert.equal(loss.rows, 1000);
  assert.equal(loss.downsampled, true);
  assert.equal(loss.points.length, 10);
  // Bucket k holds steps 100k … 100k+99: mean step 100k+49.5 (rounded up), values 2·step.
  for (let k = 0; k < 10; k++) {
    assert.deepEqual(loss.points[k], {
      step: 100 * k + 50,
      value: 200 * k + 99,
      min: 200 * k,
      max: 200 * k + 198,
    });
  }
  assert.deepEqual(all.series.acc.points, [{ step: 0, value: 0.5, min: 0.5, max: 0.5 }]);
  const range = await json(
    await app.request(`/api/runs/${run.id}/metrics?names=loss&fromStep=100&toStep=199`),
  );
  assert.equal(range.series.loss.downsampled, false);
  assert.deepEqual(
    range.series.loss.points.map((p: { step: number }) => p.step),
    Array.from({ length: 100 }, (_, i) => 100 + i),
  );
  assert.equal((await app.request("/api/runs/999999/metrics")).status, 404);
});

Deno.test("results summary: experiments of other settings form their own cells; a rerun seed counts once", async () => {
  const task = "summary-task";
  const full = (seed: number, [weak, ceiling, student]: number[]) => ({
    task,
    weak: "nano",
    strong: "small",
    method: "naive",
    seed,
    n: { train1: 10, train2: 10, validation: 10, test: 400 },
    weak_acc: weak,
    ceiling_acc: ceiling,
    student_acc: student,
    pgr: (student - weak) / (ceiling - weak),
    agreement: { all: 0.9, supervisor_correct: 1, supervisor_wrong: 0.5 },
    oracle: { weak_acc: weak, ceiling_acc: ceiling, student_acc: student, pgr: 0, student_step: 3 },
    ci: { pgr: { lo: 0, hi: 1 } },
  });
  const store = async (config: Record<string, unknown>, seed: number, accs: number[]) => {
    const [experiment] = await db.insert(experiments).values({ kind: "experiment", config, status: "done" })
      .returning();
    await db.insert(results).values({
      experimentId: experiment.id,
      task,
      weakSize: "nano",
      strongSize: "small",
      method: "naive",
      seed,
      weakAcc: accs[0],
      ceilingAcc: accs[1],
      studentAcc: accs[2],
      pgr: 0,
      gapTooSmall: false,
      agreement: { all: 0.9, supervisor_correct: 1, supervisor_wrong: 0.5 },
      full: full(seed, accs),
    });
  };
  const defaults = {
    task,
    weak: "nano",
    strong: "small",
    method: "naive",
    studentMode: "finetune",
    leakage: false,
  };
  await store({ ...defaults, seed: 0 }, 0, [0.6, 0.9, 0.8]);
  await store({ ...defaults, seed: 0 }, 0, [0.6, 0.9, 0.8]); // the same experiment again
  await store({ ...defaults, seed: 1, studentMode: "probe", maxExamples: 16 }, 1, [0.5, 0.5, 0.5]);
  const summary = await json(await app.request(`/api/results/summary?task=${task}`));
  assert.deepEqual(summary.cells.map((c: { settings?: string; seeds: number[] }) => [c.settings, c.seeds]), [
    [undefined, [0]],
    ["studentMode probe, maxExamples 16", [1]],
  ]);
  assert.equal(summary.cells[0].ceiling_acc.mean, 0.9, "not pooled with the probe run's 0.5");
  // The rows say their settings, so the dashboard draws one settings at a time.
  const rows = await json(await app.request(`/api/results?task=${task}`));
  assert.deepEqual(rows.map((r: { settings: string }) => r.settings), [
    "",
    "",
    "studentMode probe, maxExamples 16",
  ]);
});

Deno.test("results export as CSV and JSON", async () => {
  const [experiment] = await db.insert(experiments).values({ kind: "experiment", config: {}, status: "done" })
    .returning();
  await db.insert(results).values({
    experimentId: experiment.id,
    task: 'odd,"name"',
    weakSize: "nano",
    strongSize: "small",
    method: "naive",
    seed: 0,
    weakAcc: 0.8,
    ceilingAcc: 0.9,
    studentAcc: 0.85,
    pgr: 0.5,
    gapTooSmall: false,
    selectedStudentAcc: 0.84,
    selectedStep: 7,
    agreement: { all: 0.9, supervisor_correct: 1, supervisor_wrong: 0.5 },
  });
  const csv = await app.request(`/api/results/export.csv?experimentId=${experiment.id}`);
  assert.match(csv.headers.get("content-type")!, /text\/csv/);
  const lines = (await csv.text()).trim().split("\n");
  assert.equal(lines.length, 2);
  // One naming (snake_case) and agreement flattened into three columns, as `lab sweep --csv` writes.
  assert.equal(
    lines[0],
    "task,weak,strong,method,seed,weak_acc,ceiling_acc,student_acc,pgr,gap_too_small,selected_student_acc," +
      "selected_pgr,selected_step,oracle_student_acc,oracle_pgr,oracle_step,agreement_all," +
      "agreement_supervisor_correct,agreement_supervisor_wrong,strong_knowledge,format",
  );
  // A row stored without its format is a classification result; readings never stored are empty cells.
  assert.equal(
    lines[1],
    `"odd,""name""",nano,small,naive,0,0.8,0.9,0.85,0.5,false,0.84,,7,,,,0.9,1,0.5,,classification`,
  );
  const asJson = await json(await app.request(`/api/results/export.json?experimentId=${experiment.id}`));
  assert.equal(asJson[0].pgr, 0.5);
  assert.equal(asJson[0].agreement_supervisor_wrong, 0.5, "JSON has the CSV's columns");
});

Deno.test("results: the API's export and `lab sweep --csv` give one header and one row for one result", async () => {
  const [experiment] = await db.insert(experiments).values({ kind: "sweep", config: {}, status: "done" })
    .returning();
  const result = {
    task: "world-region",
    format: "pairwise",
    weak: "nano",
    strong: "small",
    strongKnowledge: 0.5,
    method: "auxconf",
    seed: 3,
    weak_acc: 0.6,
    ceiling_acc: 0.9,
    student_acc: 0.1 + 0.7,
    pgr: NaN,
    gap_too_small: true,
    agreement: { all: 0.9, supervisor_correct: 1, supervisor_wrong: 0.25 },
    selected: {
      weak_acc: 0.6,
      ceiling_acc: 0.9,
      student_acc: 0.75,
      pgr: 0.5,
      steps: { weak: 9, ceiling: 9, student: 12 },
    },
    oracle: { weak_acc: 0.6, ceiling_acc: 0.9, student_acc: 0.85, pgr: 0.25 / 0.3, student_step: 20 },
    n: { train1: 10, train2: 10, validation: 10, test: 10 },
    runs: [],
  } as unknown as ExperimentResult;
  // The sweep job's own writer stores it, as a sweep from the dashboard would.
  const ctx = { db, dataDir, attempt: 1, jobId: 0, flushMetrics: async () => {} } as unknown as JobContext;
  await (await sweepRecording(ctx, experiment.id)).onExperiment!(result, 0, 1);
  const apiLines = (await (await app.request(`/api/results/export.csv?experimentId=${experiment.id}`)).text())
    .trim().split("\n");
  const cliLines = sweepCsv(
    { cells: [{ results: [result] }], medians: [], experiments: 1, seconds: 0 } as never,
  )
    .split("\n");
  assert.deepEqual(apiLines, cliLines);
  // NaN PGR is an empty cell; 0.1 + 0.7 survives the float8 column exactly.
  assert.equal(
    cliLines[1],
    "world-region,nano,small,auxconf,3,0.6,0.9,0.7999999999999999,,true,0.75,0.5,12,0.85,0.8333333333333334,20," +
      "0.9,1,0.25,0.5,pairwise",
  );
  const asJson = await json(await app.request(`/api/results/export.json?experimentId=${experiment.id}`));
  assert.deepEqual(Object.keys(asJson[0]), cliLines[0].split(","));
  assert.equal(asJson[0].pgr, null);
});

Deno.test("runs table: each run named by what it is, filtered, sorted and paged", async () => {
  const [single] = await db.insert(experiments).values({
    kind: "experiment",
    config: { task: "world-region", weak: "nano", strong: "micro", method: "auxconf", seed: 2 },
  }).returning();
  const [sweep] = await db.insert(experiments).values({
    kind: "sweep",
    config: { tasks: ["world-half"], sizes: ["nano", "small"], methods: ["naive", "auxconf"], seeds: [0, 1] },
  }).returning();
  const final = (testAcc: number) => ({ final: { step: 30, testAcc, valAcc: testAcc - 0.1 } });
  const [weak, student, sweepStudent, pretrain] = await db.insert(runs).values([
    { experimentId: single.id, role: "weak", modelSize: "nano", status: "done", config: final(0.6) },
    { experimentId: single.id, role: "student", modelSize: "micro", status: "done", config: final(0.7) },
    {
      experimentId: sweep.id,
      role: "student",
      modelSize: "small",
      status: "done",
      config: { description: "train2 labels of nano (naive)", hyper: { seed: 1003 }, ...final(0.9) },
    },
    { role: "pretrain", modelSize: "table-size", status: "running", config: null },
  ]).returning();
  await db.insert(metrics).values([
    { runId: pretrain.id, name: "val_loss", step: 10, value: 2.5 },
    { runId: pretrain.id, name: "val_loss", step: 0, value: 7 },
  ]);
  const table = async (query: string) => {
    const res = await app.request(`/api/runs?${query}`);
    assert.equal(res.status, 200, query);
    return { rows: await json(res), total: Number(res.headers.get("x-total-count")) };
  };
  const names = (rows: { name: string }[]) => rows.map((r) => r.name);
  const ofSingle = await table(`experimentId=${single.id}`);
  assert.deepEqual(names(ofSingle.rows), [
    "student · auxconf · seed 2 · nano→micro",
    "weak · seed 2 · nano in nano→micro",
  ]);
  assert.deepEqual(
    ofSingle.rows.map((
      r: { id: number; task: string; finalTestAcc: number },
    ) => [r.id, r.task, r.finalTestAcc]),
    [[student.id, "world-region", 0.7], [weak.id, "world-region", 0.6]],
  );
  // A sweep of several methods and seeds: the student's description and data-order seed say which.
  const [swept] = (await table(`experimentId=${sweep.id}`)).rows;
  assert.equal(swept.id, sweepStudent.id);
  assert.equal(swept.name, "student · naive · seed 1 · nano→small");
  assert.deepEqual([swept.task, swept.method, swept.seed, swept.weak, swept.strong], [
    "world-half",
    "naive",
    1,
    "nano",
    "small",
  ]);
  const ascending = await table(`experimentId=${single.id}&sort=finalTestAcc&order=asc`);
  assert.deepEqual(ascending.rows.map((r: { id: number }) => r.id), [weak.id, student.id]);
  assert.deepEqual(
    (await table(`method=auxconf&experimentId=${single.id}`)).rows.map((r: { id: number }) => r.id),
    [student.id],
  );
  // Free text is case-insensitive over the name, task and status.
  const byText = await table(`q=AUXCONF&experimentId=${single.id}`);
  assert.deepEqual(byText.rows.map((r: { id: number }) => r.id), [student.id]);
  const paged = await table(`experimentId=${single.id}&limit=1&offset=1`);
  assert.deepEqual([paged.rows.map((r: { id: number }) => r.id), paged.total], [[weak.id], 2]);
  const [pre] = (await table("role=pretrain&size=table-size")).rows;
  assert.deepEqual([pre.name, pre.lastMetrics, pre.finalTestAcc], [
    "pretrain · table-size",
    { val_loss: 2.5 },
    null,
  ]);
  // The filters' options: every value over all runs (other tests' runs too), each once, sorted as text.
  const facets = await json(await app.request("/api/runs/facets"));
  assert.deepEqual(Object.keys(facets), [
    "role",
    "task",
    "method",
    "size",
    "seed",
    "weak",
    "strong",
    "status",
  ]);
  for (const [param, values] of Object.entries(facets) as [string, string[]][]) {
    assert.deepEqual(values, [...new Set(values)].sort(), param);
  }
  const has = (param: string, ...values: string[]) =>
    values.forEach((v) => assert.ok(facets[param].includes(v), `${param} offers ${v}: ${facets[param]}`));
  has("role", "weak", "student", "pretrain");
  // The sweep student's task, method, seed and pair come from its sweep and its description, as in its row.
  has("task", "world-region", "world-half");
  has("method", "auxconf", "naive");
  has("seed", "1", "2");
  has("size", "nano", "micro", "small", "table-size");
  has("weak", "nano");
  has("strong", "micro", "small");
  has("status", "done", "running");
  for (const [query, field] of [["sort=colour", "sort"], ["order=up", "order"], ["seed=-1", "seed"]]) {
    const res = await app.request(`/api/runs?${query}`);
    assert.equal(res.status, 400, query);
    assert.match(JSON.stringify(await json(res)), new RegExp(field), query);
  }
});

Deno.test("OpenAPI lists every routed operation; docs page and static fallback answer", async () => {
  const doc = await json(await app.request("/api/openapi.json"));
  assert.equal(doc.openapi, "3.0.3");
  assert.ok(doc.components.schemas.ExperimentCreate.properties.weak);
  assert.deepEqual(doc.paths["/experiments"].post.security, [{ bearer: [] }]);
  const metricParams = doc.paths["/runs/{id}/metrics"].get.parameters as { name: string; schema: unknown }[];
  assert.ok(metricParams.some((p) => p.name === "maxPoints"));
  // The database's columns are 32-bit: the document caps ids and step numbers as the validator does.
  const int32 = { type: "integer", minimum: 1, maximum: 2 ** 31 - 1 };
  assert.deepEqual(metricParams.find((p) => p.name === "id")?.schema, int32);
  assert.deepEqual(metricParams.find((p) => p.name === "toStep")?.schema, { ...int32, minimum: 0 });
  assert.deepEqual(metricParams.find((p) => p.name === "maxPoints")?.schema, {
    type: "integer",
    minimum: 2,
    maximum: 100_000,
    default: 1000,
  });
  for (const op of OPERATIONS) {
    if (op.path === "/events") continue;
    const path = "/api" + op.path.replace("{id}", "999999").replace("{name}", "zz-none");
    const res = await call(
      op.method.toUpperCase(),
      path,
      op.method === "get" ? undefined : { unexpected: 1 },
    );
    const text = await res.text();
    assert.doesNotMatch(text, /no route for/, `${op.method} ${op.path} is documented but not routed`);
    assert.ok(doc.paths[op.path][op.method], `${op.method} ${op.path} in the document`);
  }
  const docs = await app.request("/api/docs");
  assert.match(await docs.text(), /data-openapi="\/api\/openapi\.json"/);

  const server = await createServerApp(app);
  const page = await server.request("/experiments/3");
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type")!, /text\/html/);
  assert.equal((await server.request("/favicon.ico")).status, 200);
  const missing = await server.request("/api/nope");
  assert.equal(missing.status, 404);
  assert.equal((await json(missing)).error.code, "not_found");
});

Deno.test("pretraining curves of a size come from its status file; missing or unknown size → 404", async () => {
  const dir = modelDir(dataDir, "micro");
  await Deno.mkdir(dir, { recursive: true });
  const curves = {
    train: [{ step: 25, tokens: 800, value: 3.5 }, { step: 50, tokens: 1600, value: 2.25 }],
    val: [{ step: 0, tokens: 0, value: 6.75 }, { step: 49, tokens: 1568, value: 2.5 }],
    knowledge: [{ step: 49, tokens: 1568, value: 0.125 }],
  };
  await Deno.writeTextFile(
    `${dir}/status.json`,
    JSON.stringify({
      size: "micro",
      status: "partial",
      params: 1,
      step: 50,
      totalSteps: 100,
      tokens: 1600,
      seed: 1,
      wallSeconds: 1,
      corpusHash: "c",
      tokenizerId: "t",
      curves,
    }),
  );
  try {
    const res = await call("GET", "/api/models/micro/curves", undefined, { token: null });
    assert.equal(res.status, 200);
    const body = await json(res);
    assert.deepEqual(body.series.train_loss.points, [{ step: 25, value: 3.5 }, { step: 50, value: 2.25 }]);
    assert.deepEqual(body.series.val_loss.points, [{ step: 0, value: 6.75 }, { step: 49, value: 2.5 }]);
    assert.deepEqual(body.series.knowledge.points, [{ step: 49, value: 0.125 }]);
    const missing = await call("GET", "/api/models/mini/curves", undefined, { token: null });
    assert.equal(missing.status, 404);
    assert.match((await json(missing)).error.message, /mini/);
    const unknown = await call("GET", "/api/models/giant/curves", undefined, { token: null });
    assert.equal(unknown.status, 404);
    assert.match((await json(unknown)).error.message, /unknown model size "giant"; sizes: nano/);
    assert.equal((await call("GET", "/api/models/giant", undefined, { token: null })).status, 404);
    // A damaged status file is a 409 naming the file and the fix, never a 500.
    await Deno.writeTextFile(`${dir}/status.json`, "{}");
    const broken = await call("GET", "/api/models/micro/curves", undefined, { token: null });
    assert.equal(broken.status, 409);
    assert.match((await json(broken)).error.message, /status\.json is corrupted/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The files of a ustar archive, read by the format (not by server/lab/tar.ts): name → bytes. */
function readUstar(archive: Uint8Array): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const text = (from: number, length: number) =>
    new TextDecoder().decode(archive.subarray(from, from + length)).replace(/\0.*$/s, "");
  let at = 0;
  while (at + 512 <= archive.length && archive.subarray(at, at + 512).some((b) => b !== 0)) {
    const header = archive.subarray(at, at + 512);
    const name = text(at, 100);
    assert.equal(text(at + 257, 6), "ustar", `${name}: ustar magic`);
    assert.equal(text(at + 156, 1), "0", `${name}: a regular file`);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : header[i];
    assert.equal(parseInt(text(at + 148, 8).trim(), 8), sum, `${name}: header checksum`);
    const size = parseInt(text(at + 124, 12), 8);
    files.set(name, archive.slice(at + 512, at + 512 + size));
    at += 512 + Math.ceil(size / 512) * 512;
  }
  assert.equal(archive.length, at + 1024, "two zero blocks end the archive");
  assert.ok(archive.subarray(at).every((b) => b === 0));
  return files;
}

/** A safetensors file's JSON header (its first 8 bytes are the header's length, little-endian). */
function safetensorsHeader(bytes: Uint8Array): unknown {
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
}

Deno.test("GET /api/models/{name}/export: a pretrained size as an HF folder in a .tar; not pretrained → 404", async () => {
  // A data directory of its own with a tiny world: its tokenizer builds in seconds.
  const exportDataDir = await Deno.makeTempDir({ prefix: "lab-api-export-" });
  const exportApp = checkResponses(createApp({ db, dataDir: exportDataDir, token: TOKEN, bus }));
  try {
    await storeLabWorld(exportDataDir, worldSpecWith(DEFAULT_WORLD_SPEC, { seed: 5, entities: 24 }));
    const { tokenizer } = await loadLabCorpus(exportDataDir);
    const config = { vocabSize: tokenizer.vocabSize, contextLength: 8, width: 8, layers: 1, heads: 1 };
    const dir = modelDir(exportDataDir, "nano");
    await saveCheckpoint(dir, {
      config,
      params: initParameters(config, 3),
      meta: { tokenizer: tokenizer.id },
    });
    const fields = { params: 1, step: 4, totalSteps: 4, tokens: 64, seed: 1, wallSeconds: 1 };
    const curves = { train: [], val: [], knowledge: [] };
    await Deno.writeTextFile(
      `${dir}/status.json`,
      JSON.stringify({
        size: "nano",
        status: "pretrained",
        ...fields,
        corpusHash: "c",
        tokenizerId: "t",
        curves,
      }),
    );
    const res = await exportApp.request("/api/models/nano/export");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/x-tar");
    assert.equal(res.headers.get("content-disposition"), 'attachment; filename="w2s-lab-nano.tar"');
    const files = readUstar(new Uint8Array(await res.arrayBuffer()));

    // What writeHfExport writes for the same checkpoint, its hash taken here by WebCrypto.
    const weights = await Deno.readFile(`${dir}/model.safetensors`);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", weights));
    const checkpointHash = [...digest].map((b) => b.toString(16).padStart(2, "0")).join("").slice(0, 24);
    const { params } = await loadCheckpoint(dir);
    const want = hfExportFiles({
      config,
      params,
      tokenizer,
      provenance: { size: "nano", checkpoint: checkpointHash },
    });
    assert.deepEqual([...files.keys()].sort(), [...want.keys()].map((f) => `w2s-lab-nano/${f}`).sort());
    const exported = (name: string) => files.get(`w2s-lab-nano/${name}`)!;
    const configJson = JSON.parse(new TextDecoder().decode(exported("config.json")));
    assert.deepEqual(configJson, JSON.parse(new TextDecoder().decode(want.get("config.json")!)));
    assert.deepEqual([configJson.model_type, configJson.vocab_size, configJson.n_embd], [
      "gpt2",
      config.vocabSize,
      8,
    ]);
    assert.deepEqual(
      safetensorsHeader(exported("model.safetensors")),
      safetensorsHeader(want.get("model.safetensors")!),
    );
    for (const [name, bytes] of want) assert.deepEqual(exported(name), bytes, `${name} byte for byte`);

    const never = await exportApp.request("/api/models/mini/export");
    assert.equal(never.status, 404);
    assert.match((await json(never)).error.message, /"mini" is not pretrained .*lab pretrain --size mini/);
    const unknown = await exportApp.request("/api/models/giant/export");
    assert.equal(unknown.status, 404);
  } finally {
    await Deno.remove(exportDataDir, { recursive: true });
  }
});
