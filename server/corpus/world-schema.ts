/**
 * A world file: the definition of a synthetic knowledge world (server/corpus/world.ts renders it) and of
 * the tasks it offers. JSON, validated here; every error names the field and the fix. The lab's default
 * world is such a file (server/corpus/worlds/default.json).
 *
 * - entities: how many, named from a list or invented from syllables;
 * - mentions: how many statements each entity gets (drawn per entity); statement k states the entity's
 *   attribute order[k mod attributes] — the first attribute first, the others in a seeded order — so an
 *   entity with m mentions states each fact about m / attributes times;
 * - attributes: values (listed, or invented like place names) and paraphrase templates ({X} the entity,
 *   {V} the value; template 0 is the canonical wording and ends with {V}: the tasks and the knowledge
 *   probe ask with its prefix);
 * - derived: facts stated about an attribute's VALUES, never about the entities (two-hop facts);
 * - tasks: binary questions about the entities, split by entity.
 */

import { z } from "zod";

/**
 * The names that stand for a world's tasks in a sweep (`--tasks world`): its classification tasks, and its
 * pairwise (preference) tasks. No task may take one.
 */
export const WORLD_SUITES = { classification: "world", pairwise: "world-pairwise" } as const;

const NAME = /^[a-z][a-z0-9-]{0,39}$/;
const name = (what: string) =>
  z.string().regex(NAME, `${what} must be 1–40 lowercase letters, digits or '-', starting with a letter`);
