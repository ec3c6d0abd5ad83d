/** Tasks as the API lists and imports them and the dashboard and the CLI read them. */
import { z } from "zod";
import type { TaskFormat } from "../tasks/types.ts";
import { TASK_NAME, text } from "./fields.ts";

export type { TaskFormat };
export { WORLD_SUITES } from "../corpus/world-schema.ts";

/** A task, built in or imported. */
export interface TaskListing {
  name: string;
  description: string;
  kind: string;
  /** classification (one text, a 0/1 label) or pairwise (two texts, which one is preferred). */
  format: TaskFormat;
  builtin: boolean;
  source: string;
  exampleCount: number | null;
}

/** JSON import: the JSONL text (classification or comparison lines, server/tasks/jsonl.ts) in a JSON body. */
export const TaskImportBody = z.object({
  name: TASK_NAME,
  description: text("description").max(2000).optional(),
  jsonl: z.string().min(1, "jsonl must not be empty").describe(
    'one JSON object per line: {"txt", "hard_label"} or {"prompt"?, "chosen", "rejected"}; the first line ' +
      "decides the format",
  ),
}).strict().meta({ id: "TaskImport" });
