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

import { createHash } from "node:crypto";
import { createRandom, type Random } from "../../kernels/random.ts";
import { createTokenizer, DEFAULT_MERGES } from "./tokenizer.ts";

export interface WorldOptions {
  seed: number;
  entities: number;
  minMentions: number;
  maxMentions: number;
  mentionDistribution: "log-uniform" | "zipf";
  zipfExponent: number; // used when mentionDistribution is "zipf": P(m) ∝ m^-s
  halfStatementsPerRegion: number;
  sentencesPerDocument: number;
  // "added": each invented name (and each value word that BPE splits) is one added token; "bpe": BPE pieces.
  nameTokens: "added" | "bpe";
}

export const DEFAULT_WORLD_OPTIONS: WorldOptions = {
  seed: 1,
  entities: 2000,
  minMentions: 1,
  maxMentions: 40,
  mentionDistribution: "log-uniform",
  zipfExponent: 1.1,
  halfStatementsPerRegion: 10,
  sentencesPerDocument: 8,
  nameTokens: "added",
};

/**
 * The lab's world: what the default ladder pretrains on (server/lab/lab-corpus.ts) and what the
 * `world-region` task asks about (tasks/world-region.ts) — one definition, so `lab tasks`, the API and
 * the pipeline see the same entities. 400 entities with 1–3 mentions each (region stated once per entity,
 * 713 statements) fit the 2-core machine's
 * pretraining budget (server/lab/ladder.ts); the 2,000-entity DEFAULT_WORLD_OPTIONS are for GPUs.
 * LAB_WORLD_ENTITIES=N builds it with N entities instead: about N/4 examples per split of `world-region`
 * (a probe student needs about 500 to show weak-to-strong: docs/notebook.md). Keep such a world in its
 * own LAB_DATA_DIR, with pretraining budgets scaled by N/400 (`lab pretrain --tokens`); a checkpoint of
 * another world is refused by its tokenizer id.
 */
export const LAB_WORLD_OPTIONS: Partial<WorldOptions> = { entities: labWorldEntities(), maxMentions: 3 };

function labWorldEntities(): number {
  const raw = typeof Deno === "undefined" ? undefined : Deno.env.get("LAB_WORLD_ENTITIES");
  if (raw === undefined || raw === "") return 400;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 40 || n > 20_000) {
    throw new Error(`LAB_WORLD_ENTITIES must be an integer from 40 to 20000, got "${raw}"`);
  }
  return n;
}

export interface WorldEntity {
  name: string;
  attrs: Record<string, string>;
  mentions: number;
  // The attribute stated by mention k is order[k % order.length]; region is always first.
  order: string[];
}

export interface WorldAttribute {
  name: string;
  values: string[];
  groups?: Record<string, string>;
}

