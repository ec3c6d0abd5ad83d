/** Tasks as the API lists and imports them and the dashboard and the CLI read them. */
import { z } from "zod";
import { TASK_NAME } from "./fields.ts";

/** A task, built in or imported. */
export interface TaskListing {
  name: string;
  description: string;
  kind: string;
  builtin: boolean;
  source: string;
  exampleCount: number | null;
}

/** JSON import: the JSONL text inside a JSON body. */
export const TaskImportBody = z.object({
  name: TASK_NAME,
  description: z.string().max(2000).optional(),
  jsonl: z.string().min(1, "jsonl must not be empty"),
}).strict().meta({ id: "TaskImport" });
