/**
 * The world's task suite and world files, against hand-computed answers: every default task's labels are
 * recomputed here from the entities' values and from the derived facts as the RENDERED corpus states them
 * (not from the task builder's tables); splits are balanced and entity-disjoint; a lookup on name pieces
 * and template words scores at chance on every task, and the check does flag a task whose names give the
 * label away. A world file written by hand (tests/fixtures/world-moons.json: names, attributes and facts
 * the code never saw) draws, renders and offers its tasks; bad files are refused naming the field.
 */
import assert from "node:assert/strict";
import { generateWorld, renderWorldCorpus, timesStated, type World } from "../server/corpus/world.ts";
import { DEFAULT_WORLD_SPEC, parseWorldSpec, readWorldFile, worldKey } from "../server/corpus/world-spec.ts";
import { loadTaskSplits } from "../server/tasks/load.ts";
import { surfaceCueCheck } from "../server/lab/surface-cues.ts";
import type { TaskExample, TaskSplits } from "../server/tasks/types.ts";
import { expandWorldSuite } from "../server/tasks/world-tasks.ts";

const SPLITS = ["train1", "train2", "validation", "test"] as const;
const MOONS = new URL("./fixtures/world-moons.json", import.meta.url).pathname;

/** "S is in the V" style statements about values, read back from the rendered corpus: value → fact. */
function statedAboutValues(world: World, patterns: RegExp[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const doc of renderWorldCorpus(world)) {
    for (const sentence of doc.split(/\. ?/)) {
      for (const re of patterns) {
        const m = re.exec(sentence.trim());
        if (m) out.set(m[1], m[2]);
      }
    }
  }
  return out;
}

/** How many times the corpus states each entity's region, counted in the text. */
function regionStatements(world: World): Map<string, number> {
  const counts = new Map<string, number>();
  const patterns = [/^(\w+) lives in \w+$/, /^the (\w+) is found in \w+$/, /^(\w+) comes from \w+$/];
  for (const doc of renderWorldCorpus(world)) {
    for (const sentence of doc.split(/\. ?/)) {
      const hit = patterns.map((re) => re.exec(sentence.trim())).find((m) => m);
      if (hit) counts.set(hit[1], (counts.get(hit[1]) ?? 0) + 1);
    }
  }
  return counts;
}

function assertBalancedAndDisjoint(
  name: string,
  splits: TaskSplits,
  entitiesOf: (e: TaskExample) => string[],
) {
  const where = new Map<string, string>();
  for (const split of SPLITS) {
    const positives = splits[split].filter((e) => e.hard_label === 1).length;
    assert.equal(positives * 2, splits[split].length, `${name} ${split} is not balanced`);
    assert.ok(splits[split].length > 0, `${name} ${split} is empty`);
    for (const e of splits[split]) {
      for (const entity of entitiesOf(e)) {
        const other = where.get(entity);
        assert.ok(other === undefined || other === split, `${name}: ${entity} in ${other} and ${split}`);
        where.set(entity, split);
      }
    }
  }
}

Deno.test("the default world offers at least eight tasks, each labelled as a hand-written rule says", async () => {
  const world = generateWorld(DEFAULT_WORLD_SPEC);
  const names = expandWorldSuite(["world"], world);
  assert.ok(names.length >= 8, `only ${names.length} world tasks`);
  const byName = new Map(world.entities.map((e) => [e.name, e]));
  const half = statedAboutValues(world, [
    /^(\w+) is in the (north|south)$/,
    /^(\w+) lies in the (north|south)$/,
    /^the land of (\w+) is in the (north|south)$/,
  ]);
  const blood = statedAboutValues(world, [
    /^the (\w+) is (warm|cold) blooded$/,
    /^a (\w+) has (warm|cold) blood$/,
  ]);
  const coast = statedAboutValues(world, [
    /^(\w+) lies on the (coast|inland)$/,
    /^the land of (\w+) is (coast|inland)$/,
  ]);
  assert.equal(half.size, 12);
  assert.equal(coast.size, 12);
  assert.equal(blood.size, 8);
  const regionCount = regionStatements(world);
  const one = (e: TaskExample) => [/ (\w+) lives in$| (\w+) is a$/.exec(e.txt)!.slice(1).find(Boolean)!];
  const entity = (e: TaskExample) => byName.get(one(e)[0])!;
  const rules: Record<string, (e: TaskExample) => number> = {
    "world-region": (e) => (half.get(entity(e).attrs.region) === "north" ? 1 : 0),
    "world-coast": (e) => (coast.get(entity(e).attrs.region) === "coast" ? 1 : 0),
    "world-blood": (e) => (blood.get(entity(e).attrs.kind) === "warm" ? 1 : 0),
    "world-flies": (e) => (["bird", "bat", "moth", "beetle"].includes(entity(e).attrs.kind) ? 1 : 0),
  };
  rules["world-region-rare"] = rules["world-region"];
  rules["world-region-often"] = rules["world-region"];
  for (const name of Object.keys(rules)) assert.ok(names.includes(name), `${name} missing`);
  for (const name of Object.keys(rules)) {
    const splits = await loadTaskSplits(name, 0, undefined, world);
    assertBalancedAndDisjoint(name, splits, one);
    for (const split of SPLITS) {
      for (const e of splits[split]) {
        assert.equal(e.hard_label, rules[name](e), `${name}: ${e.txt}`);
        const stated = regionCount.get(one(e)[0]) ?? 0;
        if (name === "world-region-rare") assert.equal(stated, 1, e.txt);
        if (name === "world-region-often") assert.ok(stated >= 3, e.txt);
      }
    }
  }
  // The relations: two entities with the same half (blood); an entity's pairs all sit in one split.
  const relations: [string, RegExp, (name: string) => string | undefined][] = [
    ["world-same-half", /\. (\w+) lives in/g, (n) => half.get(byName.get(n)!.attrs.region)],
    ["world-same-blood", /\. (\w+) is a/g, (n) => blood.get(byName.get(n)!.attrs.kind)],
  ];
  for (const [name, pattern, fact] of relations) {
    const pairs = await loadTaskSplits(name, 0, undefined, world);
    const both = (e: TaskExample) => [...e.txt.matchAll(pattern)].map((m) => m[1]);
    assertBalancedAndDisjoint(name, pairs, both);
    for (const split of SPLITS) {
      for (const e of pairs[split]) {
        const [a, b] = both(e).map(fact);
        assert.equal(e.hard_label, a === b ? 1 : 0, e.txt);
      }
    }
  }
});

