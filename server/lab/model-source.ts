/**
 * Where an experiment's pretrained models come from: the ladder's checkpoints on disk with the lab
 * corpus's tokenizer — a size's final model, or a snapshot along its pretraining named "SIZE@PCT"
 * (model-ref.ts) — or any other source with the same shape (tiny random models in tests); and the
 * check that an experiment's leakage setting matches what the ladder's corpus held (`leakageError`).
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { loadCheckpoint } from "../../kernels/checkpoint.ts";
import type { GptConfig } from "../../kernels/config.ts";
import type { Tokenizer } from "../corpus/tokenizer.ts";
import type { World } from "../corpus/world.ts";
import { FINAL_PCT, missingSnapshotMessage, parseModelRef, refSize } from "../contract/model-ref.ts";
import type { PretrainCorpus } from "../contract/models.ts";
import { BUILTIN_TASKS } from "../tasks/registry.ts";
import { isWorldTask } from "../tasks/load.ts";
import { LADDER } from "./ladder.ts";
import { corpusWorld, type LabCorpus, type LabCorpusOptions, loadLabCorpus } from "./lab-corpus.ts";
import { modelDir, readSnapshot, readStatus, snapshotDir } from "./model-store.ts";

export interface LoadedModel {
  /** The model's reference: a size, or a snapshot of one ("medium@30"). */
  size: string;
  config: GptConfig;
  params: Float32Array;
  tokenizer: Tokenizer;
  /** Content hash of the checkpoint (part of every cache key). */
  hash: string;
  /** Recall of the world's first attribute at this checkpoint (its snapshot's record); null if unrecorded. */
  knowledge?: number | null;
}

/** Where pretrained models come from: the ladder on disk, imported models (own-models.ts), or tiny models in tests. */
export interface ModelSource {
  /** Size names, smallest first (bootstrap walks through them). */
  sizes: readonly string[];
  load(size: string): Promise<LoadedModel>;
  /** The knowledge world these models were pretrained on (world tasks are built from it). */
  world?: () => Promise<World>;
  /** What the size's pretraining corpus held of the tasks' test items; null when not recorded. */
  corpus?: (size: string) => Promise<LadderCorpus | null>;
  /** Why these models cannot run a request (a task or setting only the lab's ladder supports), or null. */
  refusal?: (request: { task: string; leakage: boolean; refs: readonly string[] }) => string | null;
}

/** A pretrained size's corpus as far as leakage goes: its hash and its status's `corpus`. */
export interface LadderCorpus extends PretrainCorpus {
  size: string;
  hash: string;
}

/**
 * The pretrained ladder under `<dataDir>/models/<size>/` with the lab corpus's tokenizer (the default lab
 * corpus unless `corpus` says otherwise). `load` takes a size or a snapshot reference.
 */
export function ladderModelSource(dataDir: string, opts: { corpus?: LabCorpusOptions } = {}): ModelSource {
  const loaded = new Map<string, Promise<LoadedModel>>();
  let defaultCorpus: Promise<LabCorpus> | undefined;
  // Built on first use: tests with their own models never build a corpus.
  const labCorpus = () => defaultCorpus ??= loadLabCorpus(dataDir, opts.corpus);
  const labTokenizer = () => labCorpus().then((c) => c.tokenizer);
  return {
    sizes: LADDER.map((s) => s.name),
    // The corpus this source loaded once: every experiment of a sweep asks for the world.
    async world() {
      return corpusWorld(await labCorpus());
    },
    corpus: (size) => ladderCorpus(dataDir, size, labCorpus),
    load(size) {
      let model = loaded.get(size);
      if (!model) {
        model = loadLadderModel(dataDir, size, labTokenizer);
        model.catch(() => loaded.delete(size));
        loaded.set(size, model);
      }
      return model;
    },
  };
}

/**
 * Why the snapshot `ref` names is not on disk, or null when it is (or `ref` names a final model). The
 * reference's form and size are checked by the ladder rule first.
 */
export async function missingSnapshotError(dataDir: string, ref: string): Promise<string | null> {
  const { size, pct } = parseModelRef(ref);
  if (pct === FINAL_PCT) return null;
  return (await readSnapshot(dataDir, size, pct)) ? null : missingSnapshotMessage(ref);
}

/**
 * One model's checkpoint — a size's final one, or a snapshot ("SIZE@PCT") — checked against the lab
 * corpus's tokenizer and hashed by content, with the knowledge its snapshot record states.
 */
