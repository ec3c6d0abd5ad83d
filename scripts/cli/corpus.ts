/**
 * `deno task lab corpus [--sources wordnet,sotu,moby-dick|none] [--file F]... [--world] [--entities N]
 * [--world-seed N] [--merges K] [--seed N] [--max-chars-per-source N] [--split-seeds 0,1,2] [--leakage]
 * [--json]`: builds (or reads back from the cache) the pretraining corpus and prints its sizes per source
 * and what was kept out. The real text leaves out the test items of the built-in text tasks for the
 * split seeds (default 0,1,2, as the ladder); --leakage lets them in.
 */
import { parseFlags, UsageError } from "../../server/contract/command-flags.ts";
import { buildCorpus, type BuiltinSource, type CorpusOptions } from "../../server/corpus/corpus.ts";
import { describeExcluded } from "../../server/contract/models.ts";
import { DEFAULT_LAB_CORPUS } from "../../server/lab/lab-corpus.ts";
import { builtinExclusionsForSeeds } from "../../server/tasks/registry.ts";
import { activeWorldSpec, worldSpecWith } from "../../server/corpus/world-spec.ts";

/** "0,1,2" → [0, 1, 2]; anything but non-negative integers is an error that names the flag. */
export function parseSplitSeeds(text: string): number[] {
  const seeds = text.split(",").map((part) => part.trim());
  if (seeds.some((seed) => !/^\d+$/.test(seed))) {
    throw new UsageError(`--split-seeds must be non-negative integers separated by commas, got "${text}"`);
  }
  return seeds.map(Number);
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, {
    sources: { type: "string" },
    file: { type: "string", multiple: true },
    world: { type: "boolean", default: false },
    entities: { type: "string" },
    "world-seed": { type: "string" },
    merges: { type: "string" },
    seed: { type: "string" },
    "max-chars-per-source": { type: "string" },
    "split-seeds": { type: "string" },
    leakage: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
  });
  const int = (name: string, text: string | undefined) => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0) {
      throw new UsageError(`--${name} must be a non-negative integer, got "${text}"`);
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
    opts.world = worldSpecWith(activeWorldSpec(opts.dataDir ?? Deno.env.get("LAB_DATA_DIR") ?? "./data"), {
      entities: int("entities", values.entities),
      seed: int("world-seed", values["world-seed"]),
    });
  }
  const splitSeeds = values["split-seeds"] === undefined
    ? DEFAULT_LAB_CORPUS.splitSeeds
    : parseSplitSeeds(values["split-seeds"]);
  // Sources left out mean all three built-in ones.
  const realText = opts.sources === undefined || opts.sources.length > 0 || (opts.files ?? []).length > 0;
  if (!values.leakage && realText) opts.exclude = await builtinExclusionsForSeeds(splitSeeds);
  const started = performance.now();
  const corpus = await buildCorpus(opts);
  const seconds = (performance.now() - started) / 1000;
  const m = corpus.manifest;
  if (values.json) {
    const keptOut = opts.exclude ? splitSeeds : [];
    console.log(
      JSON.stringify({ ...m, dir: corpus.dir, cached: corpus.cached, seconds, splitSeeds: keptOut }),
    );
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
  const excluded = opts.exclude
    ? `test items of split seeds ${splitSeeds.join(", ")} excluded: ${describeExcluded(m.excluded)}`
    : values.leakage
    ? "leakage: test items kept in"
    : "no real text: nothing to exclude";
  console.log(`${excluded}; ${m.excluded.duplicateParagraphs} duplicate paragraphs dropped`);
}

if (import.meta.main) await main(Deno.args);
