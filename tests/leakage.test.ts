/**
 * Pretraining leakage as a knob: a lab corpus with real text (WordNet) leaves out the headwords of the
 * WordNet tasks' test splits for the split seeds it serves and keeps them with leakage on; the two hash
 * differently, the world-only corpus's hash ignores both knobs; a size's status tells the model source
 * what its corpus held; and leakageError refuses the experiments such a ladder cannot answer.
 */
import assert from "node:assert/strict";
import type { Corpus } from "../server/corpus/corpus.ts";
import type { PretrainCorpus } from "../server/contract/models.ts";
import { type LabCorpusOptions, loadLabCorpus } from "../server/lab/lab-corpus.ts";
import { type LadderCorpus, ladderModelSource, leakageError } from "../server/lab/model-source.ts";
import { makeModelDir, statusPath } from "../server/lab/model-store.ts";
import { builtinExclusions, loadBuiltinTask } from "../server/tasks/registry.ts";

const tempDirs: string[] = [];
globalThis.addEventListener("unload", () => {
  for (const dir of tempDirs) Deno.removeSync(dir, { recursive: true });
});
async function tempDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "leakage-test-" });
  tempDirs.push(dir);
  return dir;
}

// WordNet is read from data.noun on: the first 60,000 characters gloss about a dozen of seed 0's test
// nouns of the concrete task, so leakage on must show some and leakage off none.
const realText: LabCorpusOptions = {
  world: { seed: 5, entities: 24, maxMentions: 6 },
  merges: 32,
  realShare: 0.25,
  realSources: ["wordnet"],
  realMaxChars: 60_000,
};

/** Headwords of the WordNet gloss lines ("dog (noun): a member of ..."), lowercased, train and validation. */
function headwords(corpus: Corpus): Set<string> {
  const text = corpus.tokenizer.decode(corpus.train) + "\n" + corpus.tokenizer.decode(corpus.validation);
  const words = new Set<string>();
  for (const line of text.split("\n")) {
    const match = /^(.+?) \((?:noun|verb|adj|adv)\): /.exec(line);
    if (match) words.add(match[1].toLowerCase());
  }
  return words;
}

async function concreteTestNouns(seed: number): Promise<string[]> {
  const { test } = await loadBuiltinTask("concrete", { seed });
  return test.map((e) => e.txt.replace(/^the noun: /, ""));
}

Deno.test("the real corpus leaves out the split seeds' test headwords; leakage on keeps them", async () => {
  const dataDir = await tempDir();
  const testNouns = await concreteTestNouns(0);
  const keptOut = await loadLabCorpus(dataDir, realText);
  const leaked = await loadLabCorpus(dataDir, { ...realText, leakage: true });
  const leakedWords = headwords(leaked.real!);
  const keptOutWords = headwords(keptOut.real!);
  const inLeaked = testNouns.filter((w) => leakedWords.has(w));
  assert.ok(inLeaked.length >= 5, `only ${inLeaked.length} test nouns inside the budget; raise realMaxChars`);
  const inKeptOut = testNouns.filter((w) => keptOutWords.has(w));
  assert.deepEqual(inKeptOut, [], "seed 0's test nouns glossed in a corpus that keeps them out");
  // Both corpora read the same budget of WordNet: the kept-out one reads further instead.
  assert.ok(keptOutWords.size > 500);

  assert.notEqual(keptOut.hash, leaked.hash);
  assert.notEqual(keptOut.real!.manifest.hash, leaked.real!.manifest.hash);
  assert.deepEqual(
    [keptOut.facts.realShare, keptOut.facts.leakage, keptOut.facts.splitSeeds],
    [0.25, false, [0, 1, 2]],
  );
  assert.ok(keptOut.facts.excluded.wordnetSynsets >= inLeaked.length);
  assert.ok(keptOut.facts.excluded.wordnetLemmas >= inLeaked.length);
  assert.deepEqual(keptOut.facts.excluded.paragraphsBySource, { wordnet: 0 });
  assert.deepEqual(leaked.facts, {
    realShare: 0.25,
    leakage: true,
    splitSeeds: [],
    excluded: { wordnetSynsets: 0, wordnetLemmas: 0, paragraphsBySource: { wordnet: 0 } },
  });

  // Split seeds are part of the identity (as a set); a corpus for seed 1 alone glosses seed 0's own test
  // nouns (those no seed-1 item shares a synset with).
  const reordered = await loadLabCorpus(dataDir, { ...realText, splitSeeds: [2, 0, 1, 0] });
  assert.equal(reordered.hash, keptOut.hash);
  const seedOne = await loadLabCorpus(dataDir, { ...realText, splitSeeds: [1] });
  assert.notEqual(seedOne.hash, keptOut.hash);
  const seedOneItems = new Set((await builtinExclusions(1)).wordnetLemmas);
  const seedZeroOnly = inLeaked.filter((w) => !seedOneItems.has(w));
  const seedOneWords = headwords(seedOne.real!);
  assert.ok(seedZeroOnly.some((w) => seedOneWords.has(w)), "no test noun of seed 0 alone is glossed");
});

