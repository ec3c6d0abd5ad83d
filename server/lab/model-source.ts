/**
 * Where an experiment's pretrained models come from: the ladder's checkpoints on disk with the lab
 * corpus's tokenizer, or any other source with the same shape (tiny random models in tests); and the
 * check that an experiment's leakage setting matches what the ladder's corpus held (`leakageError`).
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { loadCheckpoint } from "../../kernels/checkpoint.ts";
import type { GptConfig } from "../../kernels/config.ts";
import type { Tokenizer } from "../corpus/tokenizer.ts";
import type { World } from "../corpus/world.ts";
import type { PretrainCorpus } from "../contract/models.ts";
import { BUILTIN_TASKS } from "../tasks/registry.ts";
import { LADDER } from "./ladder.ts";
import { type LabCorpus, labWorld, loadLabCorpus } from "./lab-corpus.ts";
import { modelDir, readStatus } from "./model-store.ts";

export interface LoadedModel {
  size: string;
  config: GptConfig;
  params: Float32Array;
  tokenizer: Tokenizer;
  /** Content hash of the checkpoint (part of every cache key). */
  hash: string;
}

/** Where pretrained models come from: the ladder on disk, or tiny models in tests. */
export interface ModelSource {
  /** Size names, smallest first (bootstrap walks through them). */
  sizes: readonly string[];
  load(size: string): Promise<LoadedModel>;
  /** The knowledge world these models were pretrained on (world tasks are built from it). */
  world?: () => Promise<World>;
  /** What the size's pretraining corpus held of the tasks' test items; null when not recorded. */
  corpus?: (size: string) => Promise<LadderCorpus | null>;
}

/** A pretrained size's corpus as far as leakage goes: its hash and its status's `corpus`. */
export interface LadderCorpus extends PretrainCorpus {
  size: string;
  hash: string;
}

/** The pretrained ladder under `<dataDir>/models/<size>/` with the lab corpus's tokenizer. */
export function ladderModelSource(dataDir: string): ModelSource {
  const loaded = new Map<string, Promise<LoadedModel>>();
  let defaultCorpus: Promise<LabCorpus> | undefined;
  // Built on first use: tests with their own models never build a corpus.
  const labCorpus = () => defaultCorpus ??= loadLabCorpus(dataDir);
  const labTokenizer = () => labCorpus().then((c) => c.tokenizer);
  return {
    sizes: LADDER.map((s) => s.name),
    async world() {
      return (await labWorld(dataDir)).world;
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

/** One size's checkpoint, checked against the lab corpus's tokenizer and hashed by content. */
async function loadLadderModel(
  dataDir: string,
  size: string,
  labTokenizer: () => Promise<Tokenizer>,
): Promise<LoadedModel> {
  const dir = modelDir(dataDir, size);
  let checkpoint;
  try {
    checkpoint = await loadCheckpoint(dir);
  } catch (err) {
    throw new Error(
      `size "${size}" has no pretrained checkpoint in ${dir} (${(err as Error).message}); ` +
        `run: deno task lab pretrain --size ${size}`,
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
  return { size, config: checkpoint.config, params: checkpoint.params, tokenizer: tok, hash };
}

/**
 * The size's corpus from its status. A status written before leakage was recorded is read as the
 * default world-only corpus when its hash says so; otherwise it is unknown (null).
 */
async function ladderCorpus(
  dataDir: string,
  size: string,
  labCorpus: () => Promise<LabCorpus>,
): Promise<LadderCorpus | null> {
  const status = await readStatus(dataDir, size);
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
  const kind = BUILTIN_TASKS.find((t) => t.name === task)?.kind ?? "imported";
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
