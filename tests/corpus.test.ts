// Corpus builder on tiny budgets: normalization, determinism, exclusions and leakage, cache, bad input.
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildCorpus, type Corpus, normalizeText } from "../server/corpus/corpus.ts";

// Every temporary directory a test makes is removed when this file's tests are done (pass or fail).
const tempDirs: string[] = [];
globalThis.addEventListener("unload", () => {
  for (const dir of tempDirs) Deno.removeSync(dir, { recursive: true });
});
async function tempDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "corpus-test-" });
  tempDirs.push(dir);
  return dir;
}
const allText = (c: Corpus) => c.tokenizer.decode(c.train) + "\n\n" + c.tokenizer.decode(c.validation);

async function writeJsonl(dir: string, texts: string[]): Promise<string> {
  const path = join(dir, "user.jsonl");
  await Deno.writeTextFile(path, texts.map((text) => JSON.stringify({ text })).join("\n") + "\n");
  return path;
}

Deno.test("normalization: quotes, dashes, stage directions, whitespace, NFKC", () => {
  assert.equal(
    normalizeText(
      "\u201cWe will\u201d\u2014we must. (Applause.)  And\u00a0the \u2018best\u2019 (Laughter.) is\u2013here\u2026",
    ),
    "\"We will\"--we must. And the 'best' is-here...",
  );
  assert.equal(normalizeText("  a \t b \r\n\r\n\r\n\r\n c  "), "a b\n\nc");
  assert.equal(normalizeText("\ufb01ne caf\u0065\u0301"), "fine caf\u00e9");
  assert.equal(normalizeText("(Signed) kept [Cheers and applause] gone"), "(Signed) kept gone");
});

Deno.test("same seed gives the same hash and tokens; documents stay whole in one split", async () => {
  const dir = await tempDir();
  const texts = Array.from({ length: 40 }, (_, k) => `Document number ${k} talks about item ${k * 7}.`);
  const file = await writeJsonl(dir, texts);
  const opts = { sources: [] as [], files: [file], validationShare: 0.1, seed: 3 };
  const a = await buildCorpus({ ...opts, dataDir: join(dir, "a") });
  const b = await buildCorpus({ ...opts, dataDir: join(dir, "b") });
  assert.equal(a.cached, false);
  assert.equal(b.cached, false);
  assert.equal(a.manifest.hash, b.manifest.hash);
  assert.deepEqual(a.train, b.train);
  assert.deepEqual(a.validation, b.validation);
  const validationDocs = a.tokenizer.decode(a.validation).split("\n\n");
  const trainDocs = a.tokenizer.decode(a.train).split("\n\n");
  assert.equal(validationDocs.length, 4);
  assert.equal(trainDocs.length, 36);
  assert.deepEqual([...validationDocs, ...trainDocs].sort(), [...texts].sort());
  const c = await buildCorpus({ ...opts, seed: 4, dataDir: join(dir, "a") });
  assert.notEqual(c.manifest.hash, a.manifest.hash);
  assert.notDeepEqual(c.tokenizer.decode(c.validation).split("\n\n").sort(), [...validationDocs].sort());
});

Deno.test("excluded WordNet lemmas and texts do not occur; with leakage they do", async () => {
  const dataDir = await tempDir();
  const base = {
    dataDir,
    sources: ["wordnet", "moby-dick"] as ("wordnet" | "moby-dick")[],
    maxCharsPerSource: 40_000,
  };
  // From WordNet 3.1 data.noun: synset 00001930 {physical_entity}, gloss "an entity that has physical existence".
  const gloss = "physical entity (noun): an entity that has physical existence";
  // Moby-Dick, chapter 1, first paragraph.
  const ishmael = "Call me Ishmael. Some years ago--never mind how long precisely--having little or no money";
  const full = await buildCorpus(base);
  assert.ok(allText(full).includes(gloss));
  assert.ok(allText(full).includes(ishmael));
  const exclude = { wordnetLemmas: ["Physical_Entity"], texts: ["call me ishmael"] };
  const excluded = await buildCorpus({ ...base, exclude });
  assert.ok(!allText(excluded).includes("an entity that has physical existence"));
  assert.ok(!allText(excluded).includes("never mind how long precisely"));
  assert.equal(excluded.manifest.excluded.wordnetSynsets, 1);
  assert.equal(excluded.manifest.excluded.paragraphs, 1);
  assert.equal(excluded.manifest.excluded.wordnetLemmas, 1);
  assert.deepEqual(excluded.manifest.excluded.paragraphsBySource, { wordnet: 0, "moby-dick": 1 });
  assert.ok(allText(excluded).includes("entity (noun): that which is perceived or known or inferred"));
  const leaked = await buildCorpus({ ...base, exclude, leakage: true });
  assert.ok(allText(leaked).includes(gloss));
  assert.ok(allText(leaked).includes(ishmael));
  assert.equal(leaked.manifest.hash, full.manifest.hash);
  assert.equal(leaked.cached, true);
  const sources = Object.fromEntries(full.manifest.sources.map((s) => [s.name, s]));
  assert.match(sources.wordnet.licence, /WordNet 3\.1/);
  assert.ok(sources["moby-dick"].chars >= 40_000 && sources["moby-dick"].chars < 80_000);
  assert.ok(!full.manifest.sources.some((s) => /spam/i.test(s.name + s.origin)));
});

