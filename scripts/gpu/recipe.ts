/**
 * The GPU recipe of issue 19: GPT-2 (124M) → GPT-2-medium (355M) weak→strong on a real-text task imported
 * from JSONL, timed per training step and end to end. The weights are random (initParameters) in
 * Hugging Face GPT-2 folders of the real shapes, so the figures are the engine's speed, not a science
 * result; a user with real checkpoints on disk runs the same `lab models add` on their folders instead.
 * The sequence, each step the lab's own command run in this process (printed as it runs):
 *   1. two HF folders (config.json, model.safetensors, vocab.json, merges.txt) under DATA/hf
 *   2. lab models add --name W --dir DATA/hf/W;  lab models add --name S --dir DATA/hf/S
 *   3. lab import --name sentiment-recipe --file DATA/sentiment.jsonl   (made here, deterministic)
 *   4. lab w2s --ladder W,S --weak W --strong S --task sentiment-recipe --no-cache --json …
 * and writes recipe.json (per role: steps, seconds, ms per step; per phase and end to end) to --out.
 *
 *   deno run -A scripts/gpu/recipe.ts [--tiny] [--out DIR] [--data-dir DIR] [--examples N]
 *     [--epochs N] [--batch-size N] [--seed S]
 *
 * --tiny: widths 32 and 64 at GPT-2's full vocabulary (runs on llvmpipe in minutes). --out defaults to
 * $OUT, else ./data/gpu-recipe; --data-dir defaults to a fresh temporary folder (removed afterwards), so
 * nothing is cached from an earlier run. On a GPU: scripts/gpu/check.sh runs it after pack.sh.
 */
import { join } from "node:path";
import type { GptConfig } from "../../kernels/config.ts";
import { initParameters } from "../../kernels/config.ts";
import { getGpu } from "../../kernels/device.ts";
import { mulberry32 } from "../../kernels/random.ts";
import { parseFlags } from "../../server/contract/command-flags.ts";
import type { ExperimentResult } from "../../server/contract/results.ts";
import { createTokenizer, GPT2_MERGE_COUNT } from "../../server/corpus/tokenizer.ts";
import { writeHfExport } from "../../server/lab/hf-export.ts";
import { main as importCli } from "../cli/import.ts";
import { main as modelsCli } from "../cli/models.ts";
import { main as w2sCli } from "../cli/w2s.ts";

const GPT2_VOCAB = 50257;

/** The two models of each run: GPT-2 124M and 355M, or the tiny pair (widths 32 and 64). */
export const RECIPE_LADDERS: Record<"full" | "tiny", { name: string; config: GptConfig }[]> = {
  full: [
    {
      name: "rand-gpt2",
      config: { vocabSize: GPT2_VOCAB, contextLength: 1024, width: 768, layers: 12, heads: 12 },
    },
    {
      name: "rand-gpt2-medium",
      config: { vocabSize: GPT2_VOCAB, contextLength: 1024, width: 1024, layers: 24, heads: 16 },
    },
  ],
  tiny: [
    { name: "tiny-32", config: { vocabSize: GPT2_VOCAB, contextLength: 64, width: 32, layers: 2, heads: 2 } },
    { name: "tiny-64", config: { vocabSize: GPT2_VOCAB, contextLength: 64, width: 64, layers: 2, heads: 4 } },
  ],
};

/** Training defaults per run size (flags override): small enough for llvmpipe, or for one GPU call. */
const RECIPE_TRAINING = {
  full: { examples: 2000, epochs: 2, batchSize: 32 },
  tiny: { examples: 480, epochs: 2, batchSize: 16 },
};

export const TASK_NAME = "sentiment-recipe";

const SUBJECTS = [
  "movie",
  "film",
  "plot",
  "acting",
  "soundtrack",
  "ending",
  "script",
  "cast",
  "story",
  "pacing",
];
const OPENERS = ["Honestly,", "I thought", "In my view", "Overall,", "To be fair,", "Sadly or not,"];
const POSITIVE = ["wonderful", "brilliant", "moving", "delightful", "superb", "charming", "gripping"];
const NEGATIVE = ["dull", "awful", "tedious", "clumsy", "boring", "painful", "forgettable"];

/**
 * `count` review sentences as classification JSONL lines ({txt, hard_label}): an opener, a subject and an
 * adjective, sometimes negated ("was not dull"); the label is 1 when the review is favourable, i.e. a
 * positive adjective without negation or a negative one with it.
 */
export function sentimentLines(count: number, seed: number): string[] {
  const random = mulberry32(seed);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)];
  return Array.from({ length: count }, () => {
    const positive = random() < 0.5;
    const negated = random() < 0.3;
    const adjective = pick(positive ? POSITIVE : NEGATIVE);
    const txt = `${pick(OPENERS)} the ${pick(SUBJECTS)} was ${negated ? "not " : ""}${adjective}.`;
    return JSON.stringify({ txt, hard_label: positive !== negated ? 1 : 0 });
  });
}

