/**
 * The dashboard's whole-list reads (web/lib/api.ts apiGetAll) against the real API: a list longer than one
 * request's limit arrives whole, in the endpoint's order. The pages that read whole lists (results, probes,
 * an experiment's runs) were cut at their first 1,000 rows, and the results came oldest first, so the
 * newest experiments were the ones left out.
 */
import assert from "node:assert/strict";
import { openDb } from "../db/client.ts";
import { experiments, runs } from "../db/schema.ts";
import { createApp } from "../server/api/app.ts";
import { PAGE_LIMIT_MAX } from "../server/contract/fields.ts";
import { EventBus } from "../server/jobs/bus.ts";
import { apiGetAll } from "../web/lib/api.ts";

Deno.test("apiGetAll: every row of a list that outgrows one request, in the endpoint's order", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "lab-all-rows-test-" });
  const opened = await openDb({ dataDir });
  const app = createApp({ db: opened.db, dataDir, token: "t", bus: new EventBus(), dbKind: opened.kind });
  const realFetch = globalThis.fetch;
  const requested: string[] = [];
  globalThis.fetch = (input: string | URL | Request, init?: RequestInit) => {
    requested.push(String(input));
    return Promise.resolve(app.request(String(input), init));
  };
  try {
    const [experiment] = await opened.db.insert(experiments).values({ kind: "sweep", config: {} })
      .returning();
    const count = 2 * PAGE_LIMIT_MAX + 345;
    const inserted = await opened.db.insert(runs).values(
      Array.from({ length: count }, (_, i) => ({
        experimentId: experiment.id,
        role: "weak",
        modelSize: `size-${i}`,
        status: "done",
      })),
    ).returning({ id: runs.id });
    const rows = await apiGetAll<{ id: number }>(`/runs?experimentId=${experiment.id}&sort=id&order=asc`);
    assert.deepEqual(rows.map((r) => r.id), inserted.map((r) => r.id).sort((a, b) => a - b));
    assert.deepEqual(
      requested,
      [0, 1, 2].map((page) =>
        `/api/runs?experimentId=${experiment.id}&sort=id&order=asc&limit=${PAGE_LIMIT_MAX}&offset=${
          page * PAGE_LIMIT_MAX
        }`
      ),
    );
    // A list of exactly one full page asks once more, for the empty page that ends it.
    const [other] = await opened.db.insert(experiments).values({ kind: "sweep", config: {} }).returning();
    await opened.db.insert(runs).values(
      Array.from({ length: PAGE_LIMIT_MAX }, () => ({
        experimentId: other.id,
        role: "ceiling",
        modelSize: "small",
        status: "done",
      })),
    );
    requested.length = 0;
    assert.equal((await apiGetAll(`/runs?experimentId=${other.id}`)).length, PAGE_LIMIT_MAX);
    assert.equal(requested.length, 2);
  } finally {
    globalThis.fetch = realFetch;
    await opened.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});
