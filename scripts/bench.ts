/**
 * `deno task bench [--json] [--quick] [--kernels-only|--training-only] [--peers] [--no-autotune] [--gpt2]
 * [--profile [W/L|SIZE]] [--sweep]`: kernel and training benchmarks on this machine's WebGPU adapter. The measuring
 * lives in kernels/bench/ (suite.ts runs it); this file reads the flags and prints.
 *
 * Kernels: time per call and GFLOP/s or GB/s at realistic shapes, every version of each kernel side by
 * side (matmul v1…v4, attention v1…v3, …), measured with GPU timestamps where the adapter has them,
 * else wall time over many calls in one submit. Training: tokens/s of a full step (forward, backward,
 * AdamW in one command encoder, no read-back) for a few GPT sizes, the share of step time spent in
 * matmul, dispatches per step and CPU encoding time per step. Evaluation (with the training steps): a
 * cls prediction at a sweep's evaluator shape (298 rows × 6 tokens) for the demo sweep's sizes, the
 * final block on every row beside on each row's last token (the default), ms per batch and examples/s.
 * With --json the last line is one JSON object (kernels/bench/report.ts: BenchReport, or ProfileReport
 * with --profile).
 *
 * Memory: the adapter bytes each size needs for its training step (parameters, gradients, AdamW,
 * activations), the GPT-2 ladder up to XL included, the storage-binding windows its largest tensor
 * takes, the shards its flat buffers are split into under maxBufferSize, and which limit of this
 * adapter it breaks (maxBufferSize; memory, known for a software
 * adapter); a training size that cannot fit is refused with one named error before anything is allocated.
 *
 * --peers adds, measured in the same run: tfjs-backend-webgpu on the same adapter (matmul 256/512/1024
 * NN, GPT 64/2, 128/4 and 192/4 training steps) and PyTorch on the CPU (the same GPT step, 1 and 2 threads),
 * each with the ratio ours / theirs. The PyTorch line names its BLAS; on the reference BLAS (Debian's
 * python3-torch without `apt-get install libopenblas0-pthread`) the torch ratios are withheld.
 *
 * --profile [W/L|SIZE] breaks one training step of the W/L model (default 128/4, batch 32 × 64,
 * vocabulary 256), or of a ladder size's pretraining (e.g. `--profile medium`: its batch and context, the
 * lab corpus's vocabulary from $LAB_DATA_DIR or ./data), down by kernel: GPU time per dispatch label
 * (layer indices merged), its share of the step and GFLOP/s.
 *
 * --sweep times one sweep (every world task over nano, micro and mini, seed 0: 32 experiments) one lane at a
 * time and in two lanes, on the ladder pretrained in $LAB_DATA_DIR or ./data, each on an empty role cache,
 * and says whether both gave the same readings (scripts/sweep-bench.ts).
 *
 * --gpt2 times only the GPT-2-124M-sized training step (vocabulary 50257, context 1024, width 768,
 * 12 layers, batch 4 × 1024): the GPU-session comparison with PyTorch (scripts/gpu/check.sh). It needs
 * an adapter whose storage bindings hold the 154 MB embedding; llvmpipe's 128 MiB limit refuses it
 * with a named error.
 */
import { getGpu } from "../kernels/device.ts";
import { flagList, parseFlags, UsageError } from "../server/contract/command-flags.ts";
import { autotuneMatmul } from "../kernels/ops/matmul-autotune.ts";
import {
  type BenchReport,
  CEILING_KERNEL,
  ceilingPercent,
  type EvaluationResult,
  type MemoryRow,
  type PeerReport,
  type ProfileReport,
} from "../kernels/bench/report.ts";
import { formatBytes } from "../kernels/memory.ts";
import { benchProfileShape, type ProfileShape, profileStep } from "../kernels/bench/profile.ts";
import { LADDER, ladderSize } from "../server/lab/ladder.ts";
import { DEMO_SWEEP } from "../server/lab/demo.ts";
import { pretrainConfig } from "../server/lab/pretrain.ts";
import { loadLabCorpus } from "../server/lab/lab-corpus.ts";
import { runBench } from "../kernels/bench/suite.ts";
import { Timer } from "../kernels/bench/timer.ts";
import { measureCeiling } from "../kernels/bench/ceiling.ts";
import { benchSweep } from "./sweep-bench.ts";

