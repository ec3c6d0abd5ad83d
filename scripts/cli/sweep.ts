/**
 * `deno task lab sweep --tasks a,b --sizes s1,s2,s3 --methods naive,auxconf --seeds 0,1,2 [--json|--csv]`:
 * `--tasks world` (the default) is every classification task of the lab's world: the headline is the median
 * over them; `--tasks world-pairwise` is every preference task (reward modeling: a scalar reward head on
 * two texts, Bradley–Terry loss; accuracy = test pairs ranked correctly).
 * every pair weak < strong × method × seed for each task, a progress bar with ETA on stderr, and a summary
 * table of final-checkpoint readings (mean accuracies, PGR with its interval across seeds, "gap too small"
 * flags) with the median PGR per task × method and per method (server/lab/sweep.ts, summarizeResults).
 * --json: the last line is one JSON object; --csv: one row per experiment.
 * Also: --mode finetune|probe --epochs N --lr X --batch-size N --alpha-max X --probes --max-examples N
 * --control (a random-init strong model per strong size: what pretraining contributes), and the
 * finetuning recipe as in `lab w2s`: --embeddings train|frozen --head-init zero|probe
 * --decay-to zero|pretrained. --ladder a,b,…: imported models (`lab models add`) sharing one tokenizer
 * instead of the lab's ladder (--sizes defaults to all of them; world tasks need the lab's ladder).
 * --concurrency N: groups of experiments (one task and seed each, so no role is trained twice) run N at a
 * time, each lane in a worker of its own (default 2; 1: one after another in this process); the same
 * results either way.
 */
import { commaList, parseFlags, UsageError } from "../../server/contract/command-flags.ts";
import { join } from "node:path";
import { ProgressBar } from "../progress.ts";
import { ExperimentCache } from "../../server/lab/cache.ts";
import { METHOD_NAMES, type MethodName } from "../../server/contract/methods.ts";
import { runSweep, sweepCsv, type SweepDeps, type SweepResult } from "../../server/lab/sweep.ts";
import { modelSourceFor } from "../../server/lab/own-models.ts";
import { importedTaskLookup } from "../../server/jobs/experiment-jobs.ts";
import { SWEEP_CONCURRENCY, workerLanes } from "../../server/lab/sweep-pool.ts";
import {
  checkFlags,
  evaluateOnOption,
  knobOptions,
  ladderOption,
  numberOption,
  RECIPE_PARSE_OPTIONS,
  recipeOptions,
  seedsOption,
} from "./w2s.ts";

const pct = (x: number) => (Number.isFinite(x) ? (100 * x).toFixed(1) : "-");
const num = (x: number | null) => (x === null || !Number.isFinite(x) ? "-" : x.toFixed(2));

/**
 * What a sweep run from the command line reads and writes: the ladder (or the imported `ladder`), the role
 * cache, imported tasks; `concurrency` groups of experiments at a time, each lane in a worker (sweep-pool.ts).
 */
export async function labDeps(
  dataDir: string,
  opts: { onProgress?: SweepDeps["onProgress"]; ladder?: string[]; concurrency?: number } = {},
): Promise<SweepDeps> {
  const cacheDir = join(dataDir, "cache");
  const concurrency = opts.concurrency ?? SWEEP_CONCURRENCY;
  return {
    models: await modelSourceFor(dataDir, opts.ladder),
    cache: new ExperimentCache(cacheDir),
    importedTasks: importedTaskLookup(dataDir),
    onProgress: opts.onProgress,
    lanes: concurrency > 1
      ? workerLanes({ dataDir, ladder: opts.ladder, cacheDir }, { concurrency })
      : undefined,
  };
}

/** --concurrency N: groups of experiments at once (default SWEEP_CONCURRENCY), a usage error unless N ≥ 1. */
export function concurrencyOption(value: string | undefined): number {
  const n = numberOption("concurrency", value, true) ?? SWEEP_CONCURRENCY;
  if (n < 1) throw new UsageError(`--concurrency must be ≥ 1, got ${value}`);
  return n;
}

/** Agreement where the supervisor is wrong, with the cell's interval (t over seeds, or Wilson over one seed's). */
function agreeWrong(c: SweepResult["cells"][number]): string {
  const ci = c.agreement_ci.supervisor_wrong;
  return `${num(c.agreement.supervisor_wrong)}${ci ? ` [${num(ci.lo)}, ${num(ci.hi)}]` : ""}`;
}

