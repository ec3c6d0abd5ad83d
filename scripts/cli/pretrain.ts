/**
 * `deno task lab pretrain --size NAME[,NAME…] [--concurrency N] [--force] [--seed S] [--json] [--tokens N]
 * [--real-share R] [--file PATH]... [--split-seeds 0,1,2] [--leakage]`: pretrains ladder sizes on the lab
 * corpus (cached; resumable; Ctrl-C saves a checkpoint of each). Several sizes train two at a time
 * (--concurrency), each in a worker (server/lab/pretrain-pool.ts), largest budget first: on this 2-core
 * machine the default ladder took 730 s against 868 s one after the other, to the same bits (README).
 * --real-share mixes the real corpus (WordNet, SOTU, Moby-Dick and --file texts) into that share of the
 * training windows; it leaves out the built-in text tasks' test items of the split seeds (default 0,1,2),
 * or lets them in with --leakage (the ablation). One progress bar with tokens/s and ETA on stderr; with
 * --json the last stdout line is the size's status object (curves left out), or their array for several.
 */
import {
  commaList,
  flagList,
  flagRuleError,
  parseFlags,
  UsageError,
} from "../../server/contract/command-flags.ts";
import { PretrainCreate } from "../../server/contract/jobs.ts";
import { numberOption } from "./w2s.ts";
import { ProgressBar } from "../progress.ts";
import { parseSplitSeeds } from "./corpus.ts";
import { describeExcluded, leakageLabel, type PretrainCorpus } from "../../server/contract/models.ts";
import { type LadderSize, ladderSize } from "../../server/lab/ladder.ts";
import {
  PretrainInterrupted,
  type PretrainProgress,
  type PretrainResult,
  pretrainSize,
  type PretrainStart,
} from "../../server/lab/pretrain.ts";
import { PRETRAIN_CONCURRENCY, pretrainInWorker, pretrainSizes } from "../../server/lab/pretrain-pool.ts";
import { sizesNotPretrained } from "../../server/lab/model-store.ts";
import { sum } from "../../server/lab/metrics.ts";

const FLAGS = {
  size: { type: "string" },
  concurrency: { type: "string" },
  force: { type: "boolean", default: false },
  seed: { type: "string" },
  json: { type: "boolean", default: false },
  tokens: { type: "string" },
  "real-share": { type: "string" },
  file: { type: "string", multiple: true },
  "split-seeds": { type: "string" },
  leakage: { type: "boolean", default: false },
} as const;

/** --seed and --tokens by the API's rules (contract PretrainCreate): a budget of -5 tokens is no one-step run. */
function checkedFlag(name: "seed" | "tokens", text: string | undefined): number | undefined {
  const value = numberOption(name, text);
  if (value === undefined) return undefined;
  const checked = PretrainCreate.shape[name].safeParse(value);
  if (checked.success) return value;
  throw flagRuleError(name, name, checked.error.issues[0].message, text!);
}

/** The corpus line of the summary: its mix and what it kept out of the tasks' test items. */
function corpusLine(corpus: PretrainCorpus | undefined): string {
  if (!corpus || corpus.realShare === 0) return `corpus: ${leakageLabel(corpus)}`;
  const kept = corpus.leakage ? "test items let in" : `excluded ${describeExcluded(corpus.excluded)}`;
  return `corpus: real share ${corpus.realShare}, ${leakageLabel(corpus)}; ${kept}`;
}

/** One line per size when it starts: its parameters, steps, tokens and training corpus. */
function startLine(name: string, info: PretrainStart): string {
  const resumed = info.resumedFromStep > 0 ? `, resumed at step ${info.resumedFromStep}` : "";
  const n = (x: number) => x.toLocaleString("en");
  return `pretrain ${name}: ${n(info.params)} parameters, ${n(info.totalSteps)} steps × ` +
    `${info.tokensPerStep} tokens (${n(info.totalSteps * info.tokensPerStep)}) drawn from a ` +
    `${n(info.trainTokens)}-token training corpus${resumed}`;
}

/** The latest figures of one size's progress, e.g. "loss 3.214 val 3.402 region 41%". */
function figures(p: PretrainProgress, before: string): string {
  const parts = [];
  if (p.trainLoss !== undefined) parts.push(`loss ${p.trainLoss.toFixed(3)}`);
  if (p.valLoss !== undefined) parts.push(`val ${p.valLoss.toFixed(3)}`);
  if (p.knowledge !== undefined) parts.push(`region ${(100 * p.knowledge).toFixed(0)}%`);
  return parts.length ? parts.join(" ") : before;
}

/**
 * One bar over every size still to train: tokens trained in this session over their budgets, less what
 * each size had done before it resumed (known when it starts), so rate and ETA are this session's.
 */
export class SizesProgress {
  readonly bar: ProgressBar;
  private readonly budget = new Map<string, number>();
  private readonly start = new Map<string, number>();
  private readonly done = new Map<string, number>();
  private readonly notes = new Map<string, string>();

  constructor(toTrain: { name: string; tokens: number }[]) {
    for (const { name, tokens } of toTrain) this.budget.set(name, tokens);
    const label = `pretrain ${toTrain.map((s) => s.name).join(", ")}`;
    this.bar = new ProgressBar({ label, total: this.total(), unit: "tok" });
  }

  private total = () => sum(this.budget.values()) - sum(this.start.values());

