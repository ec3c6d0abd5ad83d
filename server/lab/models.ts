/**
 * The ladder's pretraining status on disk: for each size, whether the model store (model-store.ts) holds
 * a finished model, a partial run (resumable) or nothing, with its validation loss, knowledge and whether
 * its corpus held the tasks' test items (leakage).
 */

import { parameterCount } from "../../kernels/config.ts";
import { LADDER } from "./ladder.ts";
import { DEFAULT_LAB_CORPUS } from "./lab-corpus.ts";
import { readStatus } from "./model-store.ts";
import { generateWorld, worldAddedTokens } from "../corpus/world.ts";
import type { LadderEntry } from "../contract/models.ts";

let defaultVocabSize: number | undefined;

/**
 * Vocabulary of the default lab corpus (for parameter counts of sizes that have not run yet): bytes,
 * merges and one added token per knowledge-world name. Computed once.
 */
export function defaultLabVocabSize(): number {
  if (defaultVocabSize === undefined) {
    const world = generateWorld(DEFAULT_LAB_CORPUS.world);
    defaultVocabSize = 256 + DEFAULT_LAB_CORPUS.merges +
      worldAddedTokens(world, DEFAULT_LAB_CORPUS.merges).length;
  }
  return defaultVocabSize;
}

export async function ladderStatus(dataDir: string): Promise<LadderEntry[]> {
  const entries: LadderEntry[] = [];
  for (const size of LADDER) {
    const status = await readStatus(dataDir, size.name);
    if (!status) {
      entries.push({
        name: size.name,
        params: parameterCount({ ...size, vocabSize: defaultLabVocabSize() }),
        tokens: size.tokens,
        status: "missing",
        val_loss: null,
        cpu: size.cpu,
      });
      continue;
    }
    const lastVal = status.curves.val.at(-1);
    const lastKnowledge = status.curves.knowledge.at(-1);
    entries.push({
      name: size.name,
      params: status.params,
      tokens: status.tokens,
      status: status.status,
      val_loss: status.val_loss ?? lastVal?.value ?? null,
      knowledge: status.knowledge ?? lastKnowledge?.value ?? null,
      wallSeconds: status.wallSeconds,
      step: status.step,
      totalSteps: status.totalSteps,
      corpus: status.corpus ?? null,
      cpu: size.cpu,
    });
  }
  return entries;
}
