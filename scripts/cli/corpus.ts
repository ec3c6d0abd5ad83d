/**
 * `deno task lab corpus [--sources wordnet,sotu,moby-dick|none] [--file F]... [--world] [--entities N]
 * [--world-seed N] [--merges K] [--seed N] [--max-chars-per-source N] [--leakage] [--json]`:
 * builds (or reads back from the cache) the pretraining corpus and prints its sizes per source.
 */
import { parseArgs } from "node:util";
import { buildCorpus, type BuiltinSource, type CorpusOptions } from "../../server/corpus/corpus.ts";

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      sources: { type: "string" },
      file: { type: "string", multiple: true },
      world: { type: "boolean", default: false },
      entities: { type: "string" },
      "world-seed": { type: "string" },
      merges: { type: "string" },
      seed: { type: "string" },
      "max-chars-per-source": { type: "string" },
      leakage: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
  });
  const int = (name: string, text: string | undefined) => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0) {
      throw new Error(`--${name} must be a non-negative integer, got "${text}"`);
    }
    return n;
  };
  const opts: CorpusOptions = {
    sources: values.sources === undefined
      ? undefined
      : values.sources === "none"
      ? []
      : values.sources.split(",").map((s) => s.trim() as BuiltinSource),
    files: values.file,
    merges: int("merges", values.merges),
    seed: int("seed", values.seed),
    maxCharsPerSource: int("max-chars-per-source", values["max-chars-per-source"]),
    leakage: values.leakage,
  };
  if (values.world || values.entities !== undefined || values["world-seed"] !== undefined) {
    opts.world = {
      entities: int("entities", values.entities),
      seed: int("world-seed", values["world-seed"]),
    };
    for (const key of ["entities", "seed"] as const) {
      if (opts.world[key] === undefined) delete opts.world[key];
    }
  }
  const started = performance.now();
  const corpus = await buildCorpus(opts);
  const seconds = (performance.now() - started) / 1000;
  const m = corpus.manifest;
  if (values.json) {
    console.log(JSON.stringify({ ...m, dir: corpus.dir, cached: corpus.cached, seconds }));
    return;
  }
  console.log(
    `corpus ${m.hash} (${corpus.cached ? "cached" : "built"} in ${seconds.toFixed(1)} s) at ${corpus.dir}`,
  );
  console.log(`tokenizer ${m.tokenizer.id}, vocabulary ${m.tokenizer.vocabSize}`);
  console.log(
    `${"source".padEnd(24)} ${"docs".padStart(7)} ${"chars".padStart(11)} ${"tokens".padStart(10)}  licence`,
  );
  for (const s of m.sources) {
    const tokens = s.trainTokens + s.validationTokens;
    console.log(
      `${s.name.slice(0, 24).padEnd(24)} ${String(s.documents).padStart(7)} ${String(s.chars).padStart(11)} ${
        String(tokens).padStart(10)
      }  ${s.licence}`,
    );
  }
  console.log(`train ${m.train.documents} docs, ${m.train.chars} chars, ${m.train.tokens} tokens`);
  console.log(
    `validation ${m.validation.documents} docs, ${m.validation.chars} chars, ${m.validation.tokens} tokens`,
  );
  console.log(
    `excluded: ${m.excluded.wordnetSynsets} WordNet synsets, ${m.excluded.paragraphs} paragraphs; ` +
      `${m.excluded.duplicateParagraphs} duplicate paragraphs dropped`,
  );
}

if (import.meta.main) await main(Deno.args);
