/**
 * One training step broken down by kernel (`deno task bench --profile W/L`, or a ladder size): GPU
 * time per dispatch label with layer indices merged, its share of the step and GFLOP/s, for the W/L
 * model at batch 32 × 64, vocabulary 256, or for the shape the caller gives (a ladder size's).
 */
import type { Gpu } from "../device.ts";
import { type GptConfig, initParameters } from "../config.ts";
import { GptModel } from "../gpt.ts";
import type { ProfileRow } from "./report.ts";
import type { Timer } from "./timer.ts";
import { benchBatch } from "./training.ts";

/** The model and batch shape a profile times. */
export interface ProfileShape {
  cfg: GptConfig;
  batchSize: number;
  seqLen: number;
}

/** The W/L model of the benchmark's training step: batch 32 × 64, vocabulary 256, heads of 32. */
export function benchProfileShape(model: string): ProfileShape {
  const [width, layers] = model.split("/").map(Number);
  if (!(width > 0 && layers > 0 && width % 32 === 0)) {
    throw new Error(
      `--profile: model "${model}" must be WIDTH/LAYERS with WIDTH a multiple of 32, e.g. 128/4, or a ladder ` +
        `size (nano, micro, mini, small, medium, …)`,
    );
  }
  return {
    cfg: { vocabSize: 256, contextLength: 64, width, layers, heads: width / 32 },
    batchSize: 32,
    seqLen: 64,
  };
}

/** Per-kernel GPU time of one training step (median of three timed runs per dispatch). */
export async function profileStep(gpu: Gpu, timer: Timer, shape: ProfileShape): Promise<ProfileRow[]> {
  const { cfg, batchSize: B, seqLen: T } = shape;
  const m = new GptModel(gpu, cfg, initParameters(cfg, 1), { batchSize: B, seqLen: T });
  m.setBatch(benchBatch(B, T, cfg.vocabSize));
  m.trainStep("lm");
  await m.readStats();
  const dispatches = m.dispatches("lm");
  const runs = [await timer.each(dispatches), await timer.each(dispatches), await timer.each(dispatches)];
  const rows = new Map<string, ProfileRow & { flops: number }>();
  dispatches.forEach((d, i) => {
    const ms = runs.map((r) => r[i]).sort((a, b) => a - b)[1];
    const kernel = d.label.replace(/\.\d+/g, "");
    const row = rows.get(kernel) ??
      { kernel, family: d.family ?? "other", dispatches: 0, ms: 0, share: 0, flops: 0 };
    row.dispatches++;
    row.ms += ms;
    row.flops += d.flops ?? 0;
    rows.set(kernel, row);
  });
  m.destroy();
  const total = [...rows.values()].reduce((sum, r) => sum + r.ms, 0);
  return [...rows.values()].sort((a, b) => b.ms - a.ms).map(({ flops, ...r }) => ({
    ...r,
    share: r.ms / total,
    gflops: flops ? flops / r.ms / 1e6 : undefined,
  }));
}
