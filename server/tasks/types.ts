/** The shapes every task shares: the openai/weak-to-strong example format and the four splits. */

export interface TaskExample {
  txt: string;
  hard_label: 0 | 1;
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
}