export function formatSweep(result: SweepResult): string {
  const w = Math.max(15, ...result.cells.map((c) => c.task.length));
  const lines = [
    `${"task".padEnd(w)} weak→strong      method      weak  ceiling  student   PGR [95% CI]              ` +
    "agree(wrong) [95% CI]  oracle PGR",
  ];
  for (const c of result.cells) {
    lines.push(
      `${c.task.padEnd(w)} ${`${c.weak}→${c.strong}`.padEnd(16)} ${c.method.padEnd(10)} ${
        pct(c.weak_acc.mean).padStart(5)
      }  ${pct(c.ceiling_acc.mean).padStart(7)}  ${pct(c.student_acc.mean).padStart(7)}   ${
        (c.gap_too_small ? "gap too small" : `${num(c.pgr)} [${num(c.pgr_ci.lo)}, ${num(c.pgr_ci.hi)}]`)
          .padEnd(24)
      } ${agreeWrong(c).padEnd(21)}  ${num(c.gap_too_small ? null : c.oracle_pgr).padStart(10)}${
        c.control_acc ? `  random-init ${pct(c.control_acc.mean)}` : ""
      }`,
    );
  }
  lines.push("");
  for (const m of result.medians) {
    lines.push(
      `median PGR ${(m.task ?? "all tasks").padEnd(w)} ${m.method.padEnd(10)} ${num(m.median_pgr)} [${
        num(m.median_ci.lo)
      }, ${num(m.median_ci.hi)}] over ${m.cells} cell${m.cells === 1 ? "" : "s"}` +
        (m.skipped ? ` (${m.skipped} left out: gap too small)` : ""),
    );
  }
  lines.push(
    "(a cell's PGR interval: t over its seeds, or one seed's paired bootstrap over test examples; a median's:",
    " each cell's PGR drawn from its own interval, the median of each draw; agree(wrong): the student's",
    " agreement with its supervisor where the supervisor is wrong, t over seeds (cut to [0, 1]) or one",
    " seed's Wilson; the oracle picks each model's best test point and is an upper bound only, without an",
    " interval, and like the PGR it is left out (-) where the gap is too small)",
  );
  return lines.join("\n");
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, {
    tasks: { type: "string", default: "world" },
    sizes: { type: "string" },
    methods: { type: "string", default: "naive" },
    seeds: { type: "string", default: "0" },
    mode: { type: "string", default: "finetune" },
    json: { type: "boolean", default: false },
    csv: { type: "boolean", default: false },
    epochs: { type: "string" },
    lr: { type: "string" },
    "batch-size": { type: "string" },
    "alpha-max": { type: "string" },
    probes: { type: "boolean", default: false },
    "max-examples": { type: "string" },
    control: { type: "boolean", default: false },
    leakage: { type: "boolean", default: false },
    ladder: { type: "string" },
    concurrency: { type: "string" },
    ...RECIPE_PARSE_OPTIONS,
  });
  const ladder = ladderOption(values.ladder);
  const concurrency = concurrencyOption(values.concurrency);
  const sizes = values.sizes === undefined && ladder ? ladder : commaList(values.sizes);
  if (sizes.length < 2) {
    throw new UsageError("--sizes needs at least two sizes, e.g. --sizes nano,micro,small");
  }
  const methods = commaList(values.methods);
  for (const m of methods) {
    if (!METHOD_NAMES.includes(m as MethodName)) {
      throw new UsageError(`--methods: unknown method "${m}" (${METHOD_NAMES.join(", ")})`);
    }
  }
  const seeds = seedsOption("seeds", values.seeds);
  const knobs = knobOptions(values);
  if (values.json && values.csv) throw new UsageError("--json and --csv both choose the output: give one");
  if (values.mode !== "finetune" && values.mode !== "probe") {
    throw new UsageError(`--mode must be finetune or probe`);
  }
  const recipe = recipeOptions(values);
  checkFlags({
    ...recipe,
    methods,
    studentMode: values.mode,
    alphaMax: knobs.alphaMax,
    probes: values.probes || undefined,
  });
  const dataDir = Deno.env.get("LAB_DATA_DIR") ?? "./data";
  const bar = new ProgressBar({ label: "sweep", total: 1, unit: "experiments" });
  const result = await runSweep(
    {
      tasks: commaList(values.tasks),
      sizes,
      methods: methods as MethodName[],
      seeds,
      mode: values.mode,
      epochs: knobs.epochs,
      lr: knobs.learningRate,
      batchSize: knobs.batchSize,
      alphaMax: knobs.alphaMax,
      probes: values.probes,
      maxExamples: knobs.maxExamples,
      evaluateOn: evaluateOnOption(values["evaluate-on"]),
      control: values.control,
      leakage: values.leakage,
      ...recipe,
    },
    await labDeps(dataDir, {
      onProgress: (p) => {
        bar.opts.total = p.total;
        bar.update(p.step, p.stage);
      },
      ladder,
      concurrency,
    }),
  );
  bar.finish();
  if (values["evaluate-on"] === "validation" && !values.json && !values.csv) {
    console.log("readings on the VALIDATION split (--evaluate-on validation; the test split was not loaded)");
  }
  if (values.csv) console.log(sweepCsv(result));
  else if (!values.json) console.log(formatSweep(result));
  if (values.json) {
    // Per-experiment run curves stay out of the summary line.
    const slim = {
      ...result,
      cells: result.cells.map((c) => ({
        ...c,
        results: c.results.map(({ runs: _, probes: __, ...r }) => r),
      })),
    };
    console.log(JSON.stringify(slim, (_, v) => (Number.isNaN(v) ? null : v)));
  }
}
