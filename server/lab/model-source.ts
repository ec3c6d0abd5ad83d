/**
 * Where an experiment's pretrained models come from: the ladder's checkpoints on disk with the lab
 * corpus's tokenizer, or any other source with the same shape (tiny random models in tests).
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { loadCheckpoint } from "../../kernels/checkpoint.ts";
import type { GptConfig } from "../../kernels/config.ts";
import type { Tokenizer } from "../corpus/tokenizer.ts";
import type { World } from "../corpus/world.ts";
import { LADDER } from "./ladder.ts";
import { labWorld, loadLabCorpus } from "./lab-corpus.ts";
import { modelDir } from "./model-store.ts";

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
}

/** The pretrained ladder under `<dataDir>/models/<size>/` with the lab corpus's tokenizer. */
export function ladderModelSource(dataDir: string): ModelSource {
  const loaded = new Map<string, Promise<LoadedModel>>();
  let tokenizer: Promise<Tokenizer> | undefined;
  // Built on first load: tests with their own models never build a corpus.
  const labTokenizer = () => tokenizer ??= loadLabCorpus(dataDir).then((c) => c.tokenizer);
  return {
    sizes: LADDER.map((s) => s.name),
    async world() {
      return (await labWorld(dataDir)).world;
    },
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
