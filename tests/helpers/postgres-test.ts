/**
 * A test on a real Postgres (scripts/pg-cluster.ts starts a throwaway cluster): skipped where no Postgres
 * binaries are installed, and a failure naming the package instead when REQUIRE_ALL=1 (CI).
 */
import { findPostgresBin } from "../../scripts/pg-cluster.ts";

const PG_BIN = findPostgresBin();
const REQUIRED = Deno.env.get("REQUIRE_ALL") === "1";

/** Registers `fn` as a Postgres test; it receives the bin directory of the installed Postgres. */
export function postgresTest(name: string, fn: (bin: string) => Promise<void>): void {
  Deno.test({
    name,
    ignore: !PG_BIN && !REQUIRED,
    // Worker processes and the cluster outlive single awaits; each test stops them itself.
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      if (!PG_BIN) {
        throw new Error("REQUIRE_ALL=1 but no /usr/lib/postgresql/*/bin/initdb: install postgresql");
      }
      await fn(PG_BIN);
    },
  });
}
