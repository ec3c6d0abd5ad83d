/**
 * Bounded memory for big tasks: `GET /api/tasks/<name>` of an imported task returns its first ten examples
 * and the stored count while the database hands the server only those ten (every query's rows are weighed
 * on their way out of PGlite), and parsing a JSONL file line by line gives what parsing the whole text gives.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import { drizzle } from "drizzle-orm/pglite";
import { migrate } from "drizzle-orm/pglite/migrator";
import { Hono } from "hono";
import * as schema from "../db/schema.ts";
import type { LabDb } from "../db/client.ts";
import { TASK_SAMPLE_SIZE } from "../server/api/catalog.ts";
import { taskRoutes } from "../server/api/routes/tasks.ts";
import { handleError } from "../server/api/errors.ts";
import { EventBus } from "../server/jobs/bus.ts";

/** An in-memory PGlite whose every query result is weighed (JSON characters of its rows). */
async function weighedDb(): Promise<{ db: LabDb; client: PGlite; weighed: number[] }> {
  const client = new PGlite();
  const weighed: number[] = [];
  const query = client.query.bind(client);
  client.query = (async (...args: Parameters<PGlite["query"]>) => {
    const result = await query(...args);
    weighed.push(JSON.stringify(result.rows).length);
    return result;
  }) as PGlite["query"];
  const db = drizzle(client, { schema });
  await migrate(db, { migrationsFolder: fileURLToPath(new URL("../db/migrations", import.meta.url)) });
  return { db: db as unknown as LabDb, client, weighed };
}

/** Example i of the stored task: a long text whose number says where it sits. */
const longExample = (i: number) => ({ txt: `example ${i} ` + "word ".repeat(2000), hard_label: i % 2 });

Deno.test("the sample route cuts ten examples in SQL and counts from the stored count", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "lab-tasks-memory-" });
  const { db, client, weighed } = await weighedDb();
  try {
    const examples = Array.from({ length: 300 }, (_, i) => longExample(i));
    const few = [{ txt: "a", hard_label: 0 }, { txt: "b", hard_label: 1 }, { txt: "c", hard_label: 0 }];
    await db.insert(schema.tasks).values([
      { name: "big", kind: "imported", description: "d", source: "t", exampleCount: 300 },
      { name: "few", kind: "imported", description: "d", source: "t", exampleCount: 3 },
    ]);
    const rows = (taskName: string, list: unknown[]) =>
      list.map((example, idx) => ({ taskName, idx, example }));
    // Stored out of order: the sample follows idx, not the order rows were written.
    await db.insert(schema.taskExamples).values([...rows("big", examples).reverse(), ...rows("few", few)]);
    const storedChars = JSON.stringify(examples).length;
    const app = new Hono().route("/", taskRoutes({ db, dataDir, token: "t", bus: new EventBus() }))
      .onError(handleError);

    weighed.length = 0;
    const res = await app.request("/big");
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.exampleCount, 300);
    assert.equal(body.format, "classification");
    assert.deepEqual(body.sample, examples.slice(0, 10));
    assert.equal(TASK_SAMPLE_SIZE, 10);
    const fetched = weighed.reduce((a, b) => a + b, 0);
    // Ten examples and the listing's fields, where the whole column would be thirty times that.
    assert.ok(fetched < storedChars / 20, `the route fetched ${fetched} chars of a ${storedChars}-char task`);

    const small = await (await app.request("/few")).json();
    assert.deepEqual(small.sample, few);
    assert.equal(small.exampleCount, 3);
    assert.equal((await app.request("/missing")).status, 404);
  } finally {
    await client.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});