/** A GFLOP/s figure as a share of the adapter's fma ceiling ("" where either is missing). */
function ofCeiling(gflops: number | undefined, ceiling: number | undefined): string {
  const percent = ceilingPercent(gflops, ceiling);
  return percent === undefined ? "" : `${percent.toFixed(0)} %`;
}

function printTable(report: BenchReport): void {
  console.log(
    `device: ${report.device} (timer: ${report.timer}, load average ${report.loadAverage?.toFixed(2)})`,
  );
  if (report.matmulTune) {
    const t = report.matmulTune;
    const chosen = Object.entries(t.blocks).map(([layout, b]) => `${layout} ${b.join("×")}`).join(", ");
    console.log(
      `matmul v4 (tiled) blocks (autotune${t.fromCache ? ", cached" : ""}): ${chosen}; operands from ` +
        `${t.operands} (${t.operands === "textures" ? "v6" : "v4"})`,
    );
  }
  if (report.kernels.length > 0) printKernels(report);
  if (report.training.length > 0) printTraining(report);
}

function printKernels(report: BenchReport): void {
  console.log("");
  const ceiling = report.kernels.find((k) => k.kernel === CEILING_KERNEL)?.gflops;
  // The version column as wide as its longest label ("v4 (flash, texture operands)").
  const width = Math.max(24, ...report.kernels.map((k) => k.version.length));
  console.log(
    `${"kernel".padEnd(28)} ${
      "version".padEnd(width)
    } shape                 ms/call   GFLOP/s  ceiling    GB/s`,
  );
  for (const k of report.kernels) {
    console.log(
      `${k.kernel.padEnd(28)} ${k.version.padEnd(width)} ${k.shape.padEnd(20)} ${
        k.ms.toFixed(3).padStart(9)
      } ${(k.gflops?.toFixed(2) ?? "").padStart(9)} ${
        ofCeiling(k.kernel === CEILING_KERNEL ? undefined : k.gflops, ceiling).padStart(8)
      } ${(k.gbps?.toFixed(2) ?? "").padStart(7)}`,
    );
  }
  if (ceiling) {
    console.log(
      `("ceiling": share of the ${CEILING_KERNEL}, ${ceiling.toFixed(1)} GFLOP/s: vec4 fma in registers, ` +
        `no memory; kernels/bench/ceiling.ts)`,
    );
  }
}

function printTraining(report: BenchReport): void {
  const shapes = [
    ...new Set(
      report.training.map((t) => `batch ${t.batchSize} × ${t.contextLength}, vocabulary ${t.vocabSize}`),
    ),
  ];
  console.log(`\ntraining step (${shapes.join("; ")}, AdamW)`);
  console.log("model          params     tokens/s   ms/step  matmul share  dispatches  encode ms");
  for (const t of report.training) {
    console.log(
      `${t.name.padEnd(14)} ${String(t.params).padEnd(10)} ${t.tokensPerSecond.toFixed(0).padStart(8)} ${
        t.msPerStep.toFixed(1).padStart(9)
      } ${(100 * t.matmulShare).toFixed(1).padStart(11)} % ${String(t.dispatchesPerStep).padStart(10)} ${
        t.encodeMsPerStep.toFixed(2).padStart(10)
      }`,
    );
  }
}

