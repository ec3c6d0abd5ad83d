/**
 * Prompting baselines (paper §5.2.1): the pretrained strong model answers without finetuning. The label
 * is read from the LM head at the last prompt position: each class has a list of label words, a class's
 * score is log Σ exp(logit) over the first tokens of its words (the softmax normalizer is shared, so
 * this compares probabilities), and the prediction is the more likely class.
 *   zero-shot  the test text alone;
 *   k-shot     k demonstrations from train2 (balanced, seeded), labelled with ground truth or with the
 *              weak model's labels, then the test text (promptPrefix builds the demonstrations).
 * A demonstration states a whole fact: on world tasks the entity's own region when the shown label
 * agrees with its half, else a region of the shown half; elsewhere the text and its label word.
 * The LM head is tied to the embedding, so the logits of a few label tokens are the dot products of the
 * final-LayerNorm features (featuresStep) with their embedding rows: no V-wide readback is needed.
 */

import type { GptConfig } from "../../kernels/config.ts";
import type { Gpu } from "../../kernels/device.ts";
import { GptModel } from "../../kernels/gpt.ts";
import type { Tokenizer } from "../corpus/tokenizer.ts";
import { pick, seededRandom, shuffled } from "../../kernels/random.ts";
import type { TaskExample } from "../tasks/types.ts";
import { promptFor, type World } from "../corpus/world.ts";
import { isWorldTask } from "../tasks/load.ts";
import { askedAttribute, valueLabel, worldTaskSpec } from "../tasks/world-tasks.ts";
import { featuresOf, padSet } from "./finetune.ts";
import { accuracy } from "./metrics.ts";

export interface PromptFormat {
  /** Label words of class 0 and class 1 (scored by their first token). */
  classWords: [string[], string[]];
  /** Between demonstrations and before the query. */
  separator: string;
  /**
   * The true answer word of each example text (world tasks: the entity's region, " Melbra"), one of the
   * class words; with it a demonstration states the example's own fact instead of its class's first word.
   */
  answers?: ReadonlyMap<string, string>;
}

/**
 * Label words per task. A world task (not a relation) uses the asked attribute's values of each class
 * and the entities' own values (the world the task was built from: the ladder's).
 */
export function promptFormatFor(task: string, world?: World): PromptFormat {
  const spec = world && isWorldTask(task) ? worldTaskSpec(world, task) : undefined;
  if (world && spec && spec.type !== "relation") {
    const attr = askedAttribute(world, spec);
    const values = world.attributes.find((a) => a.name === attr)!.values;
    const words = (label: number) =>
      values.filter((v) => valueLabel(world, spec, v) === label).map((v) => " " + v);
    const answers = new Map(world.entities.map((e) => [promptFor(world, attr, e.name), " " + e.attrs[attr]]));
    // Each text opens with ". ", so demonstrations joined by nothing read as the corpus's run of sentences.
    return { classWords: [words(0), words(1)], separator: "", answers };
  }
  if (task === "polarity") {
    return { classWords: [[" negative", " bad"], [" positive", " good"]], separator: "\n" };
  }
  if (task === "spam") return { classWords: [[" ham"], [" spam"]], separator: "\n" };
  return { classWords: [[" no"], [" yes"]], separator: "\n" };
}

export interface PromptingInput {
  gpu: Gpu;
  config: GptConfig;
  params: Float32Array;
  tokenizer: Tokenizer;
  format: PromptFormat;
  test: readonly TaskExample[];
  /** Demonstrations (with the labels to show) for k-shot; none for zero-shot. */
  demos?: PromptDemos;
  batchSize?: number;
}

export interface PromptingResult {
  accuracy: number;
  /** Share of test examples predicted as class 1 (a model stuck on one word shows here). */
  positiveRate: number;
  predictions: number[];
  promptTokens: number;
}

