// The synthetic knowledge world: seeded entities with invented names and attributes, rendered into a
// corpus of statements whose ground truth is known, so what a pretrained model knows can be measured.
//
// Each entity has kind (8 values), region (12 invented places, six in the "north" half, six in the
// "south"), colour (8), diet (3) and size (2). It is mentioned a long-tailed number of times (log-uniform
// 1–40 by default, or Zipf); each mention states one fact, the region first, then the other attributes
// in a seeded order, cycling — so an entity mentioned once states only its region. Sentences such as
// "Melbra is in the north" link regions to their halves. Statements are shuffled into documents.
//
// Names, regions and value words are one added token each by default (nameTokens: "bpe" keeps GPT-2's
// pieces): the fact then sits in one next-token prediction (". X lives in" → " V"), as in the reference
// run where weak-to-strong showed; the measurements behind the choice are in docs/notebook.md.

// The synthetic knowledge world: seeded entities with invented names and attributes, rendered into a
// corpus of statements whose ground truth is known, so what a pretrained model knows can be measured.
// A world file (server/corpus/world-schema.ts; the lab's in server/corpus/worlds/) declares the entities, the
// attributes with their values and paraphrase templates, how often facts are stated, the derived
// (two-hop) facts stated about attribute values, and the tasks; this module draws and renders it.
//
// With mentions per entity, an entity's statements cycle through its attributes (the first attribute
// first, the others in a seeded order), so an entity mentioned once states only its first attribute; with
// mentions per fact, each fact draws its own count. Derived facts ("Melbra is in the north") are stated
// about values, never about entities. Statements are shuffled into documents.
//
// Names, invented values and value words BPE splits are one added token each by default (nameTokens:
// "bpe" keeps GPT-2's pieces): the fact then sits in one next-token prediction (". X lives in" → " V"), as
// in the reference run where weak-to-strong showed; the measurements behind it are in docs/notebook.md.

import { createHash } from "node:crypto";
import { createRandom, type Random } from "../../kernels/random.ts";
import type { WorldSpec } from "./world-schema.ts";
import { createTokenizer, DEFAULT_MERGES } from "./tokenizer.ts";
import {
  activeWorldSpec,
  CLASSIC_WORLD_SPEC,
  pretrainingSpec,
  readWorldJson,
  worldKey,
  type WorldKnobs,
  worldSpecWith,
} from "./world-spec.ts";

export interface WorldEntity {
  name: string;
  attrs: Record<string, string>;
  /** Statements about this entity in the full rendering. */
  mentions: number;
  /** The attributes in the order the entity's statements take them (the first attribute first). */
  order: string[];
  /** Statements of each attribute's fact in the full rendering (0: never stated). */
  stated: Record<string, number>;
}

export interface WorldAttribute {
  name: string;
  values: string[];
  /** Template 0 is the canonical wording (promptFor asks with its prefix). */
  templates: string[];
}

/** A fact stated about an attribute's values (region → half), never about the entities. */
export interface WorldDerived {
  name: string;
  of: string;
  values: string[];
  /** The derived value of each of the attribute's values. */
  map: Record<string, string>;
  templates: string[];
  statementsPerValue: number;
}

export interface World {
  spec: WorldSpec;
  entities: WorldEntity[];
  attributes: WorldAttribute[];
  derived: WorldDerived[];
}

export interface LeaveOut {
  share?: number; // share of stated (entity, attribute) facts whose statements are all left out
  entities?: Iterable<string>; // every fact of these entities is left out
  seed?: number; // which facts the share picks (default: the world's seed)
}

export interface KnowledgeQuery {
  entity: string;
  prompt: string;
  answer: string;
  candidates: string[];
  mentions: number;
  timesStated: number; // statements of this very fact in the full rendering (0: never stated)
}

type Syllables = NonNullable<WorldSpec["entities"]["syllables"]>;

function inventName(random: Random, s: Syllables): string {
  const count = s.min + random.int(s.max - s.min + 1);
  let name = "";
  for (let i = 0; i < count; i++) {
    name += random.pick(s.onsets) + random.pick(s.vowels) + (i === count - 1 ? random.pick(s.codas) : "");
  }
  return name[0].toUpperCase() + name.slice(1);
}

type MentionDraw = Pick<WorldSpec["mentions"], "distribution" | "min" | "max" | "zipfExponent">;

