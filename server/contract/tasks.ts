/** Tasks as the API lists and imports them and the dashboard and the CLI read them. */
import { z } from "zod";
import { TASK_NAME } from "./fields.ts";

/** A classification task (a text, a label) or a pairwise one (two texts, which is preferred). */
export type TaskFormat = "classification" | "pairwise";

/**
 * The names that stand for a world's tasks in a sweep (`--tasks world`): its classification tasks, and its
 * pairwise (preference) tasks. No task may take one.
 */
export const WORLD_SUITES = { classification: "world", pairwise: "world-pairwise" } as const;

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
  description: z.string().max(2000).optional(),
  jsonl: z.string().min(1, "jsonl must not be empty"),
}).strict().meta({ id: "TaskImport" });
