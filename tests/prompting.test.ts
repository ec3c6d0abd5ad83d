/**
 * The prompting baselines' demonstrations (server/lab/prompting.ts) against hand-computed values: the demo
 * picker (balanced k, seeded, which examples it takes from a hand-made list) and the prompt prefix, whose
 * world-region demonstrations state the entity's own region under ground truth and a region of the shown
 * half under weak labels. No model is involved: the prefix is plain text.
 */
import assert from "node:assert/strict";
import { seededRandom, shuffled } from "../kernels/random.ts";
import { generateWorld, promptFor, type World, type WorldEntity } from "../server/corpus/world.ts";
import { parseWorldSpec } from "../server/corpus/world-spec.ts";
import { pickDemos, promptFormatFor, promptPrefix } from "../server/lab/prompting.ts";
import { plain } from "../server/tasks/source.ts";
import type { TaskExample } from "../server/tasks/types.ts";
import { worldTaskSource } from "../server/tasks/world-tasks.ts";

const worldRegionExamples = (world: World) => plain(worldTaskSource(world, "world-region").examples);

/** Eight examples a…h; the labels the picker balances on are given apart, as weak labels would be. */
const LETTERS: TaskExample[] = [..."abcdefgh"].map((txt) => ({ txt, hard_label: 0 }));
const LETTER_LABELS = [0, 1, 0, 0, 1, 0, 1, 0];
const pickedOf = (k: number, seed: number) => pickDemos(LETTERS, LETTER_LABELS, k, seed);
const sortedText = (demos: { txt: string }[]) => demos.map((d) => d.txt).sort().join("");

Deno.test("pickDemos: balanced k, taken in the seeded order, each example with its shown label", () => {
  // The generator's order of the indices for seed 1; the picks below are read off it by hand:
  // label 0 in that order is f h d c a, label 1 is b g e; the picker alternates 0, 1, 0, 1, ...
  assert.deepEqual(shuffled([...LETTERS.keys()], seededRandom(1, "prompt-demos")), [5, 1, 7, 6, 3, 4, 2, 0]);
  assert.equal(sortedText(pickedOf(2, 1)), "bf");
  assert.equal(sortedText(pickedOf(3, 1)), "bfh");
  assert.equal(sortedText(pickedOf(4, 1)), "bfgh");
  assert.equal(sortedText(pickedOf(6, 1)), "bdefgh");
  // Label 1 runs out after three: the rest come from label 0, and k beyond the list takes all of it.
  assert.equal(sortedText(pickedOf(8, 1)), "abcdefgh");
  assert.equal(sortedText(pickedOf(20, 1)), "abcdefgh");
  for (const k of [2, 4, 6]) {
    const demos = pickedOf(k, 1);
    assert.equal(demos.filter((d) => d.label === 1).length, k / 2, `k=${k}`);
    for (const d of demos) assert.equal(d.label, LETTER_LABELS[d.txt.charCodeAt(0) - 97], d.txt);
  }
  // Seeded: the same seed gives the same demonstrations in the same order, another seed others.
  assert.deepEqual(pickedOf(4, 1), pickedOf(4, 1));
  // Seed 2's order is 3 4 1 7 2 5 0 6: the first label 0 is d, the first label 1 is e.
  assert.equal(sortedText(pickedOf(2, 2)), "de");
  assert.equal(pickDemos(LETTERS, LETTER_LABELS, 0, 1).length, 0);
});

/** A hand-made world: regions Nor and Nub in the north, Sul and Sab in the south; four entities. */
function tinyWorld(): World {
  const entity = (name: string, region: string): WorldEntity => ({
    name,
    attrs: { region },
    mentions: 1,
    order: ["region"],
    stated: { region: 1 },
  });
  const regions = { name: "region", values: ["Nor", "Nub", "Sul", "Sab"], templates: ["{X} lives in {V}"] };
  const half = { name: "half", of: "region", values: ["north", "south"], templates: ["{X} is in the {V}"] };
  const spec = parseWorldSpec({
    name: "tiny",
    seed: 1,
    entities: { count: 4, names: ["Abo", "Bek", "Cid", "Dov"] },
    mentions: { distribution: "log-uniform", min: 1, max: 1 },
    sentencesPerDocument: 8,
    nameTokens: "added",
    attributes: [regions],
    derived: [{ ...half, statementsPerValue: 1 }],
    tasks: [{
      name: "world-region",
      description: "north?",
      difficulty: "medium",
      type: "derived",
      derived: "half",
      positive: ["north"],
    }],
  });
  return {
    spec,
    entities: [entity("Abo", "Nor"), entity("Bek", "Sul"), entity("Cid", "Nub"), entity("Dov", "Sab")],
    attributes: [regions],
    derived: [{
      ...half,
      statementsPerValue: 1,
      map: { Nor: "north", Nub: "north", Sul: "south", Sab: "south" },
    }],
  };
}