function drawMentions(random: Random, o: MentionDraw): number {
  if (o.distribution === "zipf") {
    // Inverse-CDF sampling over the finite support min..max.
    const s = o.zipfExponent ?? 1.1;
    let total = 0;
    for (let m = o.min; m <= o.max; m++) total += m ** -s;
    let u = random.next() * total;
    for (let m = o.min; m <= o.max; m++) {
      u -= m ** -s;
      if (u <= 0) return m;
    }
    return o.max;
  }
  const logMin = Math.log(o.min);
  const logMax = Math.log(o.max);
  const m = Math.round(Math.exp(logMin + random.next() * (logMax - logMin)));
  return Math.min(o.max, Math.max(o.min, m));
}

/** How often each attribute is stated when the entity's statements cycle through `order`. */
function cycledStatements(order: string[], mentions: number): Record<string, number> {
  const stated: Record<string, number> = {};
  order.forEach((attr, position) => {
    stated[attr] = mentions <= position ? 0 : Math.floor((mentions - 1 - position) / order.length) + 1;
  });
  return stated;
}

/** Each derived fact's map: given, or the attribute's values in order split into equal blocks. */
function derivedFacts(spec: WorldSpec, attributes: WorldAttribute[]): WorldDerived[] {
  return spec.derived.map((d) => {
    const of = attributes.find((a) => a.name === d.of)!;
    const block = of.values.length / d.values.length;
    const map = Object.fromEntries(
      of.values.map((v, i) => [v, d.map ? (d.map[v] ?? d.map[`#${i}`]) : d.values[Math.floor(i / block)]]),
    );
    return {
      name: d.name,
      of: d.of,
      values: d.values,
      map,
      templates: d.templates,
      statementsPerValue: d.statementsPerValue,
    };
  });
}

/**
 * Draws a world from its definition (or, given knobs, from the classic world with those knobs turned).
 * Order of draws: invented values, then per entity its name, values, statement count(s) and order.
 */
export function generateWorld(input: WorldSpec | Partial<WorldKnobs> = {}): World {
  const spec = "attributes" in input ? input as WorldSpec : worldSpecWith(CLASSIC_WORLD_SPEC, input);
  const random = createRandom(spec.seed);
  const used = new Set<string>();
  const syllables = spec.entities.syllables;
  const uniqueName = () => {
    if (!syllables) throw new Error("invented names need entities.syllables in the world file");
    for (let attempt = 0; attempt < 10_000; attempt++) {
      const name = inventName(random, syllables);
      if (!used.has(name)) {
        used.add(name);
        return name;
      }
    }
    throw new Error(`cannot invent ${spec.entities.count} distinct names; ask for fewer entities`);
  };
  const attributes: WorldAttribute[] = spec.attributes.map((a) => ({
    name: a.name,
    values: a.values ?? Array.from({ length: a.invent! }, uniqueName),
    templates: a.templates,
  }));
  const [first, ...rest] = attributes.map((a) => a.name);
  const entities: WorldEntity[] = [];
  for (let i = 0; i < spec.entities.count; i++) {
    const name = spec.entities.names ? spec.entities.names[i] : uniqueName();
    const attrs: Record<string, string> = {};
    for (const attribute of attributes) attrs[attribute.name] = random.pick(attribute.values);
    // Per fact: each attribute draws its count; per entity: one count, cycled through the order.
    const perFact = spec.mentions.per === "fact"
      ? Object.fromEntries(
        spec.attributes.map((a) => [a.name, drawMentions(random, a.mentions ?? spec.mentions)]),
      )
      : undefined;
    const mentions = perFact
      ? Object.values(perFact).reduce((sum, n) => sum + n, 0)
      : drawMentions(random, spec.mentions);
    const order = [first, ...random.shuffle(rest.slice())];
    entities.push({ name, attrs, mentions, order, stated: perFact ?? cycledStatements(order, mentions) });
  }
  return { spec, entities, attributes, derived: derivedFacts(spec, attributes) };
}

const drawnWorlds = new Map<string, World>();

/** The lab's world for a data directory (world-spec.ts says which), drawn once per definition. */
export function activeWorld(dataDir: string): World {
  const spec = activeWorldSpec(dataDir);
  const key = worldKey(spec);
  let world = drawnWorlds.get(key);
  if (!world) {
    world = generateWorld(spec);
    drawnWorlds.set(key, world);
  }
  // The key leaves out the tasks (they do not change the draw): the world carries this spec's tasks.
  return world.spec === spec ? world : { ...world, spec };
}

/** How many statements of the entity state this attribute in the full rendering. */
export function timesStated(entity: WorldEntity, attr: string): number {
  return entity.stated[attr] ?? 0;
}

