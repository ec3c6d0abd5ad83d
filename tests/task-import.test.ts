/**
 * Imported tasks keep one row per example (task_examples): migration 0003 moves the old jsonb column's
 * examples there in order; an import streams its lines in batches inside one transaction, so a bad line
 * leaves nothing behind; reads follow the file's order; a name taken in another case is a 409 even when
 * two imports race; GET /api/tasks/<name> still shows the first ten examples.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import { drizzle } from "drizzle-orm/pglite";
import { migrate } from "drizzle-orm/pglite/migrator";
import { Hono } from "hono";
import * as schema from "../db/schema.ts";
import type { LabDb } from "../db/client.ts";
import { readTaskExamples } from "../db/task-examples.ts";
import { IMPORT_BATCH_ROWS, importTask } from "../server/api/catalog.ts";
import { type ImportedExample, splitExamples } from "../server/tasks/jsonl.ts";
import { taskRoutes } from "../server/api/routes/tasks.ts";
import { ApiError, handleError } from "../server/api/errors.ts";
import { EventBus } from "../server/jobs/bus.ts";

const MIGRATIONS = fileURLToPath(new URL("../db/migrations", import.meta.url));

/** An in-memory database migrated to the current schema. */
async function freshDb(): Promise<{ db: LabDb; client: PGlite }> {
  const client = new PGlite();
  const db = drizzle(client, { schema });
  await migrate(db, { migrationsFolder: MIGRATIONS });
  return { db: db as unknown as LabDb, client };
}

/** Line i of a classification file, written out by hand: its text says where it sits. */
const line = (i: number) => `{"txt": "line ${i} é", "hard_label": ${i % 2}}`;
const expected = (i: number) => ({ txt: `line ${i} é`, hard_label: i % 2 });
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** A request body that arrives in 7-byte chunks, so lines (and the two-byte "é") split across chunks. */
function chunkedBody(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at += 7));
    },
  });
}

const counts = async (client: PGlite) =>
  (await client.query<{ tasks: number; examples: number }>(
    `select (select count(*)::int from tasks) as tasks, (select count(*)::int from task_examples) as examples`,
  )).rows[0];

function routes(db: LabDb, dataDir: string): Hono {
  return new Hono().route("/", taskRoutes({ db, dataDir, token: "t", bus: new EventBus() })).onError(
    handleError,
  );
}

Deno.test("migration 0003 moves each old task's examples into rows in order and renames case duplicates", async () => {
  // The schema as it was before 0003: the first three migrations only.
  const before = await Deno.makeTempDir({ prefix: "task-import-migrations-" });
  const client = new PGlite();
  try {
    await Deno.mkdir(`${before}/meta`);
    const journal = JSON.parse(await Deno.readTextFile(`${MIGRATIONS}/meta/_journal.json`));
    journal.entries = journal.entries.filter((e: { idx: number }) => e.idx < 3);
    await Deno.writeTextFile(`${before}/meta/_journal.json`, JSON.stringify(journal));
    for (const e of journal.entries) {
      await Deno.copyFile(`${MIGRATIONS}/${e.tag}.sql`, `${before}/${e.tag}.sql`);
    }
    const db = drizzle(client, { schema });
    await migrate(db, { migrationsFolder: before });
    const old = [{ txt: "a", hard_label: 1 }, { txt: "b", hard_label: 0 }, { txt: "c", hard_label: 1 }];
    await client.query(
      `insert into tasks (name, example_count, examples, created_at) values
        ('Old', 3, $1, '2026-01-01'), ('old', 1, $2, '2026-01-02'), ('empty', 0, null, '2026-01-03')`,
      [JSON.stringify(old), JSON.stringify([{ txt: "z", hard_label: 0 }])],
    );

    await migrate(db, { migrationsFolder: MIGRATIONS });
    const rows = (await client.query<{ task_name: string; idx: number; example: unknown }>(
      "select task_name, idx, example from task_examples order by task_name, idx",
    )).rows;
    assert.deepEqual(rows, [
      { task_name: "Old", idx: 0, example: { txt: "a", hard_label: 1 } },
      { task_name: "Old", idx: 1, example: { txt: "b", hard_label: 0 } },
      { task_name: "Old", idx: 2, example: { txt: "c", hard_label: 1 } },
      { task_name: "old-case1", idx: 0, example: { txt: "z", hard_label: 0 } },
    ]);
    const names = (await client.query<{ name: string }>("select name from tasks order by name")).rows;
    assert.deepEqual(names.map((r) => r.name), ["Old", "empty", "old-case1"]);
    const column = await client.query(
      "select 1 from information_schema.columns where table_name = 'tasks' and column_name = 'examples'",
    );
    assert.equal(column.rows.length, 0, "the old column is dropped");
    await assert.rejects(
      () => client.query("insert into tasks (name) values ('OLD')"),
      /tasks_name_lower_idx/,
      "the database itself refuses a name that differs only in case",
    );
    assert.deepEqual(await readTaskExamples(db as unknown as LabDb, "Old"), old);
    assert.deepEqual(await readTaskExamples(db as unknown as LabDb, "empty"), []);
    assert.equal(await readTaskExamples(db as unknown as LabDb, "missing"), undefined);
  } finally {
    await client.close();
    await Deno.remove(before, { recursive: true });
  }
});

