/**
 * The ladder's pretraining status on disk: for each size, whether the model store (model-store.ts) holds
 * a finished model, a partial run (resumable) or nothing, with its validation loss, knowledge, whether
 * its corpus held the tasks' test items (leakage) and the snapshots kept along its pretraining.
 */

import { parameterCount } from "../../kernels/config.ts";
import { LADDER } from "./ladder.ts";
import { DEFAULT_LAB_CORPUS } from "./lab-corpus.ts";
import { listSnapshots, readStatus } from "./model-store.ts";
import { snapshotRef } from "../contract/model-ref.ts";
import { activeWorld, worldAddedTokens } from "../corpus/world.ts";
import type { LadderEntry, SnapshotEntry } from "../contract/models.ts";

/**
 * Vocabulary of the default lab corpus on the lab's world (for parameter counts of sizes that have not
 * run yet): bytes, merges and the world's added tokens.
 */
export function defaultLabVocabSize(dataDir: string): number {
  const world = activeWorld(dataDir);
  return 256 + DEFAULT_LAB_CORPUS.merges + worldAddedTokens(world, DEFAULT_LAB_CORPUS.merges).length;
}

/** The size's snapshots on disk as the listing shows them. */
export async function snapshotEntries(dataDir: string, size: string): Promise<SnapshotEntry[]> {
  return (await listSnapshots(dataDir, size)).map((s) => ({
    ref: snapshotRef(size, s.pct),
    pct: s.pct,
    step: s.step,
    tokens: s.tokens,
    recall: s.recall,
  }));
}

export async function ladderStatus(dataDir: string): Promise<LadderEntry[]> {
  const entries: LadderEntry[] = [];
  for (const size of LADDER) {
    const status = await readStatus(dataDir, size.name);
    if (!status) {
      entries.push({
        name: size.name,
        params: parameterCount({ ...size, vocabSize: defaultLabVocabSize(dataDir) }),
        tokens: size.tokens,
        status: "missing",
        val_loss: null,
        snapshots: [],
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
      snapshots: await snapshotEntries(dataDir, size.name),
      cpu: size.cpu,
    });
  }
  return entries;
}
