/**
 * The world's task suite and world files, against hand-computed answers: every default task's labels are
 * recomputed here from the entities' values and from the derived facts as the RENDERED corpus states them
 * (not from the task builder's tables); splits are balanced and entity-disjoint; a lookup on name pieces
 * and template words scores at chance on every task, and the check does flag a task whose names give the
 * label away. A world file written by hand (tests/fixtures/world-moons.json: names, attributes and facts
 * the code never saw) draws, renders and offers its tasks; bad files are refused naming the field.
 * Preference (pairwise) tasks: the chosen text states the entity's true value and the rejected one another
 * value (of the same half for the "near" task, read from the rendered corpus), in the pretraining wording;
 * a lookup on both texts is at chance on them and catches a planted pairwise cue. The world's key and corpus
 * hash ignore its tasks, and the lab's world carries the tasks of its current file.
 */
import assert from "node:assert/strict";
import {
  activeWorld,
  generateWorld,
  renderWorldCorpus,
  timesStated,
  type World,
  worldHash,
} from "../server/corpus/world.ts";
import {
  DEFAULT_WORLD_SPEC,
  parseWorldSpec,
  readWorldFile,
  storeLabWorld,
  worldKey,
} from "../server/corpus/world-spec.ts";
import { loadTaskSplits } from "../server/tasks/load.ts";
import { surfaceCueCheck } from "../server/lab/surface-cues.ts";
import type { TaskExample, TaskSplits } from "../server/tasks/types.ts";
import { expandWorldSuite, worldTaskInfos, worldTaskSource } from "../server/tasks/world-tasks.ts";

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

Deno.test("preference tasks: the true statement against another value, in the pretraining wording", async () => {
  const world = generateWorld(DEFAULT_WORLD_SPEC);
  const byName = new Map(world.entities.map((e) => [e.name, e]));
  const half = statedAboutValues(world, [
    /^(\w+) is in the (north|south)$/,
    /^(\w+) lies in the (north|south)$/,
    /^the land of (\w+) is in the (north|south)$/,
  ]);
  const regions = new Set(world.entities.map((e) => e.attrs.region));
  const kinds = new Set(world.entities.map((e) => e.attrs.kind));
  assert.equal(regions.size, 12);
  const regionCount = regionStatements(world);
  const pairwise = expandWorldSuite(["world-pairwise"], world);
  assert.deepEqual(pairwise, [
    "world-prefer-region",
    "world-prefer-region-near",
    "world-prefer-region-rare",
    "world-prefer-kind",
  ]);
  assert.ok(!expandWorldSuite(["world"], world).some((n) => pairwise.includes(n)), "world is classification");
  const formats = new Map(worldTaskInfos(world).map((t) => [t.name, t.format]));
  assert.deepEqual(pairwise.map((n) => formats.get(n)), Array(4).fill("pairwise"));
  assert.equal(formats.get("world-region"), "classification");

  // ". X lives in V" / ". X is a V": template 0 of each attribute, as the corpus states the fact.
  const wordings: Record<string, [RegExp, string, Set<string>]> = {
    "world-prefer-region": [/^\. (\w+) lives in (\w+)$/, "region", regions],
    "world-prefer-region-near": [/^\. (\w+) lives in (\w+)$/, "region", regions],
    "world-prefer-region-rare": [/^\. (\w+) lives in (\w+)$/, "region", regions],
    "world-prefer-kind": [/^\. (\w+) is a (\w+)$/, "kind", kinds],
  };
  const sameHalfShare = new Map<string, number>();
  for (const name of pairwise) {
    const [wording, attr, values] = wordings[name];
    const read = (text: string) => {
      const m = wording.exec(text);
      assert.ok(m, `${name}: "${text}" is not the pretraining wording`);
      return { entity: m[1], value: m[2] };
    };
    const asOne = new Map<string, string>();
    let sameHalf = 0;
    let pairs = 0;
    for (const seed of [0, 1]) {
      const splits = await loadTaskSplits(name, seed, undefined, world);
      assertBalancedAndDisjoint(name, splits, (e) => [read(e.txt).entity, read(e.other!).entity]);
      for (const e of SPLITS.flatMap((split) => splits[split])) {
        const [chosen, rejected] = (e.hard_label === 1 ? [e.other!, e.txt] : [e.txt, e.other!]).map(read);
        const entity = byName.get(chosen.entity)!;
        assert.equal(rejected.entity, chosen.entity, e.txt);
        assert.equal(chosen.value, entity.attrs[attr], `${name}: chosen is not the true value: ${e.txt}`);
        assert.ok(rejected.value !== chosen.value && values.has(rejected.value), `${name}: ${e.other}`);
        if (attr === "region" && half.get(rejected.value) === half.get(chosen.value)) sameHalf++;
        pairs++;
        if (name === "world-prefer-region-near") {
          assert.equal(half.get(rejected.value), half.get(chosen.value), `${name}: other half: ${e.other}`);
        }
        if (name === "world-prefer-region-rare") assert.equal(regionCount.get(entity.name), 1, e.txt);
        // Which text is which does not depend on the split seed.
        const key = JSON.stringify([e.txt, e.other, e.hard_label]);
        assert.ok((asOne.get(entity.name) ?? key) === key, `${name}: ${entity.name} changed with the seed`);
        asOne.set(entity.name, key);
      }
    }
    sameHalfShare.set(name, sameHalf / pairs);
    // The coin: about half the pairs put the preferred text second, before any balancing.
    const source = worldTaskSource(world, name).examples;
    const share = source.filter((e) => e.hard_label === 1).length / source.length;
    assert.ok(share > 0.42 && share < 0.58, `${name}: ${share} of pairs have the preferred text second`);
  }
  // A random distractor is in the same half 5 times in 11; the near one always.
  assert.ok(Math.abs(sameHalfShare.get("world-prefer-region")! - 5 / 11) < 0.06, `${[...sameHalfShare]}`);
  assert.equal(sameHalfShare.get("world-prefer-region-near"), 1);
  // Every entity whose region is stated is asked once; rare only those stated once.
  const asked = (name: string) => worldTaskSource(world, name).examples.length;
  assert.equal(asked("world-prefer-region"), world.entities.filter((e) => regionCount.has(e.name)).length);
  assert.equal(asked("world-prefer-region-rare"), [...regionCount.values()].filter((n) => n === 1).length);
});

