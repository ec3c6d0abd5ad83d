/**
 * The ladder's pretraining status on disk: for each size, whether the model store (model-store.ts) holds
 * a finished model, a partial run (resumable) or nothing, with its validation loss, knowledge, whether
 * its corpus held the tasks' test items (leakage) and the snapshots kept along its pretraining; or that
 * its files are broken (a damaged status.json, a truncated or overwritten checkpoint) and why.
 */

import { parameterCount } from "../../kernels/config.ts";
import { LADDER, type LadderSize } from "./ladder.ts";
import { DEFAULT_LAB_CORPUS } from "./lab-corpus.ts";
import { pullLadder } from "./artifact-store.ts";
import { listSnapshots, modelDir, readStatus } from "./model-store.ts";
import type { KnowledgeReport } from "./knowledge.ts";
import { shareInterval } from "../contract/intervals.ts";
import { checkCheckpoint } from "../../kernels/checkpoint.ts";
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

/** The size's snapshots on disk as the listing shows them, each recall with its interval. */
export async function snapshotEntries(dataDir: string, size: string): Promise<SnapshotEntry[]> {
  return (await listSnapshots(dataDir, size)).map((s) => {
    const report = s.report as KnowledgeReport | null;
    const n = report?.attributes.find((a) => a.attribute === s.knowledgeAttribute)?.n ?? null;
    return {
      ref: snapshotRef(size, s.pct),
      pct: s.pct,
      step: s.step,
      tokens: s.tokens,
      recall: s.recall,
      n,
      ci: recallInterval(s.recall, n),
    };
  });
}

/** A recall's 95 % Wilson interval over the n entities asked; null without either. */
const recallInterval = (recall: number | null, n: number | null) =>
  recall !== null && n !== null && n > 0 ? shareInterval(recall, n) : null;

/**
 * A size with no usable model: never pretrained ("missing"), or its files cannot be used ("broken", with
 * the reason, so one damaged size never hides the rest).
 */
function unusableEntry(dataDir: string, size: LadderSize, brokenReason?: string): LadderEntry {
  return {
    name: size.name,
    params: parameterCount({ ...size, vocabSize: defaultLabVocabSize(dataDir) }),
    tokens: size.tokens,
    status: brokenReason === undefined ? "missing" : "broken",
    ...(brokenReason === undefined ? {} : { brokenReason }),
    val_loss: null,
    snapshots: [],
    cpu: size.cpu,
  };
}

async function sizeStatus(dataDir: string, size: LadderSize): Promise<LadderEntry> {
  const status = await readStatus(dataDir, size.name);
  if (!status) return unusableEntry(dataDir, size);
  if (status.status === "pretrained") {
    const health = await checkCheckpoint(modelDir(dataDir, size.name));
    if (health.state === "broken") return unusableEntry(dataDir, size, health.reason);
  }
  const lastVal = status.curves.val.at(-1);
  const lastKnowledge = status.curves.knowledge.at(-1);
  const knowledge = status.knowledge ?? lastKnowledge?.value ?? null;
  const snapshots = await snapshotEntries(dataDir, size.name);
  // Every evaluation of a size asks the same seeded entities (knowledge.ts), so a snapshot's count is the
  // curve's; a run stopped before its first snapshot has none.
  const asked = snapshots.find((s) => s.n !== null)?.n ?? null;
  return {
    name: size.name,
    params: status.params,
    tokens: status.tokens,
    status: status.status,
    val_loss: status.val_loss ?? lastVal?.value ?? null,
    knowledge,
    knowledgeCi: recallInterval(knowledge, asked),
    wallSeconds: status.wallSeconds,
    step: status.step,
    totalSteps: status.totalSteps,
    corpus: status.corpus ?? null,
    snapshots,
    cpu: size.cpu,
  };
}

/**
 * Every size of the ladder; a size whose status or checkpoint is damaged is "broken" with the reason. Sizes
 * pretrained on other machines are pulled from the shared artifact store first (when there is one).
 */
export async function ladderStatus(dataDir: string): Promise<LadderEntry[]> {
  await pullLadder(dataDir).catch((err) => console.error(`artifact store: ${(err as Error).message}`));
  return await Promise.all(
    LADDER.map((size) =>
      sizeStatus(dataDir, size).catch((err) => unusableEntry(dataDir, size, (err as Error).message))
    ),
  );
}