function fill(template: string, subject: string, value: string): string {
  return template.replace("{X}", subject).replace("{V}", value);
}

/** The templates of an attribute or a derived fact. */
function templatesOf(world: World, attr: string): string[] {
  const found = world.attributes.find((a) => a.name === attr) ?? world.derived.find((d) => d.name === attr);
  if (!found) {
    const known = [...world.attributes, ...world.derived].map((a) => a.name).join(", ");
    throw new Error(`unknown world attribute "${attr}" (known: ${known})`);
  }
  return found.templates;
}

/**
 * The canonical pretraining wording before the value: ". X lives in" → next word is X's region. For a
 * derived fact the subject is a value of its attribute: ". Melbra is in the" → "north" or "south".
 */
export function promptFor(world: World, attr: string, subject: string): string {
  const canonical = templatesOf(world, attr)[0];
  const cut = canonical.indexOf(" {V}");
  return ". " + (cut < 0 ? canonical : canonical.slice(0, cut)).replace("{X}", subject);
}

export const factKey = (entity: string, attr: string) => `${entity}\t${attr}`;

/** The attributes an entity's statements take, in rendering order (each as often as it is stated). */
function statementAttributes(world: World, entity: WorldEntity): string[] {
  if (world.spec.mentions.per === "fact") {
    return entity.order.flatMap((attr) => Array(entity.stated[attr]).fill(attr));
  }
  return Array.from({ length: entity.mentions }, (_, k) => entity.order[k % entity.order.length]);
}

// The stated facts that a leave-out removes from the rendering, as factKey strings.
export function leftOutFacts(world: World, leaveOut: LeaveOut = {}): Set<string> {
  const out = new Set<string>();
  const share = leaveOut.share ?? 0;
  if (!(share >= 0 && share <= 1)) throw new Error(`leave-out share must be in [0, 1], got ${share}`);
  const names = new Set(world.entities.map((e) => e.name));
  const leftEntities = new Set<string>();
  for (const name of leaveOut.entities ?? []) {
    if (!names.has(name)) throw new Error(`leave-out entity "${name}" is not in the world`);
    leftEntities.add(name);
  }
  const random = createRandom((leaveOut.seed ?? world.spec.seed) + 7919);
  for (const entity of world.entities) {
    for (const attr of entity.order) {
      if (timesStated(entity, attr) === 0) continue;
      // Draw for every stated fact so the share's choice does not depend on the entity list.
      const drawn = random.next() < share;
      if (drawn || leftEntities.has(entity.name)) out.add(factKey(entity.name, attr));
    }
  }
  return out;
}

/** Every statement of the derived facts: [the attribute value, the derived fact, its value]. */
function derivedStatements(world: World, per: (d: WorldDerived) => number): [string, WorldDerived][] {
  const out: [string, WorldDerived][] = [];
  for (const d of world.derived) {
    const of = world.attributes.find((a) => a.name === d.of)!;
    for (const value of of.values) for (let k = 0; k < per(d); k++) out.push([value, d]);
  }
  return out;
}

// Renders the world into documents: every statement of a fact not left out, plus the derived facts'
// statements, shuffled by the world's seed, sentencesPerDocument per document, each opening with ". ".
export function renderWorldCorpus(world: World, opts: { leaveOut?: LeaveOut } = {}): string[] {
  const leftOut = leftOutFacts(world, opts.leaveOut);
  const random = createRandom(world.spec.seed + 104729);
  const sentences: string[] = [];
  for (const entity of world.entities) {
    for (const attr of statementAttributes(world, entity)) {
      const template = random.pick(templatesOf(world, attr));
      if (leftOut.has(factKey(entity.name, attr))) continue;
      sentences.push(fill(template, entity.name, entity.attrs[attr]));
    }
  }
  for (const [value, d] of derivedStatements(world, (d) => d.statementsPerValue)) {
    sentences.push(fill(random.pick(d.templates), value, d.map[value]));
  }
  random.shuffle(sentences);
  const documents: string[] = [];
  const perDocument = world.spec.sentencesPerDocument;
  for (let i = 0; i < sentences.length; i += perDocument) {
    // The leading ". " puts every sentence, the first included, in the context the prompts use.
    documents.push(". " + sentences.slice(i, i + perDocument).map((s) => s + ".").join(" "));
  }
  return documents;
}