Deno.test("a second build with the same inputs is read from the cache; a changed file rebuilds", async () => {
  const dir = await tempDir();
  const file = await writeJsonl(dir, ["one text here", "another text there", "a third one"]);
  const first = await buildCorpus({ dataDir: dir, sources: [], files: [file] });
  const manifestPath = join(first.dir, "manifest.json");
  const onDisk = JSON.parse(await Deno.readTextFile(manifestPath));
  assert.equal(onDisk.hash, first.manifest.hash);
  assert.equal(onDisk.train.tokens, first.train.length);
  const second = await buildCorpus({ dataDir: dir, sources: [], files: [file] });
  assert.equal(second.cached, true);
  assert.deepEqual(second.train, first.train);
  assert.deepEqual(second.validation, first.validation);
  // A manifest from before the per-source exclusion counts is rebuilt under the same hash.
  delete onDisk.excluded.paragraphsBySource;
  await Deno.writeTextFile(manifestPath, JSON.stringify(onDisk));
  const rebuilt = await buildCorpus({ dataDir: dir, sources: [], files: [file] });
  assert.deepEqual([rebuilt.cached, rebuilt.manifest.hash], [false, first.manifest.hash]);
  assert.deepEqual(rebuilt.train, first.train);
  await writeJsonl(dir, ["one text here", "another text there", "a changed third one"]);
  const third = await buildCorpus({ dataDir: dir, sources: [], files: [file] });
  assert.equal(third.cached, false);
  assert.notEqual(third.manifest.hash, first.manifest.hash);
});

Deno.test("duplicates are dropped; plain-text files are read by paragraph", async () => {
  const dir = await tempDir();
  const path = join(dir, "notes.txt");
  await Deno.writeTextFile(
    path,
    "First paragraph.\n\nSecond paragraph.\n\nFirst paragraph.\n\n\u201cThird\u201d.\n",
  );
  const c = await buildCorpus({ dataDir: dir, sources: [], files: [path] });
  assert.equal(allText(c).match(/First paragraph/g)?.length, 1);
  assert.ok(allText(c).includes('"Third".'));
  assert.equal(c.manifest.excluded.duplicateParagraphs, 1);
});

Deno.test("bad paths and bad JSONL lines are clear errors", async () => {
  const dir = await tempDir();
  await assert.rejects(
    () => buildCorpus({ dataDir: dir, sources: [], files: ["/no/such/corpus.txt"] }),
    /cannot read corpus file \/no\/such\/corpus\.txt: file not found/,
  );
  const bad = join(dir, "bad.jsonl");
  await Deno.writeTextFile(bad, '{"text": "fine"}\n{"txt": "wrong key"}\n');
  await assert.rejects(
    () => buildCorpus({ dataDir: dir, sources: [], files: [bad] }),
    /bad\.jsonl:2: expected an object/,
  );
  await assert.rejects(
    () => buildCorpus({ dataDir: dir, sources: ["spam-assassin" as "sotu"] }),
    /unknown corpus source "spam-assassin"/,
  );
});

Deno.test("the world's corpus alone, with one token per name and its ground truth saved", async () => {
  const dir = await tempDir();
  const c = await buildCorpus({ dataDir: dir, sources: [], world: { seed: 2, entities: 60 } });
  assert.ok(c.world);
  assert.match(c.tokenizer.id, /^gpt2-bpe-4096\+world-[0-9a-f]{12}$/);
  assert.ok(c.tokenizer.vocabSize > 4352 + 60);
  const saved = JSON.parse(await Deno.readTextFile(join(c.dir, "world.json")));
  assert.deepEqual(saved.entities, c.world.entities);
  const text = allText(c);
  const entity = c.world.entities[0];
  assert.ok(text.includes(` ${entity.name} `));
  assert.ok(c.train.some((id) => id === c.tokenizer.encode(" " + entity.name)[0]));
  const left = await buildCorpus({
    dataDir: dir,
    sources: [],
    world: c.world,
    worldLeaveOut: { entities: [entity.name] },
  });
  assert.ok(!allText(left).includes(` ${entity.name} `));
});