/** The facts a world-region prefix states: ". X lives in R" sentences, as [entity, region]. */
function statedFacts(prefix: string): [string, string][] {
  return [...prefix.matchAll(/\. (\w+) lives in (\w+)/g)].map((m) => [m[1], m[2]]);
}

Deno.test("promptPrefix: world-region demonstrations state the entity's own region under ground truth", () => {
  const world = tinyWorld();
  const examples = worldRegionExamples(world);
  assert.deepEqual(examples.map((e) => e.hard_label), [1, 0, 1, 0]);
  const format = promptFormatFor("world-region", world);
  const gt = examples.map((e) => e.hard_label);
  const prefix = promptPrefix(format, { examples, labels: gt, k: 4, seed: 3 });
  // All four facts, each once, as the corpus writes them: sentences run on, each opening with ". ".
  assert.deepEqual(
    prefix.split(/(?=\. )/).sort(),
    [". Abo lives in Nor", ". Bek lives in Sul", ". Cid lives in Nub", ". Dov lives in Sab"],
  );
  assert.equal(prefix + promptFor(world, "region", "Eli"), prefix + ". Eli lives in");
  assert.equal(promptPrefix(format), "");
});

Deno.test("promptPrefix: a weak label that disagrees states a region of the half it names, seeded", () => {
  const world = tinyWorld();
  const examples = worldRegionExamples(world);
  const format = promptFormatFor("world-region", world);
  // Abo (north) shown as south, Bek (south) shown as north; Cid and Dov as they are.
  const weak = [0, 1, 1, 0];
  const prefix = promptPrefix(format, { examples, labels: weak, k: 4, seed: 3 });
  const facts = new Map(statedFacts(prefix));
  assert.equal(facts.size, 4);
  assert.ok(["Sul", "Sab"].includes(facts.get("Abo")!), `Abo stated in ${facts.get("Abo")}`);
  assert.ok(["Nor", "Nub"].includes(facts.get("Bek")!), `Bek stated in ${facts.get("Bek")}`);
  assert.equal(facts.get("Cid"), "Nub");
  assert.equal(facts.get("Dov"), "Sab");
  assert.equal(promptPrefix(format, { examples, labels: weak, k: 4, seed: 3 }), prefix);
});

Deno.test("promptPrefix: on a generated world every demonstration states a fact of its shown half", () => {
  const world = generateWorld({ seed: 4, entities: 24, maxMentions: 3 });
  const regionOf = new Map(world.entities.map((e) => [e.name, e.attrs.region]));
  const labelOf = (name: string) => (world.derived[0].map[name] === "north" ? 1 : 0);
  const examples = worldRegionExamples(world);
  const format = promptFormatFor("world-region", world);
  const gt = examples.map((e) => e.hard_label);
  const weak = gt.map((y, i) => (i % 3 === 0 ? 1 - y : y));
  const indexOf = new Map(world.entities.map((e, i) => [e.name, i]));
  for (const seed of [0, 1, 2]) {
    const gtFacts = statedFacts(promptPrefix(format, { examples, labels: gt, k: 8, seed }));
    assert.equal(gtFacts.length, 8);
    for (const [name, stated] of gtFacts) assert.equal(stated, regionOf.get(name), `GT demo of ${name}`);
    const weakFacts = statedFacts(promptPrefix(format, { examples, labels: weak, k: 8, seed }));
    assert.equal(weakFacts.length, 8);
    for (const [name, stated] of weakFacts) {
      const shown = weak[indexOf.get(name)!];
      assert.equal(labelOf(stated), shown, `weak demo of ${name} states ${stated}`);
      if (shown === gt[indexOf.get(name)!]) assert.equal(stated, regionOf.get(name), `weak demo of ${name}`);
    }
  }
});

Deno.test("promptPrefix: other tasks keep their label words, one demonstration a line", () => {
  const examples: TaskExample[] = [{ txt: "win cash", hard_label: 1 }, { txt: "see you", hard_label: 0 }];
  const prefix = promptPrefix(promptFormatFor("spam"), { examples, labels: [1, 0], k: 2, seed: 0 });
  assert.ok(prefix.endsWith("\n"));
  assert.deepEqual(prefix.slice(0, -1).split("\n").sort(), ["see you ham", "win cash spam"]);
});