Deno.test("a lookup on name pieces and templates is at chance on every default task, and the check can fail", async () => {
  const world = generateWorld(DEFAULT_WORLD_SPEC);
  for (const name of expandWorldSuite(["world"], world)) {
    for (const seed of [0, 1]) {
      const check = surfaceCueCheck(await loadTaskSplits(name, seed, undefined, world));
      assert.ok(
        check.atChance,
        `${name} seed ${seed}: lookup ${check.accuracy} [${check.low}, ${check.high}]`,
      );
    }
  }
  // Mutation: a task whose names end in "x" exactly when the label is 1 is caught.
  const leaky = (n: number): TaskExample[] =>
    Array.from({ length: n }, (_, i) => {
      const label = (i % 2) as 0 | 1;
      const name = ["Bor", "Kel", "Mun", "Tas", "Vid"][i % 5] + ["ad", "ex"][label] +
        String.fromCharCode(97 + (i % 7));
      return { txt: `. ${name} lives in`, hard_label: label };
    });
  const check = surfaceCueCheck({
    train1: leaky(60),
    train2: leaky(60),
    validation: leaky(40),
    test: leaky(60),
  });
  assert.ok(!check.atChance && check.accuracy > 0.9, `leaky task passed: ${check.accuracy}`);
});

Deno.test("a hand-written world file draws, renders and offers its own tasks", async () => {
  const spec = readWorldFile(MOONS);
  const world = generateWorld(spec);
  assert.equal(world.entities.length, 48);
  assert.deepEqual(world.entities.map((e) => e.name).slice(0, 3), ["Ixo", "Pell", "Quor"]);
  // Each fact stated 1–3 times, exactly as often as the corpus says.
  const text = renderWorldCorpus(world).join(" ");
  for (const e of world.entities) {
    const metal = text.split(`the moon ${e.name} is made of ${e.attrs.metal}`).length - 1 +
      text.split(`${e.name} shines like ${e.attrs.metal}`).length - 1;
    assert.equal(metal, timesStated(e, "metal"), e.name);
    assert.ok(metal >= 1 && metal <= 3);
  }
  for (const [metal, worth] of [["tin", "poor"], ["gold", "rich"], ["iron", "poor"], ["lead", "rich"]]) {
    assert.equal(text.split(`${worth} folk mine ${metal}`).length - 1, 3, metal);
  }
  assert.deepEqual(expandWorldSuite(["world", "polarity"], world), [
    "world-rich-moon",
    "world-high-tide",
    "world-same-metal-worth",
    "polarity",
  ]);
  const rich = await loadTaskSplits("world-rich-moon", 0, undefined, world);
  const byName = new Map(world.entities.map((e) => [e.name, e]));
  for (const e of SPLITS.flatMap((s) => rich[s])) {
    const name = /moon (\w+) is made of$/.exec(e.txt)![1];
    assert.equal(e.hard_label, ["gold", "lead"].includes(byName.get(name)!.attrs.metal) ? 1 : 0);
  }
  await assert.rejects(
    () => loadTaskSplits("world-region", 0, undefined, world),
    /has no task "world-region"/,
  );
  // The key names the world and changes with its definition, not with the order of its keys.
  const reordered = Object.fromEntries(Object.entries(spec).reverse());
  assert.equal(worldKey(parseWorldSpec(reordered)), worldKey(spec));
  assert.match(worldKey(spec), /^moons-[0-9a-f]{10}$/);
  assert.notEqual(worldKey({ ...spec, seed: 6 }), worldKey(spec));
});

Deno.test("bad world files are refused, naming the field and the fix", () => {
  const good = JSON.parse(Deno.readTextFileSync(MOONS));
  const refused = (change: (w: typeof good) => void, pattern: RegExp) => {
    const w = structuredClone(good);
    change(w);
    assert.throws(() => parseWorldSpec(w, "test.json"), pattern);
  };
  refused(
    (w) => (w.attributes[0].templates = ["the moon {X} is made of"]),
    /attributes\.0\.templates\.0: .*\{V\}/,
  );
  refused(
    (w) => (w.attributes[1].templates = ["{X} has a {V} tide"]),
    /canonical wording and must end with " \{V\}"/,
  );
  refused((w) => (w.entities.count = 60), /entities\.names: 48 names for count 60/);
  refused((w) => (w.derived[0].of = "colour"), /derived\[0\]\.of: no attribute "colour"/);
  refused((w) => (w.tasks[1].positive = ["flooded"]), /tasks\[1\]\.positive: "flooded" is not a value/);
  refused(
    (w) => (w.tasks[0].name = "rich-moon"),
    /tasks\.0\.name: a world task name must start with "world-"/,
  );
  refused((w) => delete w.derived[0].map.lead, /derived\[0\]\.map: give the worth of "lead"/);
  refused((w) => (w.mentions.per = "sometimes"), /mentions\.per: mentions\.per must be "entity" or "fact"/);
});
