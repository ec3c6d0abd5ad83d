/** `deno task lab tasks [--json]`: built-in and imported tasks, with their kind and format. */
import { parseFlags } from "../../server/contract/command-flags.ts";
import { openDb } from "../../db/client.ts";
import { listTasks } from "../../server/api/catalog.ts";
import { IMPORT_FORMATS } from "../../server/tasks/jsonl.ts";

export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, { json: { type: "boolean", default: false } });
  const dataDir = Deno.env.get("LAB_DATA_DIR") ?? "./data";
  const opened = await openDb({ dataDir, databaseUrl: Deno.env.get("DATABASE_URL") || undefined });
  try {
    const tasks = await listTasks(opened.db, dataDir);
    if (values.json) {
      console.log(JSON.stringify(tasks));
      return;
    }
    const width = Math.max(...tasks.map((t) => t.name.length), 4);
    for (const t of tasks) {
      const count = t.exampleCount === null ? "" : ` (${t.exampleCount} ${IMPORT_FORMATS[t.format].unit})`;
      console.log(
        `${t.name.padEnd(width)}  ${t.kind.padEnd(8)}  ${t.format.padEnd(14)}  ${t.description}${count}`,
      );
    }
  } finally {
    await opened.close();
  }
}