function printEvaluation(rows: EvaluationResult[]): void {
  const [first] = rows;
  console.log(
    `\nevaluation: a cls prediction of ${first.rows} rows × ${first.seqLen} tokens, vocabulary ${first.vocabSize} ` +
      "(a sweep's evaluator batch; kernels/bench/evaluation.ts)",
  );
  console.log("model   final block     ms/batch   GPU ms  examples/s  dispatches");
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(7)} ${(r.lastRows ? "last rows" : "every row").padEnd(13)} ${
        r.msPerBatch.toFixed(1).padStart(10)
      } ${r.gpuMs.toFixed(1).padStart(8)} ${r.examplesPerSecond.toFixed(0).padStart(11)} ${
        String(r.dispatches).padStart(11)
      }`,
    );
  }
}

function printMemory(rows: MemoryRow[]): void {
  console.log("\nadapter memory per training step (kernels/memory.ts)");
  console.log(
    "model          batch      params     grads     AdamW  activations     total  largest tensor       windows  shards  fits",
  );
  for (const r of rows) {
    const fits = r.problems.length === 0 ? "yes" : "NO: " + r.problems.join("; ");
    console.log(
      `${r.name.padEnd(14)} ${`${r.batchSize}×${r.contextLength}`.padEnd(8)} ${
        [r.parameters, r.gradients, r.adamw].map((b) => formatBytes(b).padStart(9)).join(" ")
      } ${formatBytes(r.activations).padStart(12)} ${formatBytes(r.total).padStart(9)}  ${
        `${r.largestTensor} ${formatBytes(r.largestBytes)}`.padEnd(19)
      } ${String(r.bindingWindows).padStart(8)} ${String(r.flatShards).padStart(7)}  ${fits}`,
    );
  }
}

function printPeers(p: PeerReport): void {
  const f = (x: number | undefined, digits = 2) => (x === undefined ? "–" : x.toFixed(digits));
  console.log(
    "\npeers, measured in this run (matmul NN as the model runs its products, v6 with its packs where textures were chosen; wall time per call over repeated calls)",
  );
  console.log("size    ours GFLOP/s  (GPU timer)  tfjs GFLOP/s  ours/tfjs");
  for (const m of p.matmul) {
    console.log(
      `${String(m.size).padEnd(7)} ${f(m.oursGflops).padStart(12)} ${f(m.oursGpuGflops).padStart(12)} ${
        f(m.tfjsGflops).padStart(13)
      } ${f(m.ratio).padStart(10)}`,
    );
  }
  if (p.torchBlas) {
    const mark = p.torchBlas.reference
      ? "  !! REFERENCE-CLASS BLAS: torch ratios withheld (see note) !!"
      : "";
    console.log(`\ntorch BLAS: ${p.torchBlas.reason}${mark}`);
  }
  console.log("\ntraining tokens/s (batch 32 × 64, vocabulary 256, AdamW)");
  console.log("model   ours    tfjs    ours/tfjs  torch 1T  ours/torch1  torch 2T  ours/torch2");
  for (const t of p.training) {
    console.log(
      `${t.name.padEnd(7)} ${f(t.oursTokensPerSecond, 0).padStart(5)} ${
        f(t.tfjsTokensPerSecond, 0).padStart(7)
      } ${f(t.ratioTfjs).padStart(11)} ${f(t.torch1TokensPerSecond, 0).padStart(9)} ${
        f(t.ratioTorch1, 3).padStart(12)
      } ${f(t.torch2TokensPerSecond, 0).padStart(9)} ${f(t.ratioTorch2, 3).padStart(12)}`,
    );
  }
  for (const n of p.notes) console.log("note: " + n);
}

function printProfile(model: string, shape: ProfileShape, report: ProfileReport): void {
  const rows = report.kernels;
  const total = rows.reduce((sum, r) => sum + r.ms, 0);
  console.log(
    `training step ${model}, batch ${shape.batchSize} × ${shape.seqLen}, vocabulary ${shape.cfg.vocabSize}: ` +
      `${total.toFixed(1)} ms of GPU time in ${rows.reduce((n, r) => n + r.dispatches, 0)} dispatches; ` +
      `${CEILING_KERNEL} ${report.ceilingGflops.toFixed(1)} GFLOP/s (kernels/bench/ceiling.ts)`,
  );
  console.log("kernel                                  family   dispatches     ms   share  GFLOP/s  ceiling");
  for (const r of rows) {
    console.log(
      `${r.kernel.padEnd(40)}${r.family.padEnd(9)}${String(r.dispatches).padStart(10)} ${
        r.ms.toFixed(2).padStart(7)
      } ${(100 * r.share).toFixed(1).padStart(6)} % ${(r.gflops?.toFixed(1) ?? "").padStart(7)} ${
        ofCeiling(r.gflops, report.ceilingGflops).padStart(8)
      }`,
    );
  }
}

/** A failure (e.g. --gpt2 on an adapter too small for it) ends the run with its named error alone. */
function fail(err: unknown): never {
  console.error(`bench: ${(err as Error).message}`);
  Deno.exit(1);
}

/**
 * The shape --profile times: a ladder size's pretraining step (its batch and context, the vocabulary of
 * the lab corpus in $LAB_DATA_DIR or ./data, built there if missing, as `lab pretrain` does) or W/L.
 */
async function profileShape(model: string): Promise<ProfileShape> {
  const size = LADDER.find((s) => s.name === model);
  if (!size) return benchProfileShape(model);
  const corpus = await loadLabCorpus(Deno.env.get("LAB_DATA_DIR") ?? "./data");
  const cfg = pretrainConfig(size, corpus.tokenizer.vocabSize);
  return { cfg, batchSize: size.batchSize, seqLen: size.contextLength };
}

async function profile(args: string[], at: number): Promise<void> {
  const next = args[at + 1];
  const model = next && !next.startsWith("--") ? next : "128/4";
  const shape = await profileShape(model).catch(fail);
  const gpu = await getGpu();
  if (!args.includes("--no-autotune")) await autotuneMatmul(gpu);
  const timer = new Timer(gpu);
  const rows = await profileStep(gpu, timer, shape).catch(fail);
  const ceilingGflops = (await measureCeiling(gpu, timer)).gflops!;
  const report: ProfileReport = { model, device: gpu.adapterName, kernels: rows, ceilingGflops };
  if (args.includes("--json")) console.log(JSON.stringify(report));
  else printProfile(model, shape, report);
}

const BENCH_FLAGS = {
  json: { type: "boolean" },
  quick: { type: "boolean" },
  "kernels-only": { type: "boolean" },
  "training-only": { type: "boolean" },
  peers: { type: "boolean" },
  "no-autotune": { type: "boolean" },
  gpt2: { type: "boolean" },
  profile: { type: "boolean" },
  sweep: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** Refuses unknown flags before any GPU work; `--help` prints this file's header. */
async function checkFlags(args: string[]): Promise<void> {
  try {
    const { values, positionals } = parseFlags(args, BENCH_FLAGS, true);
    // The one argument bench takes is the model after --profile (W/L).
    const profileAt = args.indexOf("--profile");
    const stray = positionals.find((p) => profileAt < 0 || p !== args[profileAt + 1]);
    if (stray !== undefined) throw new UsageError(`unexpected argument "${stray}"`, flagList(BENCH_FLAGS));
    if (values.help) {
      const text = await Deno.readTextFile(new URL(import.meta.url));
      console.log(text.match(/^\/\*\*([\s\S]*?)\*\//)![1].replace(/^ \* ?/gm, "").trim());
      Deno.exit(0);
    }
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`bench: ${err.message}`);
    Deno.exit(2);
  }
}

if (import.meta.main) {
  const args = Deno.args;
  await checkFlags(args);
  const profileAt = args.indexOf("--profile");
  if (profileAt >= 0) {
    await profile(args, profileAt);
    Deno.exit(0);
  }
  if (args.includes("--sweep")) {
    const json = args.includes("--json");
    const report = await benchSweep(Deno.env.get("LAB_DATA_DIR") ?? "./data", json ? () => {} : console.log)
      .catch(fail);
    if (json) console.log(JSON.stringify(report));
    else {
      console.log(
        `two lanes ${report.speedup.toFixed(2)}× one; the same readings: ${
          report.sameReadings ? "yes" : "NO"
        }`,
      );
    }
    Deno.exit(report.sameReadings ? 0 : 1);
  }
  const report = await runBench({
    quick: args.includes("--quick"),
    kernels: !args.includes("--training-only"),
    training: !args.includes("--kernels-only"),
    evaluation: args.includes("--kernels-only") ? undefined : DEMO_SWEEP.sizes.map(ladderSize),
    peers: args.includes("--peers"),
    autotune: !args.includes("--no-autotune"),
    gpt2: args.includes("--gpt2"),
  }).catch(fail);
  if (args.includes("--json")) console.log(JSON.stringify(report));
  else {
    printTable(report);
    if (report.evaluation?.length) printEvaluation(report.evaluation);
    if (report.memory) printMemory(report.memory);
    if (report.peers) printPeers(report.peers);
  }
}