/** Balanced k demonstrations (k/2 per shown label where possible), seeded. */
export function pickDemos(
  examples: readonly TaskExample[],
  labels: readonly number[],
  k: number,
  seed: number,
): { txt: string; label: number }[] {
  const random = seededRandom(seed, "prompt-demos");
  const order = shuffled([...examples.keys()], random);
  const byLabel = [order.filter((i) => labels[i] === 0), order.filter((i) => labels[i] === 1)];
  const chosen: number[] = [];
  for (let j = 0; chosen.length < k && j < examples.length; j++) {
    for (const c of [j % 2, 1 - (j % 2)]) {
      const next = byLabel[c].shift();
      if (next !== undefined) {
        chosen.push(next);
        break;
      }
    }
  }
  return shuffled(chosen, random).map((i) => ({ txt: examples[i].txt, label: labels[i] }));
}

/** The demonstrations to show: examples, the labels they are shown with, how many, and the seed. */
export interface PromptDemos {
  examples: readonly TaskExample[];
  labels: readonly number[];
  k: number;
  seed: number;
}

/**
 * What a test text is appended to: the k demonstrations joined by the separator, plus the separator
 * ("" for zero-shot). A demonstration is its text and one word of the shown label's class: with
 * `answers`, the example's own answer when that is a word of the class (ground truth, and weak labels
 * that agree), otherwise a word of the class drawn with the seed (a weak label that disagrees states a
 * fact of the other half); without `answers`, the class's first word.
 */
export function promptPrefix(format: PromptFormat, demos?: PromptDemos): string {
  if (!demos) return "";
  // One draw per disagreeing demonstration, in demonstration order: the same prompt for a given seed.
  const random = seededRandom(demos.seed, "prompt-demo-answers");
  const texts = pickDemos(demos.examples, demos.labels, demos.k, demos.seed).map(({ txt, label }) => {
    const words = format.classWords[label];
    if (!format.answers) return txt + words[0];
    const answer = format.answers.get(txt);
    if (answer === undefined) throw new Error(`no answer for the demonstration ${JSON.stringify(txt)}`);
    return txt + (words.includes(answer) ? answer : pick(words, random));
  });
  return texts.length === 0 ? "" : texts.join(format.separator) + format.separator;
}

export async function promptingBaseline(input: PromptingInput): Promise<PromptingResult> {
  const { tokenizer, format, config } = input;
  const classTokens = format.classWords.map((words) =>
    words.map((w) => {
      const ids = tokenizer.encode(w);
      if (ids.length === 0) throw new Error(`label word ${JSON.stringify(w)} tokenizes to nothing`);
      return ids[0];
    })
  );
  const prefix = promptPrefix(format, input.demos);
  const texts = input.test.map((e) => prefix + e.txt);
  const ids = texts.map((t) => tokenizer.encode(t));
  const T = Math.min(config.contextLength, Math.max(...ids.map((r) => r.length)));
  const set = padSet(ids, T);
  const model = new GptModel(input.gpu, config, input.params, {
    batchSize: input.batchSize ?? 64,
    seqLen: T,
    forwardOnly: true,
  });
  let lnf: Float32Array[];
  try {
    lnf = (await featuresOf(model, set))[config.layers + 1];
  } finally {
    model.destroy();
  }
  const wte = model.layout.byName.get("wte.weight")!;
  const C = config.width;
  const logit = (features: Float32Array, token: number) => {
    let s = 0;
    for (let c = 0; c < C; c++) s += features[c] * input.params[wte.offset + token * C + c];
    return s;
  };
  const logSumExp = (values: number[]) => {
    const m = Math.max(...values);
    return m + Math.log(values.reduce((s, v) => s + Math.exp(v - m), 0));
  };
  const predictions = lnf.map((f) => {
    const [s0, s1] = classTokens.map((tokens) => logSumExp(tokens.map((t) => logit(f, t))));
    return s1 > s0 ? 1 : 0;
  });
  return {
    accuracy: accuracy(predictions, input.test.map((e) => e.hard_label)),
    positiveRate: predictions.reduce((s: number, p) => s + p, 0) / predictions.length,
    predictions,
    promptTokens: T,
  };
}
