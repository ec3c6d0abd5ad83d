/**
 * `deno task lab pretrain --size NAME [--force] [--seed S] [--json] [--tokens N] [--real-share R]
 * [--file PATH]... [--split-seeds 0,1,2] [--leakage]`: pretrains one ladder size on the lab corpus
 * (cached; resumable; Ctrl-C saves a checkpoint). --real-share mixes the real corpus (WordNet, SOTU,
 * Moby-Dick and --file texts) into that share of the training windows; it leaves out the built-in text
 * tasks' test items of the split seeds (default 0,1,2), or lets them in with --leakage (the ablation).
 * Progress with tokens/s and ETA on stderr; with --json the last stdout line is the size's status
 * object (curves left out).
 */
import { flagList, flagRuleError, parseFlags, UsageError } from "../../server/contract/command-flags.ts";
import { PretrainCreate } from "../../server/contract/jobs.ts";
import { numberOption } from "./w2s.ts";
import { ProgressBar } from "../progress.ts";
import { parseSplitSeeds } from "./corpus.ts";
import { describeExcluded, leakageLabel, type PretrainCorpus } from "../../server/contract/models.ts";
import { ladderSize } from "../../server/lab/ladder.ts";
import { PretrainInterrupted, pretrainSize } from "../../server/lab/pretrain.ts";

const FLAGS = {
  size: { type: "string" },
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

export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, FLAGS);
  if (!values.size) throw new UsageError("--size NAME is required, e.g. --size nano", flagList(FLAGS));
  const size = ladderSize(values.size);
  const json = values.json;
  const dataDir = Deno.env.get("LAB_DATA_DIR") ?? "./data";
  const files = values.file ?? [];
  // User files are mixed in as a quarter of the windows unless --real-share says otherwise.
  const realShare = numberOption("real-share", values["real-share"]) ?? (files.length > 0 ? 0.25 : undefined);
  const splitSeeds = values["split-seeds"] === undefined ? undefined : parseSplitSeeds(values["split-seeds"]);

  const controller = new AbortController();
  const onSignal = () => controller.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let bar: ProgressBar | undefined;
  let startTokens = 0;
  let note = "";
  try {
    const result = await pretrainSize({
      size,
      dataDir,
      seed: checkedFlag("seed", values.seed),
      tokens: checkedFlag("tokens", values.tokens),
      force: values.force,
      corpus: { realShare, realFiles: files, splitSeeds, leakage: values.leakage },
      signal: controller.signal,
      onStart: (info) => {
        startTokens = info.resumedFromStep * info.tokensPerStep;
        const resumed = info.resumedFromStep > 0 ? `, resumed at step ${info.resumedFromStep}` : "";
        const n = (x: number) => x.toLocaleString("en");
        console.error(
          `pretrain ${size.name}: ${n(info.params)} parameters, ${n(info.totalSteps)} steps × ` +
            `${info.tokensPerStep} tokens (${n(info.totalSteps * info.tokensPerStep)}) drawn from a ` +
            `${n(info.trainTokens)}-token training corpus${resumed}`,
        );
        bar = new ProgressBar({
          label: `pretrain ${size.name}`,
          total: info.totalSteps * info.tokensPerStep - startTokens,
          unit: "tok",
        });
      },
      onProgress: (p) => {
        const parts = [];
        if (p.trainLoss !== undefined) parts.push(`loss ${p.trainLoss.toFixed(3)}`);
        if (p.valLoss !== undefined) parts.push(`val ${p.valLoss.toFixed(3)}`);
        if (p.knowledge !== undefined) parts.push(`region ${(100 * p.knowledge).toFixed(0)}%`);
        if (parts.length) note = parts.join(" ");
        // The last step is drawn by finish().
        if (p.step < p.totalSteps) bar?.update(p.tokens - startTokens, note);
      },
    });
    bar?.finish(note);
    const s = result.status;
    const summary = {
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
    if (json) {
      console.log(JSON.stringify(summary));
      return;
    }
    const cached = result.cached ? " (cached; --force retrains)" : "";
    console.log(
      `${s.size}: ${s.status}${cached} — ${s.params.toLocaleString("en")} params, ${
        s.tokens.toLocaleString("en")
      } tokens, ` +
        `val loss ${s.val_loss?.toFixed(4) ?? "-"}, ${s.knowledgeAttribute} recall ` +
        `${s.knowledge === null ? "-" : (100 * s.knowledge).toFixed(1) + "%"}, ${
          s.wallSeconds.toFixed(0)
        } s → ${result.dir}`,
    );
    console.log(corpusLine(s.corpus));
  } catch (err) {
    if (err instanceof PretrainInterrupted) bar?.finish("interrupted");
    throw err;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}
