/**
 * Evaluation throughput at a sweep's shape: a cls prediction (GptModel.predictStep) on a forward-only
 * evaluator of 298 rows × 6 tokens, vocabulary 1,538 (the default world tasks' largest set in one batch,
 * on the lab corpus's vocabulary), for the sizes the caller names (`deno task bench`: the demo sweep's
 * ladder sizes, server/lab/demo.ts). Each size twice: the final block on every row (lastRows false, the program before 2026-12-06) and on each row's
 * last token only (the default). A sweep's finetunes spend most of their GPU time in these predictions.
 */
import type { Gpu } from "../device.ts";
import { type GptConfig, initParameters } from "../config.ts";
import { GptModel } from "../gpt.ts";
import type { EvaluationResult } from "./report.ts";
import type { Timer } from "./timer.ts";
import { benchBatch } from "./training.ts";

export const EVAL_ROWS = 298;
export const EVAL_SEQ_LEN = 6;
export const EVAL_VOCAB = 1538;

/** A model size to time: its name and shape. */
export interface EvalSize {
  name: string;
  width: number;
  layers: number;
  heads: number;
}

async function benchOne(
  gpu: Gpu,
  timer: Timer,
  quick: boolean,
  c: EvalSize,
  lastRows: boolean,
): Promise<EvaluationResult> {
  const cfg: GptConfig = {
    vocabSize: EVAL_VOCAB,
    contextLength: EVAL_SEQ_LEN,
    width: c.width,
    layers: c.layers,
    heads: c.heads,
  };
  const model = new GptModel(gpu, cfg, initParameters(cfg, 1), {
    batchSize: EVAL_ROWS,
    seqLen: EVAL_SEQ_LEN,
    forwardOnly: true,
    lastRows,
  });
  try {
    model.setBatch(benchBatch(EVAL_ROWS, EVAL_SEQ_LEN, EVAL_VOCAB));
    model.predictStep("cls");
    await model.readClassLogits();
    const batches = quick ? 5 : 20;
    const start = performance.now();
    for (let i = 0; i < batches; i++) model.predictStep("cls");
    await model.readClassLogits();
    const msPerBatch = (performance.now() - start) / batches;
    const dispatches = model.dispatches("cls", "predict");
    const gpuMs = (await timer.each(dispatches)).reduce((s, x) => s + x, 0);
    return {
      name: c.name,
      width: c.width,
      layers: c.layers,
      rows: EVAL_ROWS,
      seqLen: EVAL_SEQ_LEN,
      vocabSize: EVAL_VOCAB,
      lastRows,
      msPerBatch,
      gpuMs,
      examplesPerSecond: EVAL_ROWS / (msPerBatch / 1000),
      dispatches: dispatches.length,
    };
  } finally {
    model.destroy();
  }
}

/** Each size with the final block on every row, then on the last rows, one model at a time. */
export async function benchEvaluation(
  gpu: Gpu,
  timer: Timer,
  quick: boolean,
  sizes: readonly EvalSize[],
): Promise<EvaluationResult[]> {
  const results: EvaluationResult[] = [];
  for (const c of sizes) {
    for (const lastRows of [false, true]) results.push(await benchOne(gpu, timer, quick, c, lastRows));
  }
  return results;
}
