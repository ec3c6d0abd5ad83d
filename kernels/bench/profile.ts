/**
 * One training step broken down by kernel (`deno task bench --profile W/L`): GPU time per dispatch
 * label with layer indices merged, its share of the step and GFLOP/s, for the W/L model at batch
 * 32 × 64, vocabulary 256.
 */
import type { Gpu } from "../device.ts";
import { type GptConfig, initParameters } from "../config.ts";
import { GptModel } from "../gpt.ts";
import type { ProfileRow } from "./report.ts";
import type { Timer } from "./timer.ts";
import { benchBatch } from "./training.ts";

/** Per-kernel GPU time of one training step (median of three timed runs per dispatch). */
export async function profileStep(gpu: Gpu, timer: Timer, model: string): Promise<ProfileRow[]> {
  const [width, layers] = model.split("/").map(Number);
  if (!(width > 0 && layers > 0 && width % 32 === 0)) {
    throw new Error(
      `--profile: model "${model}" must be WIDTH/LAYERS with WIDTH a multiple of 32, e.g. 128/4`,
    );
  }
  const B = 32, T = 64, V = 256;
  const cfg: GptConfig = { vocabSize: V, contextLength: T, width, layers, heads: width / 32 };
  const m = new GptModel(gpu, cfg, initParameters(cfg, 1), { batchSize: B, seqLen: T });
  m.setBatch(benchBatch(B, T, V));
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
