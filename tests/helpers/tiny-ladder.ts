/**
 * A ladder of tiny randomly initialized GPTs over the byte tokenizer, and the seeded random words the
 * pipeline tests build their JSONL tasks from (classification and comparison files alike).
 */
import { join } from "node:path";
import { type GptConfig, initParameters } from "../../kernels/config.ts";
import { createTokenizer } from "../../server/corpus/tokenizer.ts";
import { hashNumbers } from "../../server/lab/cache.ts";
import type { ModelSource } from "../../server/lab/model-source.ts";
import type { LabCorpusOptions } from "../../server/lab/lab-corpus.ts";
import type { LadderSize } from "../../server/lab/ladder.ts";
import { pretrainSize } from "../../server/lab/pretrain.ts";

export const byteTokenizer = createTokenizer({ merges: 0 });

const CONFIGS: Record<string, GptConfig> = {
  tiny: { vocabSize: byteTokenizer.vocabSize, contextLength: 16, width: 8, layers: 1, heads: 1 },
  small: { vocabSize: byteTokenizer.vocabSize, contextLength: 16, width: 16, layers: 1, heads: 2 },
  big: { vocabSize: byteTokenizer.vocabSize, contextLength: 16, width: 24, layers: 2, heads: 2 },
};

/** tiny < small < big, each loaded fresh (seed 7); `loads` counts the loads. */
export function tinyModels(): ModelSource & { loads: number } {
  const source = {
    loads: 0,
    sizes: ["tiny", "small", "big"],
    load(size: string) {
      source.loads++;
      const config = CONFIGS[size];
      const params = initParameters(config, 7);
      return Promise.resolve({ size, config, params, tokenizer: byteTokenizer, hash: hashNumbers(params) });
    },
  };
  return source;
}

/** Seeded random lowercase words of `min`…`max` letters (a plain LCG: the same words on every machine). */
export function randomWords(seed: number, min: number, max: number): () => string {
  let state = seed;
  const random = () => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
  return () =>
    Array.from(
      { length: min + Math.floor(random() * (max - min + 1)) },
      () => String.fromCharCode(97 + Math.floor(random() * 26)),
    ).join("");
}

/** Writes JSON lines into `dir/name` and returns the path. */
export async function writeJsonl(dir: string, name: string, rows: unknown[]): Promise<string> {
  const path = join(dir, name);
  await Deno.writeTextFile(path, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  return path;
}

/** A tiny world for pretraining tests: 24 entities, a 32-merge tokenizer. */
export const TINY_CORPUS: LabCorpusOptions = { world: { seed: 5, entities: 24, maxMentions: 6 }, merges: 32 };

/** A one-layer ladder size for pretraining tests: `steps` steps of batch 8 × 16 tokens. */
export function tinySize(name: string, steps: number, width = 16): LadderSize {
  return {
    name,
    width,
    layers: 1,
    heads: 2,
    contextLength: 16,
    tokens: steps * 8 * 16,
    batchSize: 8,
    lr: 1e-2,
    cpu: true,
  };
}

/**
 * Two tiny sizes pretrained on TINY_CORPUS into `dataDir` under the ladder's names nano and micro, so that
 * what loads the lab's models from a data directory (a sweep's worker lanes) finds them.
 */
export async function tinyLadder(dataDir: string): Promise<void> {
  const quiet = { evalEvery: 8, checkpointEvery: 16, logEvery: 8, valWindows: 16, knowledgeEntities: 8 };
  for (const [size, seed] of [[tinySize("nano", 16), 3], [tinySize("micro", 16, 24), 4]] as const) {
    await pretrainSize({ size, dataDir, corpus: TINY_CORPUS, seed, ...quiet });
  }
}
