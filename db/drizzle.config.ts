/** drizzle-kit configuration: `deno run -A npm:drizzle-kit@0.31.11 generate --config db/drizzle.config.ts`. */
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./db/schema.ts",
  out: "./db/migrations",
});
