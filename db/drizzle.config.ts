/** drizzle-kit configuration, used by `deno task db:generate` (a migration from changes to db/schema.ts). */
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./db/schema.ts",
  out: "./db/migrations",
});
