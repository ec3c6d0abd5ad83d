/**
 * The ladder's pretraining status on disk: for each size, whether `<dataDir>/models/<size>/` holds a
 * finished model, a partial run (resumable) or nothing, with its validation loss and knowledge.
 */

import { parameterCount } from "../../kernels/config.ts";
import { LADDER } from "./ladder.ts";
import { DEFAULT_LAB_CORPUS, readStatus } from "./pretrain.ts";
import { generateWorld, worldAddedTokens } from "../corpus/world.ts";

export interface LadderEntry {
  name: string;
  params: number;
  /** Pretraining budget in tokens (of the finished or partial run when there is one). */
  tokens: number;
  status: "pretrained" | "partial" | "missing";
  val_loss: number | null;
  /** Recall of the knowledge attribute (region) at the last evaluation. */
  knowledge?: number | null;
  wallSeconds?: number;
  step?: number;
  totalSteps?: number;
  cpu: boolean;
}

/** Vocabulary of the default lab corpus (for parameter counts of sizes that have not run yet). */
export function defaultLabVocabSize(): number {
  const world = generateWorld(DEFAULT_LAB_CORPUS.world);
  return 256 + DEFAULT_LAB_CORPUS.merges + worldAddedTokens(world, DEFAULT_LAB_CORPUS.merges).length;
}

export async function ladderStatus(dataDir: string): Promise<LadderEntry[]> {
  const entries: LadderEntry[] = [];
  let vocabSize: number | undefined;
  for (const size of LADDER) {
    const status = await readStatus(dataDir, size.name);
    if (!status) {
      entries.push({
        name: size.name,
        params: parameterCount({ ...size, vocabSize: vocabSize ??= defaultLabVocabSize() }),
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
      cpu: size.cpu,
    });
  }
  return entries;
}
