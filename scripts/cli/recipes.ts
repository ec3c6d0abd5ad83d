/**
 * `deno task lab recipes [--tasks world] [--sizes nano,micro,mini,small] [--seeds 0,1] [--only N,M]
 * [--concurrency N] [--json]`: the finetuning-recipe study (server/lab/recipe-study.ts). Every recipe runs
 * the same sweep of naive students with every reading on the VALIDATION split (the test split is never
 * loaded) and the table gives, per recipe, the median PGR over the cells whose gap is real with its
 * interval, then the mean weak, ceiling and student accuracy per pair. This is how the default recipe
 * (server/lab/ladder.ts) was chosen; `--only 3,4` runs some recipes by their number in the table;
 * `--concurrency N` as `lab sweep`.
 */
import { commaList, parseFlags, UsageError } from "../../server/contract/command-flags.ts";
import { ProgressBar } from "../progress.ts";
import { DEMO_SWEEP } from "../../server/lab/demo.ts";
import { type RecipeRow, runRecipeStudy, STUDY_RECIPES } from "../../server/lab/recipe-study.ts";
import { concurrencyOption, labDeps } from "./sweep.ts";
import { numberOption, seedsOption } from "./w2s.ts";

const num = (
  x: number | undefined | null,
) => (x === undefined || x === null || !Number.isFinite(x) ? "-" : x.toFixed(2));
const pct = (x: number) => (100 * x).toFixed(1);

export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, {
    tasks: { type: "string", default: DEMO_SWEEP.tasks.join(",") },
    sizes: { type: "string", default: DEMO_SWEEP.sizes.join(",") },
    seeds: { type: "string", default: DEMO_SWEEP.seeds.join(",") },
    only: { type: "string" },
    concurrency: { type: "string" },
    json: { type: "boolean", default: false },
  });
  const only = values.only ? commaList(values.only).map((s) => numberOption("only", s, true)!) : undefined;
  for (const n of only ?? []) {
    if (n < 1 || n > STUDY_RECIPES.length) {
      throw new UsageError(`--only: recipes are numbered 1 to ${STUDY_RECIPES.length}`);
    }
  }
  const recipes = only ? only.map((n) => STUDY_RECIPES[n - 1]) : STUDY_RECIPES;
  const dataDir = Deno.env.get("LAB_DATA_DIR") ?? "./data";
  const bar = new ProgressBar({ label: "recipes", total: 1, unit: "experiments" });
  const rows = await runRecipeStudy(
    {
      tasks: commaList(values.tasks),
      sizes: commaList(values.sizes),
      seeds: seedsOption("seeds", values.seeds),
    },
    await labDeps(dataDir, {
      onProgress: (p) => {
        bar.opts.total = p.total;
        bar.update(p.step, p.stage);
      },
      concurrency: concurrencyOption(values.concurrency),
    }),
    recipes,
    (row) => !values.json && console.error(`done: ${row.recipe.name} in ${row.seconds.toFixed(0)} s`),
  );
  bar.finish();
  if (values.json) {
    console.log(JSON.stringify(rows));
    return;
  }
  console.log(formatStudy(rows));
}

/** Cells pooled over tasks, per pair: mean accuracies and the median PGR of the real-gap cells. */
function byPair(row: RecipeRow): string {
  const pairs = [...new Set(row.cells.map((c) => `${c.weak}→${c.strong}`))];
  return pairs.map((pair) => {
    const cells = row.cells.filter((c) => `${c.weak}→${c.strong}` === pair);
    const mean = (f: (c: typeof cells[number]) => number) =>
      cells.reduce((s, c) => s + f(c), 0) / cells.length;
    const real = cells.filter((c) => !c.gap_too_small).map((c) => c.pgr).sort((a, b) => a - b);
    const median = real.length ? real[Math.floor((real.length - 1) / 2)] : NaN;
    return `${pair} ${pct(mean((c) => c.weak_acc.mean))}/${pct(mean((c) => c.ceiling_acc.mean))}/` +
      `${pct(mean((c) => c.student_acc.mean))} PGR ${num(median)} (${real.length})`;
  }).join("; ");
}

export function formatStudy(rows: RecipeRow[]): string {
  const lines = [
    "readings on the VALIDATION split; naive students; median PGR over cells whose gap is real",
    "",
  ];
  lines.push(
    "| recipe | median PGR [95 % CI] | cells (gap too small) | per pair: weak/ceiling/student %, median PGR (cells) |",
  );
  lines.push("|---|---|---|---|");
  for (const row of rows) {
    const m = row.median;
    lines.push(
      `| ${row.recipe.name} | ${
        m ? `${num(m.median_pgr)} [${num(m.median_ci.lo)}, ${num(m.median_ci.hi)}]` : "-"
      } | ` +
        `${m?.cells ?? 0} (${m?.skipped ?? 0}) | ${byPair(row)} |`,
    );
  }
  return lines.join("\n");
}