Deno.test("a bad last line, after whole batches were written, leaves no task and no examples", async () => {
  const { db, client } = await freshDb();
  const dataDir = await Deno.makeTempDir({ prefix: "task-import-" });
  try {
    const n = 2 * IMPORT_BATCH_ROWS + 10;
    const lines = [...range(n).map(line), '{"txt": "last", "hard_label": 2}'];
    await assert.rejects(
      () => importTask(db, { name: "broken", lines }),
      (err: unknown) =>
        err instanceof ApiError && err.status === 400 && err.message.startsWith(`line ${n + 1}: `) &&
        (err.details as { line: number }).line === n + 1,
    );
    assert.deepEqual(await counts(client), { tasks: 0, examples: 0 });

    // The same through the API's streamed raw body.
    const res = await routes(db, dataDir).request("/import?name=broken", {
      method: "POST",
      headers: { "content-type": "application/x-ndjson" },
      body: chunkedBody(lines.join("\n")),
    });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).error.details.line, n + 1);
    assert.deepEqual(await counts(client), { tasks: 0, examples: 0 });
  } finally {
    await client.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a streamed upload comes back in file order, and the task's page shows its first ten", async () => {
  const { db, client } = await freshDb();
  const dataDir = await Deno.makeTempDir({ prefix: "task-import-" });
  try {
    const n = IMPORT_BATCH_ROWS + 37;
    const app = routes(db, dataDir);
    const text = "\uFEFF" + range(n).map(line).join("\r\n") + "\n\n";
    const res = await app.request("/import?name=ordered", {
      method: "POST",
      headers: { "content-type": "application/x-ndjson" },
      body: chunkedBody(text),
    });
    assert.equal(res.status, 201, await res.clone().text());
    assert.equal((await res.json()).exampleCount, n);
    // Rewritten rows move to the heap's end: only ordering by idx gives the file's order back.
    await client.query("update task_examples set example = example where idx % 2 = 0");
    assert.deepEqual(await readTaskExamples(db, "ordered"), range(n).map(expected));

    const shown = await (await app.request("/ordered")).json();
    assert.equal(shown.exampleCount, n);
    assert.equal(shown.format, "classification");
    assert.deepEqual(shown.sample, range(10).map(expected));
  } finally {
    await client.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("two imports racing for one name in two cases: one succeeds, the other is a 409", async () => {
  const { db, client } = await freshDb();
  try {
    const lines = range(30).map(line);
    const outcomes = await Promise.allSettled([
      importTask(db, { name: "Race", lines }),
      importTask(db, { name: "race", lines }),
    ]);
    const won = outcomes.filter((o) => o.status === "fulfilled");
    const lost = outcomes.filter((o) => o.status === "rejected");
    assert.equal(won.length, 1, JSON.stringify(outcomes));
    const err = (lost[0] as PromiseRejectedResult).reason;
    assert.ok(err instanceof ApiError && err.status === 409 && err.code === "task_exists", String(err));
    const winner = (won[0] as PromiseFulfilledResult<{ name: string }>).value.name;
    assert.match(
      err.message,
      new RegExp(`a task named "${winner}" already exists \\(the names differ only in case\\)`),
    );
    assert.deepEqual(await counts(client), { tasks: 1, examples: 30 });
  } finally {
    await client.close();
  }
});

Deno.test("soft labels: hard_label derived or checked, kept as given, and the answer names used and ignored fields", async () => {
  const { db, client } = await freshDb();
  const dataDir = await Deno.makeTempDir({ prefix: "task-import-" });
  try {
    // Line i: P(label 1) = i/29 (0, 1/29 … 1); hard_label only on even lines, where it agrees.
    const soft = (i: number) => i / 29;
    const lines = range(30).map((i) =>
      JSON.stringify({
        txt: `soft ${i}`,
        soft_label: soft(i),
        ...(i % 2 === 0 ? { hard_label: soft(i) >= 0.5 ? 1 : 0 } : {}),
        annotator: "m-7",
      })
    );
    const res = await routes(db, dataDir).request("/import?name=weak-elsewhere", {
      method: "POST",
      headers: { "content-type": "application/x-ndjson" },
      body: chunkedBody(lines.join("\n")),
    });
    assert.equal(res.status, 201, await res.clone().text());
    const answer = await res.json();
    assert.deepEqual(answer.fields, { used: ["txt", "hard_label", "soft_label"], ignored: ["annotator"] });
    const stored = await readTaskExamples(db, "weak-elsewhere") as ImportedExample[];
    // i/29 >= 0.5 from i = 15 on (14/29 < 0.5 < 15/29).
    assert.deepEqual(stored.map((e) => e.hard_label), range(30).map((i) => (i >= 15 ? 1 : 0)));
    assert.deepEqual(stored.map((e) => e.soft_label), range(30).map(soft));

    for (
      const [bad, problem] of [
        [
          '{"txt": "x", "soft_label": 1.5}',
          /line 1: `soft_label` must be P\(label 1\) in \[0, 1\] or a pair \[P\(0\), P\(1\)\] summing to 1, got number 1\.5/,
        ],
        [
          '{"txt": "x", "soft_label": 0.9, "hard_label": 0}',
          /line 1: `hard_label` 0 disagrees with `soft_label` 0.9/,
        ],
        ['{"txt": "x"}', /line 1: missing field `hard_label` \(0 or 1; or give `soft_label`/],
      ] as const
    ) {
      await assert.rejects(() => importTask(db, { name: "bad-soft", lines: [bad, ...lines] }), problem);
    }
    const pairs = range(20).map((i) =>
      JSON.stringify({ chosen: `good ${i}`, rejected: `bad ${i}`, soft_label: 0.7 })
    );
    const pairTask = await importTask(db, { name: "pairs-soft", lines: pairs });
    assert.deepEqual(pairTask.fields, { used: ["chosen", "rejected"], ignored: ["soft_label"] });

    // openai/weak-to-strong's weak-label file (eval.py's rows): gt_label is the truth, hard_label the weak
    // model's argmax and soft_label its [P(0), P(1)]. The truth is the task's label; the weak P(1) is kept.
    const weakRows = range(24).map((i) => {
      const p1 = ((i * 7) % 24) / 23;
      return JSON.stringify({
        txt: `row ${i}`,
        gt_label: i % 2,
        hard_label: p1 >= 0.5 ? 1 : 0,
        soft_label: [1 - p1, p1],
        acc: (p1 >= 0.5 ? 1 : 0) === i % 2,
      });
    });
    const weakTask = await importTask(db, { name: "openai-weak-labels", lines: weakRows });
    assert.deepEqual(weakTask.fields, {
      used: ["txt", "hard_label", "soft_label", "gt_label"],
      ignored: ["acc"],
    });
    const weakStored = await readTaskExamples(db, "openai-weak-labels") as ImportedExample[];
    assert.deepEqual(weakStored.map((e) => e.hard_label), range(24).map((i) => i % 2));
    assert.deepEqual(weakStored.map((e) => e.weak_label), range(24).map((i) => ((i * 7) % 24) / 23));
    assert.ok(
      weakStored.every((e) => e.soft_label === undefined),
      "the supervisor's labels are not the truth",
    );
    await assert.rejects(
      () =>
        importTask(db, {
          name: "bad-pair",
          lines: ['{"txt": "x", "hard_label": 1, "soft_label": [0.5, 0.6]}'],
        }),
      /line 1: `soft_label` must be P\(label 1\) in \[0, 1\] or a pair/,
    );
  } finally {
    await client.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a file's own train/val/test splits are kept: val and test as given, train halved for weak and student", async () => {
  const { db, client } = await freshDb();
  try {
    // 40 train, 10 val, 10 test lines, interleaved; labels alternate.
    const splitOf = (i: number) => (i % 6 === 1 ? "val" : i % 6 === 4 ? "test" : "train");
    const lines = range(60).map((i) =>
      JSON.stringify({ txt: `t${i}`, hard_label: i % 2, split: splitOf(i) })
    );
    const task = await importTask(db, { name: "own-splits", lines });
    assert.deepEqual(task.fields, { used: ["txt", "hard_label", "split"], ignored: [] });
    const splits = splitExamples((await readTaskExamples(db, "own-splits"))!, 3);
    const texts = (list: { txt: string }[]) => list.map((e) => e.txt).sort();
    const given = (name: string) => range(60).filter((i) => splitOf(i) === name).map((i) => `t${i}`).sort();
    assert.deepEqual(texts(splits.validation), given("val"));
    assert.deepEqual(texts(splits.test), given("test"));
    assert.deepEqual(texts([...splits.train1, ...splits.train2]), given("train"));
    assert.equal(splits.train1.length, 20);
    assert.ok(splits.test.every((e) => Object.keys(e).sort().join() === "hard_label,txt"), "examples only");

    const noSplit = JSON.stringify({ txt: "late", hard_label: 0 });
    await assert.rejects(
      () => importTask(db, { name: "mixed-splits", lines: [...lines, noSplit] }),
      /line 61: missing field `split`: the first example gave one/,
    );
    await assert.rejects(
      () =>
        importTask(db, {
          name: "bad-split",
          lines: [...lines, '{"txt": "v", "hard_label": 1, "split": "dev"}'],
        }),
      /line 61: `split` must be one of train, val, test, got the string "dev"/,
    );
    const withoutVal = lines.filter((l) => !l.includes('"val"'));
    await assert.rejects(
      () => importTask(db, { name: "no-val", lines: withoutVal }),
      /no example has split val/,
    );
  } finally {
    await client.close();
  }
});