const word = (what: string) =>
  z.string().regex(/^[A-Za-z][A-Za-z'-]{0,39}$/, `${what} must be one word of letters (no spaces)`);
const count = (what: string, min: number, max: number) =>
  z.number({ error: `${what} must be a number` }).int(`${what} must be an integer`)
    .min(min, `${what} must be at least ${min}`).max(max, `${what} must be at most ${max}`);

const template = z.string().refine((t) => t.includes("{X}") && t.includes("{V}"), {
  message: 'a template must contain "{X}" (the subject) and "{V}" (the value), e.g. "{X} lives in {V}"',
});
const templates = z.array(template).min(1, "give at least one template");
const canonicalFirst = (list: string[]) => list.length === 0 || list[0].endsWith(" {V}");
const CANONICAL = 'template 0 is the canonical wording and must end with " {V}" (e.g. "{X} eats {V}")';

const Mentions = z.object({
  distribution: z.enum(["log-uniform", "zipf"], { error: 'distribution must be "log-uniform" or "zipf"' }),
  min: count("mentions.min", 1, 1000),
  max: count("mentions.max", 1, 1000),
  zipfExponent: z.number().positive("zipfExponent must be > 0").optional(),
});

export const WorldAttributeSpec = z.object({
  name: name("attribute name"),
  /** Listed value words, or `invent: n` invented names (places, …) drawn from the syllables. */
  values: z.array(word("a value")).min(2, "an attribute needs at least 2 values").max(64).optional(),
  invent: count("invent", 2, 64).optional(),
  templates: templates.refine(canonicalFirst, CANONICAL),
  /** With mentions.per "fact": this attribute's own distribution of statements per fact. */
  mentions: Mentions.optional(),
}).refine((a) => (a.values === undefined) !== (a.invent === undefined), {
  message: 'give either "values" (a list of words) or "invent" (how many names to invent), not both',
});

export const WorldDerivedSpec = z.object({
  name: name("derived fact name"),
  /** The attribute whose values the fact is about (e.g. region → half). */
  of: name("of"),
  values: z.array(word("a derived value")).min(2, "a derived fact needs at least 2 values"),
  /**
   * Which derived value each attribute value has ("#0", "#1", … for invented values, by index); absent:
   * the values in order, in equal blocks.
   */
  map: z.record(z.string(), z.string()).optional(),
  templates,
  /** Statements of each value's derived fact in the corpus. */
  statementsPerValue: count("statementsPerValue", 0, 1000),
});

const statedFilter = z.object({
  min: count("stated.min", 0, 1000).optional(),
  max: count("stated.max", 0, 1000).optional(),
});

export const WorldTaskSpec = z.object({
  name: z.string().regex(
    /^world-[a-z0-9-]{1,40}$/,
    'a world task name must start with "world-" (e.g. "world-size"), then lowercase letters, digits or "-"',
  ),
  description: z.string().min(1, "describe the task in one line").max(200),
  difficulty: z.enum(["easy", "medium", "hard"], { error: 'difficulty must be "easy", "medium" or "hard"' }),
  /**
   * attribute: 1 when the entity's value of `attribute` is in `positive`;
   * derived:   1 when the derived fact of the entity's value is `positive[0]` (asked with the
   *            attribute's wording: the model must compose two facts);
   * relation:  two entities, 1 when they share the derived (or attribute) value;
   * preference: pairwise — the entity's true statement of `attribute` against one with another value
   *            (any other, or with `distractor.sameDerived` one sharing the true value's derived fact).
   */
  type: z.enum(["attribute", "derived", "relation", "preference"], {
    error: 'type must be "attribute", "derived", "relation" or "preference"',
  }),
  attribute: name("attribute").optional(),
  derived: name("derived").optional(),
  positive: z.array(z.string()).optional(),
  /** Preference tasks: where the rejected value comes from (absent: uniformly from the other values). */
  distractor: z.object({ sameDerived: name("distractor.sameDerived").optional() }).optional(),
  /** Keep only entities whose asked fact is stated this many times in pretraining (rare vs often). */
  stated: statedFilter.optional(),
});

export const WorldSpecSchema = z.object({
  name: name("world name"),
  description: z.string().max(500).optional(),
  seed: count("seed", 0, 2 ** 31 - 1),
  entities: z.object({
    count: count("entities.count", 4, 20_000),
    /** Names to use (at least count of them); absent: names invented from `syllables`. */
    names: z.array(word("a name")).optional(),
    syllables: z.object({
      onsets: z.array(z.string().regex(/^[a-z]*$/, "onsets are lowercase letters")).min(1),
      vowels: z.array(z.string().regex(/^[a-z]+$/, "vowels are lowercase letters")).min(1),
      codas: z.array(z.string().regex(/^[a-z]*$/, "codas are lowercase letters")).min(1),
      min: count("syllables.min", 1, 6),
      max: count("syllables.max", 1, 6),
    }).optional(),
  }, {
    error: (issue) =>
      `entities ${issue.input === undefined ? "is required" : "must be an object"}: ` +
      '{ "count": N, and "names": [...] or "syllables": {...} }',
  }),
  mentions: z.object({
    ...Mentions.shape,
    /**
     * "entity": one draw per entity, its statements cycle through its attributes (first attribute
     * first); "fact": one draw per fact (entity, attribute), so how often a fact is stated varies fact by
     * fact, and every fact is stated at least `min` times.
     */
    per: z.enum(["entity", "fact"], { error: 'mentions.per must be "entity" or "fact"' }).default("entity"),
  }, { error: 'mentions is required: { "distribution": "log-uniform", "min": 1, "max": 4 }' }),
  sentencesPerDocument: count("sentencesPerDocument", 1, 1000),
  /** "added": each name (and each value word BPE splits) is one token; "bpe": GPT-2's pieces. */
  nameTokens: z.enum(["added", "bpe"], { error: 'nameTokens must be "added" or "bpe"' }),
  attributes: z.array(WorldAttributeSpec, {
    error: "attributes is required: a list of { name, values, templates }",
  })
    .min(1, "a world needs at least one attribute"),
  derived: z.array(WorldDerivedSpec).default([]),
  tasks: z.array(WorldTaskSpec).default([]),
});

export type WorldSpec = z.infer<typeof WorldSpecSchema>;
export type WorldAttributeSpecT = z.infer<typeof WorldAttributeSpec>;
export type WorldDerivedSpecT = z.infer<typeof WorldDerivedSpec>;
export type WorldTaskSpecT = z.infer<typeof WorldTaskSpec>;

/** Cross-field checks zod's shapes cannot state: references between attributes, derived facts, tasks. */
export function worldSpecProblems(spec: WorldSpec): string[] {
  const problems: string[] = [];
  const e = spec.entities;
  if (!e.names && !e.syllables) {
    problems.push('entities: give "names" (a list) or "syllables" to invent them');
  }
  if (e.names && e.names.length < e.count) {
    problems.push(
      `entities.names: ${e.names.length} names for count ${e.count}; give more names or lower count`,
    );
  }
  if (e.names && new Set(e.names).size !== e.names.length) problems.push("entities.names: names repeat");
  if (e.syllables && e.syllables.min > e.syllables.max) problems.push("entities.syllables: min is above max");
  if (spec.mentions.min > spec.mentions.max) problems.push("mentions: min is above max");
  spec.attributes.forEach((a, i) => {
    if (a.mentions && spec.mentions.per !== "fact") {
      problems.push(`attributes[${i}].mentions: only with mentions.per "fact"; remove it or set per`);
    }
    if (a.mentions && a.mentions.min > a.mentions.max) problems.push(`attributes[${i}].mentions: min > max`);
  });
  const attributes = new Map(spec.attributes.map((a) => [a.name, a]));
  if (attributes.size !== spec.attributes.length) problems.push("attributes: two attributes share a name");
  const derived = new Map(spec.derived.map((d) => [d.name, d]));
  spec.derived.forEach((d, i) => {
    const of = attributes.get(d.of);
    if (!of) {
      problems.push(`derived[${i}].of: no attribute "${d.of}" (attributes: ${[...attributes.keys()]})`);
    }
    if (attributes.has(d.name)) problems.push(`derived[${i}].name: "${d.name}" is also an attribute's name`);
    if (d.map && of) {
      // Invented values have no names before the world is drawn: their map is keyed "#0", "#1", … by index.
      const keys = of.values ?? Array.from({ length: of.invent! }, (_, k) => `#${k}`);
      for (const [value, to] of Object.entries(d.map)) {
        if (!keys.includes(value)) {
          const hint = of.values
            ? ""
            : ` (${d.of} has invented values: key them "#0" to "#${keys.length - 1}")`;
          problems.push(`derived[${i}].map: "${value}" is not a value of ${d.of}${hint}`);
        }
        if (!d.values.includes(to)) problems.push(`derived[${i}].map.${value}: "${to}" is not in values`);
      }
      for (const value of keys) {
        if (!(value in d.map)) problems.push(`derived[${i}].map: give the ${d.name} of "${value}"`);
      }
    } else if (of && (of.values?.length ?? of.invent!) % d.values.length !== 0) {
      problems.push(
        `derived[${i}]: ${d.of}'s values do not split into ${d.values.length} equal blocks; give "map"`,
      );
    }
  });
  const taskNames = new Set<string>();
  spec.tasks.forEach((t, i) => {
    const at = `tasks[${i}]`;
    if (taskNames.has(t.name)) problems.push(`${at}.name: "${t.name}" is used twice`);
    if (Object.values(WORLD_SUITES).some((suite) => suite === t.name)) {
      problems.push(`${at}.name: "${t.name}" names a suite of the world's tasks; choose another name`);
    }
    taskNames.add(t.name);
    const d = t.derived ? derived.get(t.derived) : undefined;
    if (t.derived && !d) problems.push(`${at}.derived: no derived fact "${t.derived}"`);
    if (t.attribute && !attributes.has(t.attribute)) {
      problems.push(`${at}.attribute: no attribute "${t.attribute}"`);
    }
    if (t.type === "attribute") {
      const a = t.attribute ? attributes.get(t.attribute) : undefined;
      if (!t.attribute) problems.push(`${at}: an attribute task names its "attribute"`);
      else if (a && !a.values) {
        problems.push(`${at}: "${t.attribute}" has invented values; ask a derived task`);
      } else if (!t.positive?.length) problems.push(`${at}.positive: list the values that answer 1`);
      else if (a?.values) {
        for (const v of t.positive) {
          if (!a.values.includes(v)) problems.push(`${at}.positive: "${v}" is not a value`);
        }
        if (t.positive.length >= a.values.length) problems.push(`${at}.positive: some value must answer 0`);
      }
    }
    if (t.type === "derived") {
      if (!t.derived) problems.push(`${at}: a derived task names its "derived" fact`);
      else if (d && t.attribute && t.attribute !== d.of) {
        problems.push(
          `${at}.attribute: ${t.derived} is about ${d.of}; omit attribute (it is asked about ${d.of})`,
        );
      } else if (d && (t.positive?.length !== 1 || !d.values.includes(t.positive[0]))) {
        problems.push(`${at}.positive: give one value of ${t.derived} (${d.values.join(", ")})`);
      }
    }
    if (t.type === "relation" && !t.derived && !t.attribute) {
      problems.push(`${at}: a relation task compares a "derived" fact or an "attribute"`);
    }
    if (t.type === "preference") problems.push(...preferenceProblems(spec, t, at));
    else if (t.distractor) problems.push(`${at}.distractor: only a preference task has one; remove it`);
    if (t.stated?.min !== undefined && t.stated.max !== undefined && t.stated.min > t.stated.max) {
      problems.push(`${at}.stated: min is above max`);
    }
  });
  return problems;
}

/** A preference task asks one attribute; its distractor, if any, shares a derived fact of that attribute. */
function preferenceProblems(spec: WorldSpec, t: WorldTaskSpecT, at: string): string[] {
  const problems: string[] = [];
  const attribute = spec.attributes.find((a) => a.name === t.attribute);
  if (!t.attribute) {
    problems.push(`${at}: a preference task names its "attribute" (the fact both texts state)`);
  }
  if (t.positive) problems.push(`${at}.positive: a preference task has no positive values; remove it`);
  if (t.derived) {
    problems.push(
      `${at}.derived: a preference task asks its attribute; a harder distractor goes in ` +
        `distractor.sameDerived`,
    );
  }
  const sameDerived = t.distractor?.sameDerived;
  if (!attribute || !sameDerived) return problems;
  const d = spec.derived.find((d) => d.name === sameDerived);
  const ofAttribute = spec.derived.filter((d) => d.of === attribute.name).map((d) => d.name);
  if (!d || d.of !== attribute.name) {
    problems.push(
      `${at}.distractor.sameDerived: "${sameDerived}" is not a derived fact of ${attribute.name} ` +
        `(its derived facts: ${ofAttribute.join(", ") || "none"})`,
    );
    return problems;
  }
  // A value alone in its derived class would have no distractor: the task could not ask about it.
  const values = attribute.values ?? Array.from({ length: attribute.invent! }, (_, k) => `#${k}`);
  const classOf = (v: string, k: number) =>
    d.map ? d.map[v] : d.values[Math.floor(k / (values.length / d.values.length))];
  const sizes = new Map<string, number>();
  values.forEach((v, k) => sizes.set(classOf(v, k), (sizes.get(classOf(v, k)) ?? 0) + 1));
  for (const [value, size] of sizes) {
    if (size < 2) {
      problems.push(
        `${at}.distractor.sameDerived: only one ${attribute.name} value has ${sameDerived} "${value}", so it ` +
          `has no distractor; give ${sameDerived} at least two values of each, or drop distractor`,
      );
    }
  }
  return problems;
}