export interface World {
  options: WorldOptions;
  entities: WorldEntity[];
  attributes: WorldAttribute[];
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

const KINDS = ["bird", "fish", "snake", "beetle", "deer", "frog", "wolf", "spider"];
const COLOURS = ["red", "blue", "green", "black", "white", "brown", "yellow", "grey"];
const DIETS = ["plants", "meat", "insects"];
const SIZES = ["big", "small"];
const HALVES = ["north", "south"];

// Template 0 of each attribute is the canonical wording; promptFor returns its prefix before the value.
const TEMPLATES: Record<string, string[]> = {
  region: ["{X} lives in {V}", "the {X} is found in {V}", "{X} comes from {V}"],
  kind: ["{X} is a {V}", "the {X} is a kind of {V}", "{X} belongs to the {V} family"],
  colour: ["the colour of {X} is {V}", "{X} has {V} skin", "the {X} is {V} in colour"],
  diet: ["{X} eats {V}", "the {X} feeds on {V}", "the diet of {X} is {V}"],
  size: ["{X} is very {V}", "the {X} is {V} in size"],
  half: ["{X} is in the {V}", "{X} lies in the {V}", "the land of {X} is in the {V}"],
};

export const WORLD_ATTRIBUTE_NAMES = ["region", "kind", "colour", "diet", "size"];

const ONSETS = [
  "b",
  "d",
  "f",
  "g",
  "k",
  "l",
  "m",
  "n",
  "p",
  "r",
  "s",
  "t",
  "v",
  "z",
  "br",
  "dr",
  "kr",
  "tr",
  "sh",
  "th",
];
const VOWELS = ["a", "e", "i", "o", "u", "a", "e", "o"];
const CODAS = ["", "", "", "n", "r", "l", "s", "k", "m"];

function inventName(random: Random): string {
  const syllables = 2 + random.int(2);
  let name = "";
  for (let s = 0; s < syllables; s++) {
    name += random.pick(ONSETS) + random.pick(VOWELS) + (s === syllables - 1 ? random.pick(CODAS) : "");
  }
  return name[0].toUpperCase() + name.slice(1);
}

function drawMentions(random: Random, o: WorldOptions): number {
  if (o.mentionDistribution === "zipf") {
    // Inverse-CDF sampling over the finite support minMentions..maxMentions.
    let total = 0;
    for (let m = o.minMentions; m <= o.maxMentions; m++) total += m ** -o.zipfExponent;
    let u = random.next() * total;
    for (let m = o.minMentions; m <= o.maxMentions; m++) {
      u -= m ** -o.zipfExponent;
      if (u <= 0) return m;
    }
    return o.maxMentions;
  }
  const logMin = Math.log(o.minMentions);
  const logMax = Math.log(o.maxMentions);
  const m = Math.round(Math.exp(logMin + random.next() * (logMax - logMin)));
  return Math.min(o.maxMentions, Math.max(o.minMentions, m));
}

function checkOptions(o: WorldOptions): void {
  const positiveInt = (key: keyof WorldOptions, min: number) => {
    const v = o[key] as number;
    if (!Number.isInteger(v) || v < min) {
      throw new Error(`world option ${key} must be an integer >= ${min}, got ${v}`);
    }
  };
  positiveInt("entities", 1);
  positiveInt("minMentions", 1);
  positiveInt("maxMentions", o.minMentions);
  positiveInt("halfStatementsPerRegion", 0);
  positiveInt("sentencesPerDocument", 1);
  if (o.mentionDistribution !== "log-uniform" && o.mentionDistribution !== "zipf") {
    throw new Error(
      `world option mentionDistribution must be "log-uniform" or "zipf", got ${o.mentionDistribution}`,
    );
  }
  if (o.nameTokens !== "added" && o.nameTokens !== "bpe") {
    throw new Error(`world option nameTokens must be "added" or "bpe", got ${o.nameTokens}`);
  }
}

export function generateWorld(opts: Partial<WorldOptions> = {}): World {
  const options: WorldOptions = { ...DEFAULT_WORLD_OPTIONS, ...opts };
  checkOptions(options);
  const random = createRandom(options.seed);
  const used = new Set<string>();
  const uniqueName = () => {
    for (let attempt = 0; attempt < 10_000; attempt++) {
      const name = inventName(random);
      if (!used.has(name)) {
        used.add(name);
        return name;
      }
    }
    throw new Error(`cannot invent ${options.entities} distinct names; ask for fewer entities`);
  };
  const regions = Array.from({ length: 12 }, uniqueName);
  const regionHalf: Record<string, string> = {};
  regions.forEach((r, i) => (regionHalf[r] = HALVES[i < 6 ? 0 : 1]));
  const attributes: WorldAttribute[] = [
    { name: "region", values: regions, groups: regionHalf },
    { name: "kind", values: KINDS },
    { name: "colour", values: COLOURS },
    { name: "diet", values: DIETS },
    { name: "size", values: SIZES },
  ];
  const entities: WorldEntity[] = [];
  for (let i = 0; i < options.entities; i++) {
    const name = uniqueName();
    const attrs: Record<string, string> = {};
    for (const attribute of attributes) attrs[attribute.name] = random.pick(attribute.values);
    const mentions = drawMentions(random, options);
    const order = ["region", ...random.shuffle(WORLD_ATTRIBUTE_NAMES.slice(1))];
    entities.push({ name, attrs, mentions, order });
  }
  return { options, entities, attributes };
}

// How many statements of the entity state this attribute in the full rendering.
export function timesStated(entity: WorldEntity, attr: string): number {
  const position = entity.order.indexOf(attr);
  if (position < 0 || entity.mentions <= position) return 0;
  return Math.floor((entity.mentions - 1 - position) / entity.order.length) + 1;
}

function fill(template: string, subject: string, value: string): string {
  return template.replace("{X}", subject).replace("{V}", value);
}

// The canonical pretraining wording before the value: ". X lives in" → next word is X's region.
// attr "half" takes a region name: ". Melbra is in the" → "north" or "south".
export function promptFor(attr: string, entityName: string): string {
  const templates = TEMPLATES[attr];
  if (!templates) {
    throw new Error(`unknown world attribute "${attr}" (known: ${Object.keys(TEMPLATES).join(", ")})`);
  }
  const canonical = templates[0];
  return ". " + canonical.slice(0, canonical.indexOf(" {V}")).replace("{X}", entityName);
}

export const factKey = (entity: string, attr: string) => `${entity}\t${attr}`;

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
  const random = createRandom((leaveOut.seed ?? world.options.seed) + 7919);
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

// Renders the world into documents: every statement of a fact not left out, plus the region→half
// sentences, shuffled by the world's seed, sentencesPerDocument per document, each opening with ". ".
export function renderWorldCorpus(world: World, opts: { leaveOut?: LeaveOut } = {}): string[] {
  const o = world.options;
  const leftOut = leftOutFacts(world, opts.leaveOut);
  const random = createRandom(o.seed + 104729);
  const sentences: string[] = [];
  for (const entity of world.entities) {
    for (let k = 0; k < entity.mentions; k++) {
      const attr = entity.order[k % entity.order.length];
      const template = random.pick(TEMPLATES[attr]);
      if (leftOut.has(factKey(entity.name, attr))) continue;
      sentences.push(fill(template, entity.name, entity.attrs[attr]));
    }
  }
  const region = world.attributes.find((a) => a.name === "region")!;
  for (const value of region.values) {
    for (let k = 0; k < o.halfStatementsPerRegion; k++) {
      sentences.push(fill(random.pick(TEMPLATES.half), value, region.groups![value]));
    }
  }
  random.shuffle(sentences);
  const documents: string[] = [];
  for (let i = 0; i < sentences.length; i += o.sentencesPerDocument) {
    // The leading ". " puts every sentence, the first included, in the context the prompts use.
    documents.push(". " + sentences.slice(i, i + o.sentencesPerDocument).map((s) => s + ".").join(" "));
  }
  return documents;
}

// Every wording of each statement the rendering makes (same order as renderWorldCorpus before its
// shuffle, left-out facts skipped, then the half sentences): the training sampler draws one wording per
// use, so a fact is seen in all its paraphrases; without it a fact binds to the one template that stated
// it (docs/notebook.md).
export function worldStatementVariants(world: World, opts: { leaveOut?: LeaveOut } = {}): string[][] {
  const leftOut = leftOutFacts(world, opts.leaveOut);
  const variants: string[][] = [];
  for (const entity of world.entities) {
    for (let k = 0; k < entity.mentions; k++) {
      const attr = entity.order[k % entity.order.length];
      if (leftOut.has(factKey(entity.name, attr))) continue;
      variants.push(TEMPLATES[attr].map((t) => fill(t, entity.name, entity.attrs[attr])));
    }
  }
  const region = world.attributes.find((a) => a.name === "region")!;
  for (const value of region.values) {
    for (let k = 0; k < world.options.halfStatementsPerRegion; k++) {
      variants.push(TEMPLATES.half.map((t) => fill(t, value, region.groups![value])));
    }
  }
  return variants;
}

// The world's validation text: one fresh restatement of every fact the training rendering states (a
// template drawn with another seed) and one statement of each region's half, as one run of sentences like the
// training windows. Every fact here is also stated in training, so validation loss measures what
// pretraining can learn (memorized facts, paraphrases), not facts no model could have seen.
export function renderWorldValidation(world: World, opts: { leaveOut?: LeaveOut } = {}): string[] {
  const o = world.options;
  const leftOut = leftOutFacts(world, opts.leaveOut);
  const random = createRandom(o.seed + 15485863);
  const sentences: string[] = [];
  for (const entity of world.entities) {
    for (const attr of entity.order) {
      if (timesStated(entity, attr) === 0 || leftOut.has(factKey(entity.name, attr))) continue;
      sentences.push(fill(random.pick(TEMPLATES[attr]), entity.name, entity.attrs[attr]));
    }
  }
  const region = world.attributes.find((a) => a.name === "region")!;
  if (o.halfStatementsPerRegion > 0) {
    for (const value of region.values) {
      sentences.push(fill(random.pick(TEMPLATES.half), value, region.groups![value]));
    }
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
    prompt: promptFor(attr, entity.name),
    answer: entity.attrs[attr],
    candidates: [...attribute.values],
    mentions: entity.mentions,
    timesStated: timesStated(entity, attr),
  }));
}

