/** The examples of an imported task, read back one row each in file order (the `task_examples` table). */
import { asc, eq } from "drizzle-orm";
import type { LabDb } from "./client.ts";
import { taskExamples, tasks } from "./schema.ts";
import type { TaskExample } from "../server/tasks/types.ts";

/** Every example of the imported task `name`, ordered by its place in the file; undefined when unknown. */
export async function readTaskExamples(db: LabDb, name: string): Promise<TaskExample[] | undefined> {
  const rows = await db.select({ example: taskExamples.example }).from(taskExamples)
    .where(eq(taskExamples.taskName, name)).orderBy(asc(taskExamples.idx));
  if (rows.length > 0) return rows.map((r) => r.example as TaskExample);
  const [task] = await db.select({ name: tasks.name }).from(tasks).where(eq(tasks.name, name));
  return task ? [] : undefined;
}