// Every wording of each statement the rendering makes (same order as renderWorldCorpus before its
// shuffle, left-out facts skipped, then the derived facts): the training sampler draws one wording per
// use, so a fact is seen in all its paraphrases; without it a fact binds to the one template that stated
// it (docs/notebook.md).
export function worldStatementVariants(world: World, opts: { leaveOut?: LeaveOut } = {}): string[][] {
  const leftOut = leftOutFacts(world, opts.leaveOut);
  const variants: string[][] = [];
  for (const entity of world.entities) {
    for (const attr of statementAttributes(world, entity)) {
      if (leftOut.has(factKey(entity.name, attr))) continue;
      variants.push(templatesOf(world, attr).map((t) => fill(t, entity.name, entity.attrs[attr])));
    }
  }
  for (const [value, d] of derivedStatements(world, (d) => d.statementsPerValue)) {
    variants.push(d.templates.map((t) => fill(t, value, d.map[value])));
  }
  return variants;
}

// The world's validation text: one fresh restatement of every fact the training rendering states (a
// template drawn with another seed) and one statement of each derived fact per value, as one run of
// sentences like the training windows. Every fact here is also stated in training, so validation loss
// measures what pretraining can learn (memorized facts, paraphrases), not facts no model could have seen.
export function renderWorldValidation(world: World, opts: { leaveOut?: LeaveOut } = {}): string[] {
  const leftOut = leftOutFacts(world, opts.leaveOut);
  const random = createRandom(world.spec.seed + 15485863);
  const sentences: string[] = [];
  for (const entity of world.entities) {
    for (const attr of entity.order) {
      if (timesStated(entity, attr) === 0 || leftOut.has(factKey(entity.name, attr))) continue;
      sentences.push(fill(random.pick(templatesOf(world, attr)), entity.name, entity.attrs[attr]));
    }
  }
  for (const [value, d] of derivedStatements(world, (d) => Math.min(1, d.statementsPerValue))) {
    sentences.push(fill(random.pick(d.templates), value, d.map[value]));
  }
  random.shuffle(sentences);
  // One document: training windows are unbroken runs of sentences (no document separators), and so is
  // validation.
  return [". " + sentences.map((s) => s + ".").join(" ")];
}

export function knowledgeQueries(world: World, attr: string): KnowledgeQuery[] {
  const attribute = world.attributes.find((a) => a.name === attr);
  if (!attribute) {
    throw new Error(
      `unknown world attribute "${attr}" (known: ${world.attributes.map((a) => a.name).join(", ")})`,
    );
  }
  return world.entities.map((entity) => ({
    entity: entity.name,
    prompt: promptFor(world, attr, entity.name),
    answer: entity.attrs[attr],
    candidates: [...attribute.values],
    mentions: entity.mentions,
    timesStated: timesStated(entity, attr),
  }));
}

// The tokenizer's added tokens for this world: each name with its leading space (names always follow a
// space in the rendering), each invented value, and each value word that BPE would split. Empty when
// nameTokens is "bpe".
export function worldAddedTokens(world: World, merges = DEFAULT_MERGES): string[] {
  if (world.spec.nameTokens === "bpe") return [];
  const bpe = createTokenizer({ merges });
  const tokens = world.entities.map((e) => " " + e.name);
  const invented = new Set(world.spec.attributes.filter((a) => a.invent !== undefined).map((a) => a.name));
  const seen = new Set(tokens);
  const add = (token: string) => {
    if (!seen.has(token)) tokens.push(token);
    seen.add(token);
  };
  for (const attribute of world.attributes) {
    for (const value of attribute.values) {
      if (invented.has(attribute.name) || bpe.encode(" " + value).length > 1) add(" " + value);
    }
  }
  for (const d of world.derived) {
    for (const value of d.values) if (bpe.encode(" " + value).length > 1) add(" " + value);
  }
  return tokens;
}

/** The hash of what the corpus renders: the drawn world without its tasks (they never change the corpus). */
export function worldHash(world: World): string {
  const rendered = { ...world, spec: pretrainingSpec(world.spec) };
  return createHash("sha256").update(JSON.stringify(rendered)).digest("hex").slice(0, 16);
}

export async function saveWorld(world: World, path: string): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(world, null, 1) + "\n");
}

export async function loadWorld(path: string): Promise<World> {
  const world = await Promise.resolve().then(() => readWorldJson(path) as World);
  if (!world || !Array.isArray(world.entities) || !Array.isArray(world.attributes) || !world.spec) {
    throw new Error(`world file ${path} lacks spec, entities or attributes (a world drawn by an older lab?)`);
  }
  return world;
}