Deno.test("the world-only corpus ignores the knobs: same hash; leakage without real text is refused", async () => {
  const dataDir = await tempDir();
  const world = { world: realText.world, merges: realText.merges };
  const plain = await loadLabCorpus(dataDir, world);
  const otherSeeds = await loadLabCorpus(dataDir, { ...world, splitSeeds: [7] });
  assert.equal(otherSeeds.hash, plain.hash);
  assert.equal(plain.real, undefined);
  assert.deepEqual(plain.facts, {
    realShare: 0,
    leakage: false,
    splitSeeds: [],
    excluded: { wordnetSynsets: 0, wordnetLemmas: 0, paragraphsBySource: {} },
  });
  await assert.rejects(() => loadLabCorpus(dataDir, { ...world, leakage: true }), /give realShare > 0/);
  await assert.rejects(
    () => loadLabCorpus(dataDir, { ...realText, splitSeeds: [] }),
    /splitSeeds must name at least one task split seed/,
  );
  await assert.rejects(
    () => loadLabCorpus(dataDir, { ...realText, splitSeeds: [1.5] }),
    /splitSeeds must be non-negative integers, got 1.5/,
  );
});

const ladder = (facts: Partial<PretrainCorpus>): LadderCorpus => ({
  size: "mini",
  hash: "0123456789abcdef",
  realShare: 0.25,
  leakage: false,
  splitSeeds: [0, 1, 2],
  excluded: { wordnetSynsets: 10, wordnetLemmas: 8, paragraphsBySource: { wordnet: 0 } },
  ...facts,
});
const ask = (task: string, leakage: boolean, seed = 0) => ({ task, leakage, seed, size: "mini" });

Deno.test("leakageError: the experiment's setting must match the ladder's for text tasks", () => {
  const keptOut = ladder({});
  const leaked = ladder({ leakage: true, splitSeeds: [] });
  const worldOnly = ladder({ realShare: 0, splitSeeds: [] });
  // Matching settings run.
  assert.equal(leakageError(keptOut, ask("concrete", false, 2)), null);
  assert.equal(leakageError(leaked, ask("sotu-era", true, 9)), null);
  // Leakage off on a leaked ladder, and the reverse: refused with the fix.
  assert.match(
    leakageError(leaked, ask("concrete", false))!,
    /size mini was pretrained with leakage on .*run with leakage: true, or pretrain again with them kept out: deno task lab pretrain --size mini --real-share 0\.25 --force/,
  );
  assert.match(
    leakageError(keptOut, ask("hypernymy", true))!,
    /split seeds 0, 1, 2 kept out; run with leakage: false, or pretrain again with them in: .* --leakage --force/,
  );
  // A split seed the ladder did not keep out.
  assert.match(
    leakageError(keptOut, ask("gloss", false, 5))!,
    /^seed 5's test items were not kept out of size mini's pretraining \(split seeds 0, 1, 2\); pretrain with deno task lab pretrain --size mini --real-share 0\.25 --split-seeds 0,1,2,5 --force/,
  );
  // World only: no text task's items in it, so leakage off always holds and leakage on means nothing.
  assert.equal(leakageError(worldOnly, ask("antonym", false, 5)), null);
  assert.match(leakageError(worldOnly, ask("polarity", true))!, /leakage: true is meaningless on size mini/);
  // Unknown corpus (a status from before leakage was recorded): refused with the way to record it.
  assert.match(leakageError(null, ask("concrete", false))!, /run deno task lab pretrain --size mini/);
});

Deno.test("leakageError: world tasks and the control fit any ladder; imported tasks only leakage off", () => {
  for (
    const corpus of [ladder({}), ladder({ leakage: true, splitSeeds: [] }), ladder({ realShare: 0 }), null]
  ) {
    for (const leakage of [false, true]) {
      assert.equal(leakageError(corpus, ask("world-region", leakage, 7)), null);
      assert.equal(leakageError(corpus, ask("spam", leakage, 7)), null);
    }
    assert.equal(leakageError(corpus, ask("my-import", false, 7)), null);
    assert.match(leakageError(corpus, ask("my-import", true))!, /imported task "my-import"/);
  }
});

Deno.test("the ladder's model source reads each size's corpus from its status", async () => {
  const dataDir = await tempDir();
  const writeStatus = async (size: string, status: Record<string, unknown>) => {
    await makeModelDir(dataDir, size);
    await Deno.writeTextFile(
      statusPath(dataDir, size),
      // A whole status (model-store.ts refuses a partial one), with the corpus fields under test.
      JSON.stringify({
        size,
        status: "pretrained",
        params: 1,
        step: 1,
        totalSteps: 1,
        tokens: 1,
        seed: 1,
        wallSeconds: 1,
        tokenizerId: "t",
        curves: { train: [], val: [], knowledge: [] },
        ...status,
      }),
    );
  };
  const facts = ladder({}) as PretrainCorpus & Partial<LadderCorpus>;
  const { size: _, hash: __, ...recorded } = facts;
  await writeStatus("mini", { corpusHash: "feedfacefeedface", corpus: recorded });
  // A status from before leakage was recorded: the default world-only corpus is recognized by its hash.
  const defaultHash = (await loadLabCorpus(dataDir)).hash;
  await writeStatus("nano", { corpusHash: defaultHash });
  await writeStatus("micro", { corpusHash: "0000000000000000" });
  const source = ladderModelSource(dataDir);
  assert.deepEqual(await source.corpus!("mini"), { size: "mini", hash: "feedfacefeedface", ...recorded });
  assert.deepEqual(await source.corpus!("nano"), {
    size: "nano",
    hash: defaultHash,
    realShare: 0,
    leakage: false,
    splitSeeds: [],
    excluded: { wordnetSynsets: 0, wordnetLemmas: 0, paragraphsBySource: {} },
  });
  assert.equal(await source.corpus!("micro"), null);
  assert.equal(await source.corpus!("small"), null, "not pretrained");
});
