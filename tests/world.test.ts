// Knowledge world: determinism, distributions, the long tail, rendering of every stated fact, leave-out.
import assert from "node:assert/strict";
import {
  generateWorld,
  knowledgeQueries,
  leftOutFacts,
  loadWorld,
  promptFor,
  renderWorldCorpus,
  saveWorld,
  timesStated,
  type World,
  worldAddedTokens,
} from "../server/corpus/world.ts";
import { createTokenizer } from "../server/corpus/tokenizer.ts";

// Hand-written readers of every paraphrase, independent of the generator's template table.
const PATTERNS: [RegExp, string][] = [
  [/^(\w+) lives in (\w+)$/, "region"],
  [/^the (\w+) is found in (\w+)$/, "region"],
  [/^(\w+) comes from (\w+)$/, "region"],
  [/^(\w+) is a kind of (\w+)$/, "kind"],
  [/^the (\w+) is a kind of (\w+)$/, "kind"],
  [/^(\w+) is a (\w+)$/, "kind"],
  [/^(\w+) belongs to the (\w+) family$/, "kind"],
  [/^the colour of (\w+) is (\w+)$/, "colour"],
  [/^(\w+) has (\w+) skin$/, "colour"],
  [/^the (\w+) is (\w+) in colour$/, "colour"],
  [/^(\w+) eats (\w+)$/, "diet"],
  [/^the (\w+) feeds on (\w+)$/, "diet"],
  [/^the diet of (\w+) is (\w+)$/, "diet"],
  [/^(\w+) is very (\w+)$/, "size"],
  [/^the (\w+) is (\w+) in size$/, "size"],
  [/^(\w+) is in the (north|south)$/, "half"],
  [/^(\w+) lies in the (north|south)$/, "half"],
  [/^the land of (\w+) is in the (north|south)$/, "half"],
];

function readStatements(documents: string[]): { subject: string; attr: string; value: string }[] {
  const out = [];
  for (const doc of documents) {
    assert.ok(doc.startsWith(". "), `document does not open with ". ": ${doc.slice(0, 40)}`);
    for (const sentence of doc.slice(2).split(/\. ?/).filter((s) => s.length > 0)) {
      const hit = PATTERNS.find(([re]) => re.test(sentence));
      assert.ok(hit, `unreadable statement: ${sentence}`);
      const m = sentence.match(hit[0])!;
      out.push({ subject: m[1], attr: hit[1], value: m[2] });
    }
  }
  return out;
}

