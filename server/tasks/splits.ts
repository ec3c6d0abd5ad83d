/**
 * Group-disjoint, label-stratified splitting shared by every task. Examples carry a group key (a word,
 * an entity, a president); a group never spans two splits, so a test word or entity is never seen in
 * finetuning. Groups are stratified by their majority label, shuffled with the seed and dealt to the
 * splits by cumulative example count; optionally each split is then balanced to 50/50 by dropping
 * randomly chosen examples of its majority label.
 */

import { seededRandom, shuffled } from "../../kernels/random.ts";
import { type TaskExample, taskExample, type TaskSplits } from "./types.ts";

export type SplitName = "train1" | "train2" | "validation" | "test";
export const SPLIT_NAMES: SplitName[] = ["train1", "train2", "validation", "test"];

/** Fractions of train1 / train2 / validation / test used by the real-text tasks. */
export const TEXT_FRACTIONS: Record<SplitName, number> = {
  train1: 0.3,
  train2: 0.3,
  validation: 0.15,
  test: 0.25,
};

export interface GroupedExample extends TaskExample {
  /** Examples with the same group always land in the same split. */
  group: string;
}

export interface SplitOptions {
  seed: number;
  /** Salt for the seed so different tasks shuffle differently. */
  salt: string;
  fractions?: Record<SplitName, number>;
  /** Drop examples of the majority label in each split until it is exactly 50/50. */
  balance?: boolean;
  /** The splits that must not come out empty (default: all four). */
  required?: SplitName[];
}

/** Splits examples by group; returns the splits and which groups went where. */
export function splitByGroup(
  examples: GroupedExample[],
  opts: SplitOptions,
): { splits: TaskSplits; groupsOf: Record<SplitName, Set<string>> } {
  const fractions = opts.fractions ?? TEXT_FRACTIONS;
  const total = SPLIT_NAMES.reduce((s, n) => s + fractions[n], 0);
  if (!(total > 0)) throw new Error("split fractions must sum to a positive number");
  const random = seededRandom(opts.seed, `split:${opts.salt}`);

  const byGroup = new Map<string, GroupedExample[]>();
  for (const ex of examples) {
    const list = byGroup.get(ex.group);
    if (list) list.push(ex);
    else byGroup.set(ex.group, [ex]);
  }
  // Stratify groups by majority label (ties go to stratum 1) so each split gets its share of both.
  const strata: [string, GroupedExample[]][][] = [[], []];
  for (const entry of [...byGroup.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    const positives = entry[1].filter((e) => e.hard_label === 1).length;
    strata[positives * 2 >= entry[1].length ? 1 : 0].push(entry);
  }

  const groupsOf = Object.fromEntries(SPLIT_NAMES.map((n) => [n, new Set<string>()])) as Record<
    SplitName,
    Set<string>
  >;
  const assigned = Object.fromEntries(SPLIT_NAMES.map((n) => [n, [] as GroupedExample[]])) as Record<
    SplitName,
    GroupedExample[]
  >;
  for (const stratum of strata) {
    const groups = shuffled(stratum, random);
    const count = groups.reduce((s, g) => s + g[1].length, 0);
    let done = 0;
    for (const [key, members] of groups) {
      // Deal the group to the split whose cumulative quota the group's midpoint falls in.
      const position = (done + members.length / 2) / count;
      let acc = 0;
      let target: SplitName = "test";
      for (const name of SPLIT_NAMES) {
        acc += fractions[name] / total;
        if (position < acc) {
          target = name;
          break;
        }
      }
      groupsOf[target].add(key);
      assigned[target].push(...members);
      done += members.length;
    }
  }

  const splits = {} as TaskSplits;
  for (const name of SPLIT_NAMES) {
    let list = shuffled(assigned[name], random);
    if (opts.balance) list = balanceLabels(list, random);
    splits[name] = list.map(taskExample);
  }
  const empty = (opts.required ?? SPLIT_NAMES).filter((name) => splits[name].length === 0);
  if (empty.length > 0 && examples.length > 0) {
    throw new Error(
      `split ${empty.join(", ")} would be empty: the ${examples.length} examples form ${byGroup.size} ` +
        `group(s), and a group (the same text, entity or prompt) stays in one split; give the task more ` +
        `distinct texts or prompts`,
    );
  }
  return { splits, groupsOf };
}

/** Keeps all of the minority label and an equal number of the majority label, in the given order. */
export function balanceLabels<T extends TaskExample>(examples: T[], random: () => number): T[] {
  const pos = examples.filter((e) => e.hard_label === 1);
  const neg = examples.filter((e) => e.hard_label === 0);
  const keep = Math.min(pos.length, neg.length);
  const kept = new Set<T>([...shuffled(pos, random).slice(0, keep), ...shuffled(neg, random).slice(0, keep)]);
  return examples.filter((e) => kept.has(e));
}
