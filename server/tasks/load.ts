/**
 * An experiment's task by name: a world task (the world file's, world-tasks.ts), a built-in text task
 * (registry.ts), an imported one, or a JSONL file, split into train1 / train2 / validation / test, and
 * optionally capped to a seeded sample per split.
 */

import type { World } from "../corpus/world.ts";
import { seededRandom, shuffled } from "../../kernels/random.ts";
import { parseTaskJsonl, splitExamples } from "./jsonl.ts";
import { BUILTIN_TASKS, loadBuiltinTask } from "./registry.ts";
import { splitByGroup } from "./splits.ts";
import type { TaskExample, TaskSplits } from "./types.ts";
import { worldTaskSource } from "./world-tasks.ts";
import { didYouMean } from "./did-you-mean.ts";

/** World tasks are named "world-…" (the world file's schema requires it). */
export const isWorldTask = (name: string) => name.startsWith("world-");

/** Examples of an imported task by name (the job handler reads them from the database). */
export type ImportedTaskLookup = (name: string) => Promise<TaskExample[] | undefined>;

/** A built-in task, an imported one, or a path to a JSONL file (bad lines are named by number). */
export async function loadTaskSplits(
  task: string,
  seed: number,
  imported?: ImportedTaskLookup,
  world?: World,
): Promise<TaskSplits> {
  // A world task must ask about the entities the ladder saw: it is built from the ladder's own world.
  if (isWorldTask(task)) {
    if (!world) throw new Error(`${task} is a world task: it needs the world the models were pretrained on`);
    const source = worldTaskSource(world, task);
    return splitByGroup(source.examples, { seed, salt: task, fractions: source.fractions, balance: true })
      .splits;
  }
  if (BUILTIN_TASKS.some((t) => t.name === task)) return await loadBuiltinTask(task, { seed });
  if (task.endsWith(".jsonl")) {
    let text: string;
    try {
      text = await Deno.readTextFile(task);
    } catch (err) {
      throw new Error(`cannot read task file ${task}: ${(err as Error).message}`);
    }
    try {
      return splitExamples(parseTaskJsonl(text), seed);
    } catch (err) {
      throw new Error(`${task}: ${(err as Error).message}`);
    }
  }
  const examples = await imported?.(task);
  if (examples) return splitExamples(examples, seed);
  const worldNames = world ? world.spec.tasks.map((t) => t.name) : [];
  const worldTasks = world ? worldNames.join(", ") : 'names starting "world-"';
  const builtin = BUILTIN_TASKS.map((t) => t.name);
  throw new Error(
    `unknown task "${task}"; built-in tasks are: ${builtin.join(", ")}; ` +
      `world tasks: ${worldTasks} (\`lab tasks\` lists them; or import one with: deno task lab import ` +
      `--name N --file F.jsonl, or pass a .jsonl path)${didYouMean(task, [...builtin, ...worldNames])}`,
  );
}

/** At most `max` examples per split, a seeded sample (quick runs and tests). */
export function capSplits(splits: TaskSplits, max: number | undefined, seed: number): TaskSplits {
  if (!max) return splits;
  const cap = (list: TaskExample[], name: string) =>
    list.length <= max ? list : shuffled(list, seededRandom(seed, `cap:${name}`)).slice(0, max);
  return {
    train1: cap(splits.train1, "train1"),
    train2: cap(splits.train2, "train2"),
    validation: cap(splits.validation, "validation"),
    test: cap(splits.test, "test"),
  };
}

/**
 * The splits of an experiment whose supervisor's labels came with the task (supervisor "given"): every
 * example must carry `weak_label`, and the student and ceiling train on all of train, as openai/weak-to-
 * strong's student trains on its whole weak_labels set (no weak model needs train1). train1 is left empty.
 */
export function givenLabelSplits(task: string, splits: TaskSplits): TaskSplits {
  const named = (["train1", "train2", "validation", "test"] as const).flatMap((split) =>
    splits[split].map((example, index) => ({ split, index, example }))
  );
  const missing = named.filter(({ example }) => example.weak_label === undefined);
  if (missing.length > 0) {
    const { split, index } = missing[0];
    throw new Error(
      `supervisor "given": task ${task} has no \`weak_label\` (the supervisor's P(label 1)) on ${missing.length} ` +
        `of ${named.length} examples (first: ${split} example ${index}); import the task from a weak-label ` +
        `file (\`gt_label\` the truth, \`soft_label\`/\`hard_label\` the supervisor's) or use supervisor trained`,
    );
  }
  return { ...splits, train1: [], train2: [...splits.train1, ...splits.train2] };
}