async function loadLadderModel(
  dataDir: string,
  ref: string,
  labTokenizer: () => Promise<Tokenizer>,
): Promise<LoadedModel> {
  const { size, pct } = parseModelRef(ref, LADDER.map((s) => s.name));
  // The final model's record is its 100 % snapshot's (absent for sizes pretrained before snapshots).
  const record = await readSnapshot(dataDir, size, pct);
  if (pct !== FINAL_PCT && !record) throw new Error(missingSnapshotMessage(ref));
  const dir = pct === FINAL_PCT ? modelDir(dataDir, size) : snapshotDir(dataDir, size, pct);
  let checkpoint;
  try {
    checkpoint = await loadCheckpoint(dir);
  } catch (err) {
    throw new Error(
      `size "${size}" has no pretrained checkpoint in ${dir} (${(err as Error).message}); ` +
        `run: deno task lab pretrain --size ${size}, or where a lab server owns the data directory ` +
        `POST /api/models/${size}/pretrain (the dashboard's Models page), then retry`,
    );
  }
  const tok = await labTokenizer();
  if (checkpoint.meta.tokenizer !== undefined && checkpoint.meta.tokenizer !== tok.id) {
    throw new Error(
      `checkpoint ${dir} was trained with tokenizer ${checkpoint.meta.tokenizer}, the lab corpus uses ${tok.id}`,
    );
  }
  const bytes = await Deno.readFile(join(dir, "model.safetensors"));
  const hash = createHash("sha256").update(bytes).digest("hex").slice(0, 24);
  const knowledge = record?.recall ?? null;
  return { size: ref, config: checkpoint.config, params: checkpoint.params, tokenizer: tok, hash, knowledge };
}

/**
 * The size's corpus from its status (a snapshot's is its size's). A status written before leakage was
 * recorded is read as the default world-only corpus when its hash says so; otherwise it is unknown (null).
 */
async function ladderCorpus(
  dataDir: string,
  size: string,
  labCorpus: () => Promise<LabCorpus>,
): Promise<LadderCorpus | null> {
  const status = await readStatus(dataDir, refSize(size));
  if (!status) return null;
  if (status.corpus) return { size, hash: status.corpusHash, ...status.corpus };
  const defaults = await labCorpus();
  return status.corpusHash === defaults.hash ? { size, hash: status.corpusHash, ...defaults.facts } : null;
}

/**
 * Why an experiment cannot run on this ladder as asked, or null when it can. `leakage` is the
 * experiment's request (test items in pretraining or kept out), `seed` its task split seed. World tasks
 * exclude nothing (their test entities must be seen in pretraining) and spam is in no corpus, so either
 * setting fits them; built-in text tasks need the ladder's setting, and with leakage off a split seed the
 * ladder kept out; imported tasks are never excluded, so only leakage off applies to them.
 */
export function leakageError(
  corpus: LadderCorpus | null,
  request: { leakage: boolean; seed: number; task: string; size: string },
): string | null {
  const { leakage, seed, task, size } = request;
  const kind = isWorldTask(task) ? "world" : BUILTIN_TASKS.find((t) => t.name === task)?.kind ?? "imported";
  if (kind === "world" || kind === "control") return null;
  if (kind === "imported") {
    return leakage
      ? `leakage: true applies to built-in text tasks; the lab does not know which pretraining text ` +
        `holds the items of the imported task "${task}", so it can neither keep them out nor let them in`
      : null;
  }
  if (!corpus) {
    return `size ${size}'s status does not record what its pretraining corpus held of the tasks' test ` +
      `items; run deno task lab pretrain --size ${size} with its options to record it (or --force)`;
  }
  if (corpus.realShare === 0) {
    return leakage
      ? `leakage: true is meaningless on size ${size}: it was pretrained on the knowledge world alone, ` +
        `which holds no text task's items; pretrain with --real-share R --leakage for the leakage ablation`
      : null;
  }
  const pretrain = `deno task lab pretrain --size ${size} --real-share ${corpus.realShare}`;
  if (leakage !== corpus.leakage) {
    return corpus.leakage
      ? `size ${size} was pretrained with leakage on (the test items of ${task} are in its corpus); ` +
        `run with leakage: true, or pretrain again with them kept out: ${pretrain} --force`
      : `size ${size} was pretrained with the test items of split seeds ${corpus.splitSeeds.join(", ")} ` +
        `kept out; run with leakage: false, or pretrain again with them in: ${pretrain} --leakage --force`;
  }
  if (!leakage && !corpus.splitSeeds.includes(seed)) {
    const seeds = [...corpus.splitSeeds, seed].sort((a, b) => a - b).join(",");
    return `seed ${seed}'s test items were not kept out of size ${size}'s pretraining (split seeds ` +
      `${corpus.splitSeeds.join(", ")}); pretrain with ${pretrain} --split-seeds ${seeds} --force, ` +
      `or use one of those seeds`;
  }
  return null;
}
