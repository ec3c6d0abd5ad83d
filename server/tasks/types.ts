/**
 * The shapes every task shares: the openai/weak-to-strong example format and the four splits. A task is
 * a classification (one text, a 0/1 label) or pairwise (two texts, the label says which is preferred).
 */

/**
 * One example. Classification: `txt` and its label. Pairwise (preferences): `txt` and `other` are the two
 * full texts (prompt included) and `hard_label` is 1 when `other` is the preferred one, 0 when `txt` is;
 * which text lands in `txt` is a seeded coin per example, so position never predicts the label.
 */
export interface TaskExample {
  txt: string;
  hard_label: 0 | 1;
  other?: string;
  /** A supervisor's P(label 1) given with the task (a weak-label file's); what supervisor "given" trains on. */
  weak_label?: number;
}

/** A classification task (a text, a label) or a pairwise one (two texts, which is preferred). */
export type TaskFormat = "classification" | "pairwise";

/**
 * The example alone, without a builder's extra fields (group, exclusions, prompt); `other` only on pairs,
 * `weak_label` only where the task gave one.
 */
export function taskExample({ txt, hard_label, other, weak_label }: TaskExample): TaskExample {
  const example: TaskExample = other === undefined ? { txt, hard_label } : { txt, hard_label, other };
  return weak_label === undefined ? example : { ...example, weak_label };
}

/** Pairwise when the examples carry `other`, classification when none does; a mix is an error. */
export function taskFormat(examples: readonly TaskExample[]): TaskFormat {
  const pairs = examples.filter((e) => e.other !== undefined).length;
  if (pairs > 0 && pairs < examples.length) {
    const single = examples.findIndex((e) => e.other === undefined);
    throw new Error(
      `examples mix the two formats: ${pairs} of ${examples.length} carry \`other\` (pairwise) but example ` +
        `${single} does not; a task is all classification or all pairwise`,
    );
  }
  return pairs > 0 ? "pairwise" : "classification";
}

/**
 * train1: the weak supervisor learns ground truth here. train2: the weak model labels it; the student
 * trains on those labels and the ceiling on its ground truth. validation: model selection. test: reported.
 */
export interface TaskSplits {
  train1: TaskExample[];
  train2: TaskExample[];
  validation: TaskExample[];
  test: TaskExample[];
  /** Extra named test sets (e.g. a transfer set), evaluated like test. */
  extra?: Record<string, TaskExample[]>;
}

export interface TaskInfo {
  name: string;
  description: string;
  kind: "world" | "text" | "control" | "imported";
  format: TaskFormat;
}