/** Runs one lab command in this process, printing it as a user would type it; returns its stdout lines. */
async function labCommand(
  main: (args: string[]) => Promise<void>,
  command: string,
  args: string[],
): Promise<string[]> {
  console.error(`$ deno task lab ${command} ${args.join(" ")}`);
  const lines: string[] = [];
  const log = console.log;
  console.log = (...parts: unknown[]) => void lines.push(parts.join(" "));
  try {
    await main(args);
  } finally {
    console.log = log;
  }
  for (const line of lines) if (!line.startsWith("{")) console.error(`  ${line}`);
  return lines;
}

const secondsSince = (start: number) => Number(((performance.now() - start) / 1000).toFixed(2));

async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, {
    tiny: { type: "boolean", default: false },
    out: { type: "string" },
    "data-dir": { type: "string" },
    examples: { type: "string" },
    epochs: { type: "string" },
    "batch-size": { type: "string" },
    seed: { type: "string", default: "1" },
  });
  const size = values.tiny ? "tiny" : "full";
  const positive = (flag: string, value: string | undefined, fallback: number) => {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) {
      throw new Error(`--${flag} must be a positive integer, got "${value}"`);
    }
    return n;
  };
  const training = {
    examples: positive("examples", values.examples, RECIPE_TRAINING[size].examples),
    epochs: positive("epochs", values.epochs, RECIPE_TRAINING[size].epochs),
    batchSize: positive("batch-size", values["batch-size"], RECIPE_TRAINING[size].batchSize),
    seed: positive("seed", values.seed, 1),
  };
  const outDir = values.out ?? Deno.env.get("OUT") ?? "./data/gpu-recipe";
  const dataDir = values["data-dir"] ?? await Deno.makeTempDir({ prefix: "gpu-recipe-" });
  const [weak, strong] = RECIPE_LADDERS[size];
  const gpu = await getGpu();
  const start = performance.now();
  const phases: Record<string, number> = {};
  const previousDataDir = Deno.env.get("LAB_DATA_DIR");
  Deno.env.set("LAB_DATA_DIR", dataDir);
  try {
    let t = performance.now();
    const tokenizer = createTokenizer({ merges: GPT2_MERGE_COUNT });
    for (const [i, model] of [weak, strong].entries()) {
      const params = initParameters(model.config, training.seed + i);
      await writeHfExport(join(dataDir, "hf", model.name), { config: model.config, params, tokenizer });
    }
    phases.build_folders_s = secondsSince(t);

    t = performance.now();
    for (const model of [weak, strong]) {
      await labCommand(modelsCli, "models", [
        "add",
        "--name",
        model.name,
        "--dir",
        join(dataDir, "hf", model.name),
      ]);
    }
    phases.register_s = secondsSince(t);

    t = performance.now();
    const taskFile = join(dataDir, `${TASK_NAME}.jsonl`);
    await Deno.writeTextFile(taskFile, sentimentLines(training.examples, training.seed).join("\n") + "\n");
    await labCommand(importCli, "import", ["--name", TASK_NAME, "--file", taskFile]);
    phases.import_s = secondsSince(t);

    t = performance.now();
    const ladder = `${weak.name},${strong.name}`;
    const lines = await labCommand(w2sCli, "w2s", [
      ...["--ladder", ladder, "--weak", weak.name, "--strong", strong.name, "--task", TASK_NAME],
      ...["--epochs", String(training.epochs), "--batch-size", String(training.batchSize)],
      ...["--seed", String(training.seed), "--no-cache", "--json"],
    ]);
    phases.w2s_s = secondsSince(t);
    const result: ExperimentResult = JSON.parse(lines.at(-1)!);

    const report = {
      adapter: gpu.adapterName,
      software_adapter: gpu.isSoftware,
      size,
      models: [weak, strong],
      task: { name: TASK_NAME, examples: training.examples },
      training,
      // A role's seconds cover its training steps and the evaluations between them.
      runs: result.runs.map((r) => ({
        role: r.role,
        model: r.size,
        steps: r.steps,
        micro_batch: r.microBatch ?? null,
        seconds: Number(r.seconds.toFixed(2)),
        ms_per_step: r.steps > 0 ? Number((1000 * r.seconds / r.steps).toFixed(1)) : null,
      })),
      readings: {
        weak_acc: result.weak_acc,
        ceiling_acc: result.ceiling_acc,
        student_acc: result.student_acc,
      },
      phases,
      end_to_end_s: secondsSince(start),
    };
    await Deno.mkdir(outDir, { recursive: true });
    await Deno.writeTextFile(join(outDir, "recipe.json"), JSON.stringify(report, null, 2) + "\n");
    console.log(JSON.stringify(report));
  } finally {
    if (previousDataDir === undefined) Deno.env.delete("LAB_DATA_DIR");
    else Deno.env.set("LAB_DATA_DIR", previousDataDir);
    if (values["data-dir"] === undefined) await Deno.remove(dataDir, { recursive: true });
  }
}

if (import.meta.main) await main(Deno.args);
