/** What a task builder hands to the registry before splitting. */

import type { SplitName } from "./splits.ts";
import type { GroupedExample } from "./splits.ts";
import { type TaskExample, taskExample } from "./types.ts";

export interface SourceExample extends GroupedExample {
  /** Items to keep out of pretraining when this example is in the test split. */
  exclude?: string[];
}

export interface TaskSource {
  examples: SourceExample[];
  /** How the exclusions of this task's test split are expressed to the corpus builder. */
  exclusionKind: "wordnet" | "text" | "none";
  fractions?: Record<SplitName, number>;
  /** Extra transfer test sets (always excluded from pretraining like test). */
  extra?: Record<string, SourceExample[]>;
}

export function plain(examples: SourceExample[]): TaskExample[] {
  return examples.map(taskExample);
}