function factCounts(world: World, documents: string[]): Map<string, number> {
  const byName = new Map(world.entities.map((e) => [e.name, e]));
  const counts = new Map<string, number>();
  for (const s of readStatements(documents)) {
    if (s.attr === "half") continue;
    const entity = byName.get(s.subject);
    assert.ok(entity, `statement about an unknown entity ${s.subject}`);
    assert.equal(s.value, entity.attrs[s.attr], `${s.subject} ${s.attr}`);
    const key = `${s.subject}/${s.attr}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

Deno.test("same seed, same world and corpus; another seed, another world", () => {
  const a = generateWorld({ seed: 5, entities: 300 });
  const b = generateWorld({ seed: 5, entities: 300 });
  assert.deepEqual(a, b);
  assert.deepEqual(renderWorldCorpus(a), renderWorldCorpus(b));
  const c = generateWorld({ seed: 6, entities: 300 });
  assert.notDeepEqual(a.entities.map((e) => e.name), c.entities.map((e) => e.name));
  assert.equal(new Set(a.entities.map((e) => e.name)).size, 300);
});

Deno.test("attributes: 12 regions in two halves of six, values near uniform", () => {
  const world = generateWorld({ seed: 2, entities: 4000 });
  const sizes = Object.fromEntries(world.attributes.map((a) => [a.name, a.values.length]));
  assert.deepEqual(sizes, { region: 12, kind: 8, colour: 8, diet: 3, size: 2 });
  const groups = Object.values(world.derived[0].map);
  assert.equal(groups.filter((g) => g === "north").length, 6);
  assert.equal(groups.filter((g) => g === "south").length, 6);
  for (const attribute of world.attributes) {
    const expected = 4000 / attribute.values.length;
    for (const value of attribute.values) {
      const n = world.entities.filter((e) => e.attrs[attribute.name] === value).length;
      // Binomial sd is at most sqrt(4000 / 4) ≈ 32; allow 5 sd.
      assert.ok(Math.abs(n - expected) < 160, `${attribute.name}=${value}: ${n} vs ${expected}`);
    }
  }
  for (const entity of world.entities) {
    assert.equal(entity.order[0], "region");
    assert.deepEqual([...entity.order].sort(), ["colour", "diet", "kind", "region", "size"]);
  }
});

Deno.test("mentions follow a long tail: log-uniform 1–40 and Zipf", () => {
  const logUniform = generateWorld({ seed: 3, entities: 5000 }).entities.map((e) => e.mentions);
  assert.ok(Math.min(...logUniform) === 1 && Math.max(...logUniform) === 40);
  // round(exp(U ln 40)): P(1) = ln 1.5 / ln 40 = 0.110; mean ≈ 39 / ln 40 = 10.57; median round(√40) = 6.
  const share1 = logUniform.filter((m) => m === 1).length / 5000;
  assert.ok(Math.abs(share1 - 0.110) < 0.02, `P(1) = ${share1}`);
  const mean = logUniform.reduce((s, m) => s + m, 0) / 5000;
  assert.ok(Math.abs(mean - 10.57) < 0.6, `mean ${mean}`);
  const sorted = [...logUniform].sort((x, y) => x - y);
  assert.ok(sorted[2500] >= 5 && sorted[2500] <= 7, `median ${sorted[2500]}`);
  const zipf = generateWorld({ seed: 3, entities: 5000, mentionDistribution: "zipf", zipfExponent: 1 })
    .entities.map((e) => e.mentions);
  // P(1) = 1 / H_40 = 1 / 4.2785 = 0.234; P(2) = 0.117.
  const z1 = zipf.filter((m) => m === 1).length / 5000;
  const z2 = zipf.filter((m) => m === 2).length / 5000;
  assert.ok(Math.abs(z1 - 0.234) < 0.025 && Math.abs(z2 - 0.117) < 0.02, `zipf P(1) ${z1} P(2) ${z2}`);
});

Deno.test("every stated fact is rendered, as often as timesStated says; regions get their halves", () => {
  const world = generateWorld({ seed: 4, entities: 400, halfStatementsPerRegion: 3 });
  const documents = renderWorldCorpus(world);
  const counts = factCounts(world, documents);
  let expectedStatements = 0;
  for (const entity of world.entities) {
    expectedStatements += entity.mentions;
    for (const attr of entity.order) {
      assert.equal(
        counts.get(`${entity.name}/${attr}`) ?? 0,
        timesStated(entity, attr),
        `${entity.name} ${attr}`,
      );
    }
    assert.ok(timesStated(entity, "region") >= 1);
  }
  const statements = readStatements(documents);
  assert.equal(statements.length, expectedStatements + 12 * 3);
  for (const s of statements.filter((s) => s.attr === "half")) {
    assert.equal(s.value, world.derived[0].map[s.subject]);
  }
  assert.equal(statements.filter((s) => s.attr === "half").length, 36);
  assert.equal(documents.length, Math.ceil(statements.length / world.spec.sentencesPerDocument));
});

Deno.test("leave-out removes a share of facts, or every fact of chosen entities", () => {
  const world = generateWorld({ seed: 8, entities: 400 });
  const stated = world.entities.reduce((n, e) => n + e.order.filter((a) => timesStated(e, a) > 0).length, 0);
  const leftOut = leftOutFacts(world, { share: 0.3 });
  assert.ok(Math.abs(leftOut.size / stated - 0.3) < 0.05, `left out ${leftOut.size} of ${stated}`);
  const counts = factCounts(world, renderWorldCorpus(world, { leaveOut: { share: 0.3 } }));
  for (const entity of world.entities) {
    for (const attr of entity.order) {
      const expected = leftOut.has(`${entity.name}\t${attr}`) ? 0 : timesStated(entity, attr);
      assert.equal(counts.get(`${entity.name}/${attr}`) ?? 0, expected);
    }
  }
  const chosen = world.entities.slice(0, 50).map((e) => e.name);
  const text = renderWorldCorpus(world, { leaveOut: { entities: chosen } }).join("\n");
  for (const name of chosen) assert.ok(!new RegExp(`\\b${name}\\b`).test(text), `${name} still rendered`);
  for (const e of world.entities.slice(50)) assert.ok(text.includes(` ${e.name} `), `${e.name} missing`);
  assert.throws(
    () => leftOutFacts(world, { entities: ["Nobody"] }),
    /leave-out entity "Nobody" is not in the world/,
  );
});

Deno.test("prompts, knowledge queries and one token per name", async () => {
  const world = generateWorld({ seed: 9, entities: 100 });
  assert.equal(promptFor(world, "region", "Zorvak"), ". Zorvak lives in");
  assert.equal(promptFor(world, "kind", "Zorvak"), ". Zorvak is a");
  assert.equal(promptFor(world, "colour", "Zorvak"), ". the colour of Zorvak is");
  assert.equal(promptFor(world, "diet", "Zorvak"), ". Zorvak eats");
  assert.equal(promptFor(world, "size", "Zorvak"), ". Zorvak is very");
  assert.equal(promptFor(world, "half", "Melbra"), ". Melbra is in the");
  assert.throws(() => promptFor(world, "weight", "Zorvak"), /unknown world attribute "weight"/);

  const queries = knowledgeQueries(world, "region");
  assert.equal(queries.length, 100);
  const q = queries[0];
  const entity = world.entities[0];
  assert.equal(q.prompt, `. ${entity.name} lives in`);
  assert.equal(q.answer, entity.attrs.region);
  assert.equal(q.candidates.length, 12);
  assert.ok(q.candidates.includes(q.answer));
  assert.equal(q.mentions, entity.mentions);
  // Region is stated at mentions 0, 5, 10, ...
  assert.equal(q.timesStated, Math.ceil(entity.mentions / 5));

  // The canonical sentence, as rendered, continues the prompt with the value as one added token.
  const tokenizer = createTokenizer({ addedTokens: worldAddedTokens(world), addedTokensLabel: "world" });
  const promptIds = tokenizer.encode(q.prompt);
  const sentenceIds = tokenizer.encode(`${q.prompt} ${q.answer}.`);
  assert.deepEqual(sentenceIds.slice(0, promptIds.length), promptIds);
  assert.equal(sentenceIds.length, promptIds.length + 2);
  assert.equal(tokenizer.decode([sentenceIds[promptIds.length]]), " " + q.answer);
  for (const e of world.entities) assert.equal(tokenizer.encode(" " + e.name).length, 1);
  assert.deepEqual(worldAddedTokens(generateWorld({ seed: 9, entities: 100, nameTokens: "bpe" })), []);

  const path = await Deno.makeTempFile({ suffix: ".json" });
  await saveWorld(world, path);
  assert.deepEqual(await loadWorld(path), world);
  await Deno.remove(path);
  await assert.rejects(() => loadWorld(path), /cannot read world file/);
});
