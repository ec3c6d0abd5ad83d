/**
 * The registry of weak-to-strong methods, keyed by the contract's names (server/contract/methods.ts):
 *   naive       cross-entropy on the weak model's soft labels;
 *   auxconf     the aux confidence (logconf) loss: L = (1−α)·CE(f, f_w) + α·CE(f, hard(f)), α warmed up
 *               linearly to α_max over the first 20 % of steps (metrics.auxconfAlpha), threshold set by
 *               the batch's mean soft weak label (computed on the device, kernels/gpt.ts);
 *   bootstrap   weak → each ladder size between → strong, each trained on the previous one's labels;
 *   generative  LM-finetune the strong model on the task's unlabeled train texts first, then naive or
 *               auxconf (the ceiling gets the same LM finetuning, so the gap compares like with like).
 */

import { type GenerativeBase, METHOD_NAMES, type MethodName } from "../contract/methods.ts";

export interface MethodSpec {
  name: MethodName;
  description: string;
  /** The loss of the final student step: plain CE on soft labels, or the aux confidence loss. */
  loss: "ce" | "auxconf";
  /** Train through the intermediate ladder sizes. */
  bootstrap: boolean;
  /** LM-finetune the strong model (student and ceiling) on unlabeled task texts first. */
  generative: boolean;
}

export const METHODS: Record<MethodName, MethodSpec> = {
  naive: {
    name: "naive",
    description: "cross-entropy on the weak soft labels",
    loss: "ce",
    bootstrap: false,
    generative: false,
  },
  auxconf: {
    name: "auxconf",
    description: "aux confidence loss, α warmed up to α_max over the first 20 % of steps",
    loss: "auxconf",
    bootstrap: false,
    generative: false,
  },
  bootstrap: {
    name: "bootstrap",
    description: "weak → intermediate sizes → strong, each on the previous one's labels",
    loss: "ce",
    bootstrap: true,
    generative: false,
  },
  generative: {
    name: "generative",
    description: "LM finetuning on the task's unlabeled texts, then naive (or auxconf with --base auxconf)",
    loss: "ce",
    bootstrap: false,
    generative: true,
  },
};

export function methodSpec(name: string, generativeBase: GenerativeBase = "naive"): MethodSpec {
  const spec = METHODS[name as MethodName];
  if (!spec) throw new Error(`unknown method "${name}"; methods are: ${METHOD_NAMES.join(", ")}`);
  return spec.generative && generativeBase === "auxconf" ? { ...spec, loss: "auxconf" } : spec;
}
