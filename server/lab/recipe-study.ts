/**
 * The finetuning-recipe study: the same sweep under several recipes, every reading on the VALIDATION
 * split (the test split is never loaded), so the lab's default recipe is chosen without looking at test.
 * Ground truth on validation is used for the weak and ceiling models' readings and for each recipe's
 * PGR, as the paper did for its hyperparameters; the student never sees it. Each recipe names every knob
 * it sets, so a row of the table is reproducible with `lab sweep --evaluate-on validation` and its flags.
 */

import type { FinetuneRecipe } from "../contract/results.ts";
import type { CellSummary, MedianSummary } from "../contract/results.ts";
import { runSweep, type SweepDeps, type SweepOptions } from "./sweep.ts";

export interface StudyRecipe extends FinetuneRecipe {
  name: string;
  /** One learning rate for every size (absent: each size's default). */
  lr?: number;
  epochs?: number;
  mode?: "finetune" | "probe";
}

export const STUDY_RECIPES: readonly StudyRecipe[] = [
  { name: "full finetune, lr 1e-3", lr: 1e-3, embeddings: "train", headInit: "zero" },
  { name: "frozen embeddings, lr 1e-3", lr: 1e-3, embeddings: "frozen", headInit: "zero" },
  { name: "LP-FT, frozen embeddings, lr 1e-3", lr: 1e-3, embeddings: "frozen", headInit: "probe" },
  { name: "LP-FT, frozen embeddings, lr 1e-4", lr: 1e-4, embeddings: "frozen", headInit: "probe" },
  { name: "LP-FT, frozen embeddings, lr 3e-5", lr: 3e-5, embeddings: "frozen", headInit: "probe" },
  {
    name: "LP-FT, frozen embeddings, lr 1e-4, 8 epochs",
    lr: 1e-4,
    epochs: 8,
    embeddings: "frozen",
    headInit: "probe",
  },
  {
    name: "LP-FT, frozen embeddings, decay to pretrained, lr 1e-3",
    lr: 1e-3,
    embeddings: "frozen",
    headInit: "probe",
    decayTo: "pretrained",
  },
  { name: "frozen trunk, logistic probe (reference)", mode: "probe" },
];

export interface RecipeRow {
  recipe: StudyRecipe;
  /** Naive students, all tasks: the median PGR over cells whose gap is real. */
  median: MedianSummary | null;
  cells: CellSummary[];
  seconds: number;
}

/** The sweep a recipe runs: the base sweep's tasks, sizes and seeds, naive students, on validation. */
export function studySweep(
  base: Pick<SweepOptions, "tasks" | "sizes" | "seeds">,
  r: StudyRecipe,
): SweepOptions {
  return {
    ...base,
    methods: ["naive"],
    evaluateOn: "validation",
    mode: r.mode,
    lr: r.lr,
    epochs: r.epochs,
    ...(r.mode === "probe" ? {} : { embeddings: r.embeddings, headInit: r.headInit, decayTo: r.decayTo }),
  };
}

export async function runRecipeStudy(
  base: Pick<SweepOptions, "tasks" | "sizes" | "seeds">,
  deps: SweepDeps,
  recipes: readonly StudyRecipe[] = STUDY_RECIPES,
  onRow?: (row: RecipeRow, index: number) => void,
): Promise<RecipeRow[]> {
  const rows: RecipeRow[] = [];
  for (const [i, recipe] of recipes.entries()) {
    const started = performance.now();
    const sweep = await runSweep(studySweep(base, recipe), deps);
    const row = {
      recipe,
      median: sweep.medians.find((m) => m.task === null && m.method === "naive") ?? null,
      cells: sweep.cells,
      seconds: (performance.now() - started) / 1000,
    };
    rows.push(row);
    onRow?.(row, i);
  }
  return rows;
}