  started(name: string, info: PretrainStart) {
    this.budget.set(name, info.totalSteps * info.tokensPerStep);
    this.start.set(name, info.resumedFromStep * info.tokensPerStep);
    this.bar.setTotal(this.total());
  }

  progress(name: string, p: PretrainProgress) {
    this.done.set(name, p.tokens - (this.start.get(name) ?? 0));
    this.notes.set(name, figures(p, this.notes.get(name) ?? ""));
    // With several sizes the note names those still training.
    if (this.budget.size > 1 && p.step >= p.totalSteps) this.notes.delete(name);
    // The end is drawn by finish().
    const done = sum(this.done.values());
    if (done < this.total()) this.bar.update(done, this.note());
  }

  /** One size: its figures; several: each size's training loss. */
  note(): string {
    if (this.budget.size === 1) return [...this.notes.values()][0] ?? "";
    return [...this.notes].map(([name, note]) => `${name} ${note.split(" ").slice(0, 2).join(" ")}`)
      .join(", ");
  }
}

/** What one size's pretraining prints, and with --json returns. */
function summaryOf(result: PretrainResult) {
  const s = result.status;
  return {
    size: s.size,
    status: s.status,
    cached: result.cached,
    params: s.params,
    tokens: s.tokens,
    steps: s.totalSteps,
    val_loss: s.val_loss,
    knowledge: s.knowledge,
    knowledge_attribute: s.knowledgeAttribute,
    wall_seconds: s.wallSeconds,
    tokens_per_second: s.tokensPerSecond,
    checkpoint: result.dir,
    corpus: s.corpusHash,
    tokenizer: s.tokenizerId,
    real_share: s.corpus?.realShare ?? null,
    leakage: s.corpus?.leakage ?? null,
    split_seeds: s.corpus?.splitSeeds ?? null,
    excluded: s.corpus?.excluded ?? null,
  };
}

/** The two lines a pretrained size prints. */
function printResult(result: PretrainResult): void {
  const s = result.status;
  const cached = result.cached ? " (cached; --force retrains)" : "";
  const recall = s.knowledge === null ? "-" : (100 * s.knowledge).toFixed(1) + "%";
  console.log(
    `${s.size}: ${s.status}${cached} — ${s.params.toLocaleString("en")} params, ` +
      `${s.tokens.toLocaleString("en")} tokens, val loss ${s.val_loss?.toFixed(4) ?? "-"}, ` +
      `${s.knowledgeAttribute} recall ${recall}, ${s.wallSeconds.toFixed(0)} s → ${result.dir}`,
  );
  console.log(corpusLine(s.corpus));
}

/** --size as ladder sizes: one or a comma-separated list, each named once. */
function sizesOption(value: string | undefined): LadderSize[] {
  const names = commaList(value);
  if (names.length === 0) {
    throw new UsageError(
      "--size NAME is required, e.g. --size nano or --size nano,micro,mini",
      flagList(FLAGS),
    );
  }
  const twice = names.find((name, i) => names.indexOf(name) !== i);
  if (twice) throw new UsageError(`--size names ${twice} twice; give each size once`);
  return names.map(ladderSize);
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, FLAGS);
  const sizes = sizesOption(values.size);
  const concurrency = numberOption("concurrency", values.concurrency, true) ?? PRETRAIN_CONCURRENCY;
  if (concurrency < 1) throw new UsageError(`--concurrency must be ≥ 1, got ${values.concurrency}`);
  const dataDir = Deno.env.get("LAB_DATA_DIR") ?? "./data";
  const files = values.file ?? [];
  // User files are mixed in as a quarter of the windows unless --real-share says otherwise.
  const realShare = numberOption("real-share", values["real-share"]) ?? (files.length > 0 ? 0.25 : undefined);
  const splitSeeds = values["split-seeds"] === undefined ? undefined : parseSplitSeeds(values["split-seeds"]);
  const seed = checkedFlag("seed", values.seed);
  const tokens = checkedFlag("tokens", values.tokens);
  const missing = await sizesNotPretrained(dataDir, sizes.map((s) => s.name));
  const toTrain = values.force ? sizes : sizes.filter((s) => missing.includes(s.name));

  const controller = new AbortController();
  const onSignal = () => controller.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const progress = toTrain.length > 0
    ? new SizesProgress(toTrain.map((s) => ({ name: s.name, tokens: tokens ?? s.tokens })))
    : undefined;
  try {
    // Several sizes train PRETRAIN_CONCURRENCY at a time, each in a worker; one trains in this process.
    const atOnce = sizes.length > 1 && concurrency > 1;
    const results = await pretrainSizes(
      sizes.map((size) => ({
        size: size.name,
        dataDir,
        seed,
        tokens,
        force: values.force,
        corpus: { realShare, realFiles: files, splitSeeds, leakage: values.leakage },
        signal: controller.signal,
        onStart: (info: PretrainStart) => {
          console.error(startLine(size.name, info));
          progress?.started(size.name, info);
        },
        onProgress: (p: PretrainProgress) => progress?.progress(size.name, p),
      })),
      { concurrency, run: atOnce ? pretrainInWorker : pretrainSize },
    );
    progress?.bar.finish(progress.note());
    if (values.json) {
      const summaries = results.map(summaryOf);
      console.log(JSON.stringify(summaries.length === 1 ? summaries[0] : summaries));
      return;
    }
    results.forEach(printResult);
  } catch (err) {
    if (err instanceof PretrainInterrupted) progress?.bar.stop("interrupted");
    throw err;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}
