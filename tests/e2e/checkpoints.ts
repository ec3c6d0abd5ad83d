/**
 * Two tiny "pretrained" ladder sizes for tests that run the real w2s pipeline through the worker: seeded
 * random weights (no pretraining, too slow for CI) saved with saveCheckpoint into <dataDir>/models/<size>/,
 * the directory and config the ladder's model source reads (server/lab/model-source.ts ladderModelSource),
 * tagged with the lab corpus's tokenizer. Also a small imported-task file whose label is a spelled-out rule.
 */
import { saveCheckpoint } from "../../kernels/checkpoint.ts";
import { initParameters } from "../../kernels/config.ts";
import { LADDER } from "../../server/lab/ladder.ts";
import { loadLabCorpus } from "../../server/lab/lab-corpus.ts";
import { modelDir } from "../../server/lab/model-store.ts";
import { pretrainConfig } from "../../server/lab/pretrain.ts";

export async function writeTinyLadder(dataDir: string, sizes = ["nano", "micro"]): Promise<void> {
  const { tokenizer } = await loadLabCorpus(dataDir);
  for (const [i, name] of sizes.entries()) {
    const size = LADDER.find((s) => s.name === name);
    if (!size) throw new Error(`no ladder size "${name}"`);
    const config = pretrainConfig(size, tokenizer.vocabSize);
    await saveCheckpoint(modelDir(dataDir, name), {
      config,
      params: initParameters(config, 11 + i),
      meta: { tokenizer: tokenizer.id, size: name },
    });
  }
}

/** JSONL lines: label 1 when the sentence mentions a colour word, 0 otherwise (seeded, balanced). */
export function colourTaskJsonl(count = 60): string {
  const colours = ["red", "blue", "green", "yellow"];
  const things = ["stone", "river", "house", "cloud", "horse", "garden"];
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const thing = things[i % things.length];
    const positive = i % 2 === 0;
    const txt = positive ? `the ${colours[i % colours.length]} ${thing} ${i}` : `the old ${thing} ${i}`;
    lines.push(JSON.stringify({ txt, hard_label: positive ? 1 : 0 }));
  }
  return lines.join("\n") + "\n";
}