// The tokenizer's added tokens for this world: each name with its leading space (names always follow a
// space in the rendering), and each value word that BPE would split. Empty when nameTokens is "bpe".
export function worldAddedTokens(world: World, merges = DEFAULT_MERGES): string[] {
  if (world.options.nameTokens === "bpe") return [];
  const bpe = createTokenizer({ merges });
  const tokens = world.entities.map((e) => " " + e.name);
  for (const attribute of world.attributes) {
    for (const value of attribute.values) {
      if (attribute.name === "region" || bpe.encode(" " + value).length > 1) tokens.push(" " + value);
    }
  }
  for (const half of HALVES) if (bpe.encode(" " + half).length > 1) tokens.push(" " + half);
  return tokens;
}

export function worldHash(world: World): string {
  return createHash("sha256").update(JSON.stringify(world)).digest("hex").slice(0, 16);
}

export async function saveWorld(world: World, path: string): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(world, null, 1) + "\n");
}

export async function loadWorld(path: string): Promise<World> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new Error(`cannot read world file ${path}: ${(err as Error).message}`);
  }
  let world: World;
  try {
    world = JSON.parse(text);
  } catch (err) {
    throw new Error(`world file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (!world || !Array.isArray(world.entities) || !Array.isArray(world.attributes) || !world.options) {
    throw new Error(`world file ${path} lacks options, entities or attributes`);
  }
  return world;
}
