/**
 * A task's format as the dashboard shows it: a classification task labels one text, a pairwise
 * (preference) task says which of two texts is preferred and is read by a scalar reward head.
 */
import type { TaskFormat } from "../../server/contract/tasks.ts";
import type { ResultRow } from "./types.ts";

/** What one example of a format is called where counts are shown. */
export const FORMAT_UNITS: Record<TaskFormat, string> = {
  classification: "examples",
  pairwise: "comparisons",
};

/** What an accuracy of a pairwise result counts, said once wherever such accuracies are shown. */
export const PAIRWISE_ACCURACY = "Pairwise accuracy: share of test pairs ranked correctly";

/** A result stored without a format was made before pairwise tasks existed: classification. */
export const isPairwiseRow = (row: ResultRow) => row.full?.format === "pairwise";

/** A task's name in a picker: a pairwise task is marked, as the server refuses some options for it. */
export const taskLabel = (name: string, format: TaskFormat) =>
  format === "pairwise" ? `${name} — pairwise` : name;
