/**
 * The experiment cache shared across machines (server/lab/cache.ts over the artifact store in one real
 * Postgres): an entry written from data directory A is read in data directory B without computing it again
 * and lands in B's local file; a remote entry whose chunks were damaged is refused by its sha-256 and
 * computed again. Skipped without Postgres binaries unless REQUIRE_ALL=1.
 */
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { join } from "node:path";
import { postgresArtifactStore } from "../db/artifacts.ts";
import { openDb } from "../db/client.ts";
import { type PgCluster, startPgCluster } from "../scripts/pg-cluster.ts";
import { useArtifactStore } from "../server/lab/artifact-store.ts";
import { ExperimentCache, hashOf } from "../server/lab/cache.ts";
import { freePort } from "../scripts/load.ts";
import { postgresTest } from "./helpers/postgres-test.ts";

/** A compute function that counts its calls: a hit must not call it. */
function counted<T>(value: T) {
  const compute = () => {
    compute.calls++;
    return Promise.resolve(value);
  };
  compute.calls = 0;
  return compute;
}

postgresTest(
  "shared cache: an entry written in one data dir is read in another; a damaged one is refused",
  async (pgBin) => {
    const [dirA, dirB] = [
      await Deno.makeTempDir({ prefix: "lab-cache-a-" }),
      await Deno.makeTempDir({ prefix: "lab-cache-b-" }),
    ];
    let cluster: PgCluster | undefined;
    let close: (() => Promise<void>) | undefined;
    try {
      cluster = await startPgCluster(pgBin, freePort());
      const opened = await openDb({ dataDir: dirA, databaseUrl: cluster.url });
      close = opened.close;
      useArtifactStore(postgresArtifactStore(opened.db));
      const [cacheA, cacheB] = [dirA, dirB].map((d) => new ExperimentCache(join(d, "cache")));
      const key = { task: "world-region", size: "nano", seed: 3 };
      const weakLabels = { probs: [0.25, 0.75, NaN], acc: 0.5 };

      const wrote = await cacheA.through("weak", key, counted(weakLabels));
      assert.equal(wrote.cached, false);
      const storeKey = `cache/weak/${hashOf(key)}.json`;
      const [published] = await postgresArtifactStore(opened.db).list(storeKey);
      assert.equal(published?.key, storeKey, "published under cache/<kind>/<hash>.json");

      const computeB = counted({ probs: [], acc: 0 });
      const read = await cacheB.through("weak", key, computeB);
      assert.equal(computeB.calls, 0, "B did not compute it again");
      assert.equal(read.cached, true);
      assert.deepEqual(read.value, weakLabels, "NaN revived too");
      assert.deepEqual([cacheB.hits, cacheB.sharedHits, cacheB.misses], [1, 1, 0]);
      const localB = JSON.parse(await Deno.readTextFile(join(dirB, "cache", "weak", `${hashOf(key)}.json`)));
      assert.deepEqual(localB.key, key, "B's local file filled");

      // Another key misses on both machines; the store answers only for the exact key.
      const otherKey = { ...key, seed: 4 };
      assert.equal(await cacheB.get("weak", otherKey), undefined);

      // A third machine finds the store's chunks damaged: refused by the hash, computed again, republished.
      const dirC = await Deno.makeTempDir({ prefix: "lab-cache-c-" });
      try {
        await opened.db.execute(
          sql`update artifact_chunks set bytes = '\\x7b7d' where hash = ${published.hash}`,
        );
        const cacheC = new ExperimentCache(join(dirC, "cache"));
        const computeC = counted(weakLabels);
        const again = await cacheC.through("weak", key, computeC);
        assert.equal(computeC.calls, 1, "the damaged entry was not used");
        assert.equal(again.cached, false);
        assert.deepEqual([cacheC.sharedHits, cacheC.misses], [0, 1]);
        const computeD = counted({ probs: [], acc: 0 });
        const cacheD = new ExperimentCache(join(dirC, "cache-d"));
        assert.deepEqual(
          (await cacheD.through("weak", key, computeD)).value,
          weakLabels,
          "republished whole",
        );
        assert.equal(computeD.calls, 0);
      } finally {
        await Deno.remove(dirC, { recursive: true });
      }
    } finally {
      useArtifactStore(undefined);
      await close?.();
      await cluster?.destroy();
      for (const dir of [dirA, dirB]) await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);