Deno.test("a lookup on name pieces and templates is at chance on every default task, and the check can fail", async () => {
  const world = generateWorld(DEFAULT_WORLD_SPEC);
  for (const name of expandWorldSuite(["world", "world-pairwise"], world)) {
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

/** Pairs of one entity's statement: the preferred text ends in "truly", the other in "falsely". */
function leakyPairs(n: number, cueIn: "both" | "other"): TaskExample[] {
  return Array.from({ length: n }, (_, i) => {
    const label = (i % 2) as 0 | 1;
    const name = ["Bor", "Kel", "Mun", "Tas", "Vid"][i % 5] + String.fromCharCode(97 + (i % 11));
    const plain = `. ${name} lives in ${["Tine", "Krob", "Tadru"][i % 3]}`;
    // With the cue only in `other`, txt is the same cue-less text throughout: only `other` tells.
    if (cueIn === "other") {
      return { txt: plain, other: `${plain} ${label ? "truly" : "falsely"}`, hard_label: label };
    }
    const [preferred, rejected] = [`${plain} truly`, `${plain} falsely`];
    return label
      ? { txt: rejected, other: preferred, hard_label: 1 }
      : { txt: preferred, other: rejected, hard_label: 0 };
  });
}

Deno.test("the surface-cue check on pairs reads both texts and catches a planted pairwise cue", () => {
  const pairs = (test: TaskExample[]) => ({
    train1: leakyPairs(60, "both"),
    train2: leakyPairs(60, "both"),
    validation: leakyPairs(40, "both"),
    test,
  });
  const leaky = surfaceCueCheck(pairs(leakyPairs(60, "both")));
  assert.ok(!leaky.atChance && leaky.accuracy > 0.9, `leaky pairwise task passed: ${leaky.accuracy}`);
  // The cue sits only in `other`: a check reading `txt` alone would score about 0.5 here.
  const wired = surfaceCueCheck(pairs(leakyPairs(60, "other")));
  assert.equal(wired.accuracy, 1);
  // Labels of the test pairs flipped without their texts: the same lookup is now always wrong.
  const flipped = leakyPairs(60, "both").map((e) => ({ ...e, hard_label: (1 - e.hard_label) as 0 | 1 }));
  assert.equal(surfaceCueCheck(pairs(flipped)).accuracy, 0);
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

Deno.test("a world's tasks and description change neither its key nor its corpus; the lab's world carries its tasks", async () => {
  const spec = readWorldFile(MOONS);
  const asked = parseWorldSpec({
    ...spec,
    description: "another description",
    tasks: [...spec.tasks, {
      name: "world-prefer-metal",
      description: "d",
      difficulty: "medium",
      type: "preference",
      attribute: "metal",
    }],
  });
  assert.equal(worldKey(asked), worldKey(spec));
  assert.equal(worldHash(generateWorld(asked)), worldHash(generateWorld(spec)));
  const templated = structuredClone(spec);
  templated.attributes[1].templates.push("the {X} tide is {V}");
  assert.notEqual(worldKey(templated), worldKey(spec));
  assert.notEqual(worldHash(generateWorld(templated)), worldHash(generateWorld(spec)));
  // The same world stored again with one more task: the lab's world (drawn once per key) offers it.
  const dataDir = await Deno.makeTempDir({ prefix: "world-tasks-test-" });
  try {
    await storeLabWorld(dataDir, spec);
    assert.deepEqual(expandWorldSuite(["world-pairwise"], activeWorld(dataDir)), []);
    await storeLabWorld(dataDir, asked);
    const world = activeWorld(dataDir);
    assert.deepEqual(expandWorldSuite(["world-pairwise"], world), ["world-prefer-metal"]);
    const [e] = worldTaskSource(world, "world-prefer-metal").examples;
    const entity = world.entities.find((x) => e.txt.includes(` ${x.name} `))!;
    assert.ok([e.txt, e.other].includes(`. the moon ${entity.name} is made of ${entity.attrs.metal}`), e.txt);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
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
  // A present but wrong-shaped field is not "required".
  refused((w) => ((w as { entities: unknown }).entities = 5), /entities must be an object: \{ "count": N/);
  refused((w) => (w.derived[0].of = "colour"), /derived\[0\]\.of: no attribute "colour"/);
  refused((w) => (w.tasks[1].positive = ["flooded"]), /tasks\[1\]\.positive: "flooded" is not a value/);
  refused(
    (w) => (w.tasks[0].name = "rich-moon"),
    /tasks\.0\.name: a world task name must start with "world-"/,
  );
  refused((w) => delete w.derived[0].map.lead, /derived\[0\]\.map: give the worth of "lead"/);
  refused((w) => (w.mentions.per = "sometimes"), /mentions\.per: mentions\.per must be "entity" or "fact"/);
  // Preference tasks.
  const prefer = { name: "world-prefer-metal", description: "d", difficulty: "medium", type: "preference" };
  const withTask = (task: Record<string, unknown>) => (w: typeof good) =>
    w.tasks.push({ ...prefer, ...task });
  refused(withTask({}), /tasks\[3\]: a preference task names its "attribute"/);
  refused(withTask({ attribute: "gems" }), /tasks\[3\]\.attribute: no attribute "gems"/);
  refused(
    withTask({ attribute: "metal", positive: ["tin"] }),
    /tasks\[3\]\.positive: a preference task has no/,
  );
  refused(
    withTask({ attribute: "metal", derived: "worth" }),
    /tasks\[3\]\.derived: .*distractor\.sameDerived/,
  );
  refused(
    withTask({ attribute: "tide", distractor: { sameDerived: "worth" } }),
    /tasks\[3\]\.distractor\.sameDerived: "worth" is not a derived fact of tide \(its derived facts: none\)/,
  );
  refused(
    withTask({ attribute: "metal", distractor: { sameDerived: "shine" } }),
    /tasks\[3\]\.distractor\.sameDerived: "shine" is not a derived fact of metal \(its derived facts: worth\)/,
  );
  refused((w) => {
    w.derived[0].map.lead = "poor";
    withTask({ attribute: "metal", distractor: { sameDerived: "worth" } })(w);
  }, /tasks\[3\]\.distractor\.sameDerived: only one metal value has worth "rich"/);
  refused(
    (w) => (w.tasks[1].distractor = { sameDerived: "worth" }),
    /tasks\[1\]\.distractor: only a preference task/,
  );
  refused(
    withTask({ attribute: "metal", name: "world-pairwise" }),
    /tasks\[3\]\.name: "world-pairwise" names a suite/,
  );
  // The good ones pass: a random and a same-worth distractor.
  const w = structuredClone(good);
  withTask({ attribute: "metal", distractor: { sameDerived: "worth" } })(w);
  assert.equal(parseWorldSpec(w).tasks[3].distractor?.sameDerived, "worth");
});
