/**
 * `deno task lab import --name N --file F.jsonl [--description D]`: import a task from JSONL, a
 * classification file (openai/weak-to-strong: txt, hard_label) or a comparison file (Anthropic HH / TRL:
 * prompt?, chosen, rejected), which makes a pairwise task (server/tasks/jsonl.ts). A bad line rejects the
 * whole file with its line number and leaves nothing behind.
 */
import { parseFlags, requireFlags, UsageError } from "../../server/contract/command-flags.ts";
import { openDb } from "../../db/client.ts";
import { importTask } from "../../server/api/catalog.ts";
import { TASK_NAME } from "../../server/contract/fields.ts";
import { IMPORT_FORMATS, jsonlLines } from "../../server/tasks/jsonl.ts";

export async function main(args: string[]): Promise<void> {
  const { values: given } = parseFlags(args, {
    name: { type: "string" },
    file: { type: "string" },
    description: { type: "string" },
  });
  const values = requireFlags(
    given,
    { name: "NAME", file: "FILE.jsonl" },
    "lab import --name NAME --file FILE.jsonl",
  );
  const name = TASK_NAME.safeParse(values.name);
  if (!name.success) throw new UsageError(`--name: ${name.error.issues[0].message}`);
  let file: Deno.FsFile;
  try {
    file = await Deno.open(values.file);
  } catch (err) {
    throw new UsageError(`--file: cannot read ${values.file}: ${(err as Error).message}`);
  }
  const dataDir = Deno.env.get("LAB_DATA_DIR") ?? "./data";
  const opened = await openDb({ dataDir, databaseUrl: Deno.env.get("DATABASE_URL") || undefined });
  try {
    const task = await importTask(opened.db, {
      name: name.data,
      description: values.description,
      lines: jsonlLines(file.readable), // read line by line: a large file never sits whole in memory
      source: values.file,
    });
    const { unit, fields } = IMPORT_FORMATS[task.format];
    console.log(
      `imported ${task.format} task ${task.name}: ${task.exampleCount} ${unit} (${fields}) from ${values.file}`,
    );
    const ignored = task.fields.ignored.length > 0 ? task.fields.ignored.join(", ") : "none";
    console.log(`fields used: ${task.fields.used.join(", ")}; ignored: ${ignored}`);
  } catch (err) {
    // Name the file with the line: "F.jsonl: line 7: …".
    throw new Error(`${values.file}: ${err instanceof Error ? err.message : err}`);
  } finally {
    await opened.close();
  }
}
