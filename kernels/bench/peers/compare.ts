/**
 * `deno task bench --peers`: our side of the peer table measured in this run, then the peers (run.ts,
 * as subprocesses), then the ratios ours / theirs. Our matmul side is timed like tfjs's (wall time over
 * repeated calls ended by one wait), next to our GPU-timestamp figure.
 */
import type { Gpu } from "../../device.ts";
import { createTensor } from "../../runtime.ts";
import { planProduct } from "../../ops/matmul-texture.ts";
import { matmulSizes, randomFloats } from "../kernel-table.ts";
import type { PeerMatmul, PeerReport, PeerResults, PeerTraining, TrainingResult } from "../report.ts";
import type { Timer } from "../timer.ts";
import { benchTraining, TRAINING_CONFIGS } from "../training.ts";
import { runPeers } from "./run.ts";
import { classifyTorchBlas, referenceBlasNote, type TorchBlas } from "./blas.ts";

/**
 * Our square NN matmul as the model runs its products (planProduct: v6 from textures, packs included,
 * where the autotune chose them, else v4) by wall clock over repeated calls, and by GPU timer.
 */
async function ourMatmul(gpu: Gpu, timer: Timer, S: number): Promise<PeerMatmul> {
  const a = createTensor(gpu, S * S, "a", randomFloats(S * S, 1));
  const b = createTensor(gpu, S * S, "b", randomFloats(S * S, 2));
  const c = createTensor(gpu, S * S, "c");
  const steps = planProduct(gpu, { label: "matmul", a, b, c, M: S, N: S, K: S });
  const flops = 2 * S ** 3;
  await timer.wall(steps, 1);
  const reps = Math.max(3, Math.round(6e9 / flops));
  const ms = await timer.wall(steps, reps);
  const gpuTimes: number[] = [];
  for (let i = 0; timer.kind === "gpu" && i < 3; i++) {
    gpuTimes.push((await timer.each(steps)).reduce((sum, x) => sum + x, 0));
  }
  const gpuMs = gpuTimes.sort((x, y) => x - y)[1];
  for (const t of [a, b, c]) t.buffer.destroy();
  return {
    size: S,
    oursMs: ms,
    oursGflops: flops / ms / 1e6,
    oursGpuGflops: gpuMs ? flops / gpuMs / 1e6 : undefined,
  };
}

/** The models the peers train too: issue 15's targets name 64/2, 128/4 and 192/4. */
export const PEER_MODELS = ["64/2", "128/4", "192/4"];

/** The peer table; `training` holds this run's training rows (the PEER_MODELS ones are reused). */
export async function benchPeers(
  gpu: Gpu,
  timer: Timer,
  quick: boolean,
  training: TrainingResult[],
): Promise<PeerReport> {
  const sizes = matmulSizes(quick);
  const matmul: PeerMatmul[] = [];
  for (const S of sizes) matmul.push(await ourMatmul(gpu, timer, S));
  const wanted = TRAINING_CONFIGS.filter((c) => PEER_MODELS.includes(c.name));
  const ours = wanted.map((c) => training.find((t) => t.name === c.name));
  const measured = ours.every((t) => t)
    ? ours as TrainingResult[]
    : await benchTraining(gpu, timer, quick, wanted);

  const raw = await runPeers({ quick, sizes, models: wanted.map((c) => `${c.width}/${c.layers}`) });
  const notes: string[] = [];
  if (raw.tfjsError) notes.push("tfjs: " + raw.tfjsError);
  if (raw.torchNote) notes.push("torch skipped: " + raw.torchNote);
  for (const m of matmul) {
    m.tfjsGflops = raw.tfjs?.matmul.find((x) => x.size === m.size)?.gflops;
    if (m.tfjsGflops) m.ratio = m.oursGflops / m.tfjsGflops;
  }
  const { rows, torchBlas, notes: trainingNotes } = peerTrainingRows(measured, raw);
  return { matmul, training: rows, torchBlas, notes: [...notes, ...trainingNotes], raw };
}

/**
 * Our training rows against the peers' tokens/s, as ratios ours / theirs. The torch ratios are left
 * out, with a note naming the fix, when torch ran on a reference-class BLAS or did not say which.
 */
export function peerTrainingRows(
  measured: TrainingResult[],
  raw: PeerResults,
): { rows: PeerTraining[]; torchBlas?: TorchBlas; notes: string[] } {
  const notes: string[] = [];
  const torchBlas = raw.torch?.blas ? classifyTorchBlas(raw.torch.blas) : undefined;
  const torchComparable = torchBlas !== undefined && !torchBlas.reference;
  if (raw.torch && !torchBlas) notes.push("torch did not report its BLAS: ratios against it are withheld");
  if (torchBlas?.reference) notes.push(referenceBlasNote(torchBlas));
  const rows = measured.map((t) => {
    const same = (x: { width: number; layers: number }) => x.width === t.width && x.layers === t.layers;
    const tfjs = raw.tfjs?.training.find(same)?.tokensPerSecond;
    const torch = (threads: number) =>
      raw.torch?.training.find((x) => same(x) && x.threads === threads)?.tokensPerSecond;
    const ratio = (x?: number) => (x ? t.tokensPerSecond / x : undefined);
    const torchRatio = (x?: number) => (torchComparable ? ratio(x) : undefined);
    return {
      name: t.name,
      oursTokensPerSecond: t.tokensPerSecond,
      tfjsTokensPerSecond: tfjs,
      torch1TokensPerSecond: torch(1),
      torch2TokensPerSecond: torch(2),
      ratioTfjs: ratio(tfjs),
      ratioTorch1: torchRatio(torch(1)),
      ratioTorch2: torchRatio(torch(2)),
    };
  });
  return { rows, torchBlas, notes };
}
