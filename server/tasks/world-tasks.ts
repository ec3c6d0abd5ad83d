/**
 * The knowledge-world tasks: the questions a world file declares (server/corpus/world-schema.ts), built
 * from the world the ladder pretrained on. Every text is the pretraining wording of the asked fact
 * (`promptFor`, e.g. ". X lives in"), so the question is asked exactly as the models saw it; the label is
 * a split of the attribute's values, or a derived fact of the value (two-hop), or — for a relation — whether
 * two entities share a value. A preference task is pairwise: the entity's true statement (". X lives in V",
 * the wording pretraining stated it in) against the same statement with another value. Split by entity
 * 25/25/20/30 %: test entities are seen in pretraining, never in finetuning. An entity whose asked fact is
 * never stated is left out (no model could know it), and `stated` keeps only facts stated that often.
 */

import { WORLD_SUITES, type WorldTaskSpecT } from "../corpus/world-schema.ts";
import { createRandom, pick, seededRandom } from "../../kernels/random.ts";
import { promptFor, timesStated, type World, type WorldEntity } from "../corpus/world.ts";
import type { SplitName } from "./splits.ts";
import type { SourceExample, TaskSource } from "./source.ts";
import type { TaskFormat, TaskInfo } from "./types.ts";
import { didYouMean } from "./did-you-mean.ts";

export const WORLD_FRACTIONS: Record<SplitName, number> = {
  train1: 0.25,
  train2: 0.25,
  validation: 0.2,
  test: 0.3,
};

/** Entities per relation group: each group's entities are paired every way (6 pairs of 4), one split each. */
const RELATION_GROUP = 4;

/** The name that stands for the world's classification tasks (a sweep's `--tasks world`: the demo's suite). */
export const WORLD_SUITE = WORLD_SUITES.classification;
/** The name that stands for the world's pairwise (preference) tasks. */
export const WORLD_PAIRWISE_SUITE = WORLD_SUITES.pairwise;

/** Whether a task name stands for a suite of the world's tasks. */
export const isWorldSuite = (name: string) => name === WORLD_SUITE || name === WORLD_PAIRWISE_SUITE;

/** A preference task compares two texts; every other world task classifies one. */
export const worldTaskFormat = (task: WorldTaskSpecT): TaskFormat =>
  task.type === "preference" ? "pairwise" : "classification";

/**
 * Task names with each suite name replaced by the world's tasks of its format, in the world file's order,
 * without repeats.
 */
export function expandWorldSuite(tasks: readonly string[], world: World | undefined): string[] {
  const out: string[] = [];
  for (const task of tasks) {
    if (!isWorldSuite(task)) out.push(task);
    else if (!world) {
      throw new Error(`"${task}" stands for the world's tasks, and these models have no world`);
    } else {
      const format: TaskFormat = task === WORLD_SUITE ? "classification" : "pairwise";
      out.push(...world.spec.tasks.filter((t) => worldTaskFormat(t) === format).map((t) => t.name));
    }
  }
  return [...new Set(out)];
}

/** The world's tasks as the registry lists them (both formats). */
export function worldTaskInfos(world: World): TaskInfo[] {
  return world.spec.tasks.map((t) => ({
    name: t.name,
    description: `${t.description} [${t.difficulty}]`,
    kind: "world",
    format: worldTaskFormat(t),
  }));
}

export function worldTaskSpec(world: World, name: string): WorldTaskSpecT | undefined {
  return world.spec.tasks.find((t) => t.name === name);
}

/** The attribute a task asks about (a derived fact is asked with its attribute's wording). */
export function askedAttribute(world: World, task: WorldTaskSpecT): string {
  if (task.derived) return world.derived.find((d) => d.name === task.derived)!.of;
  return task.attribute!;
}

/** What the task compares for one entity: its value of the attribute, or that value's derived fact. */
function labelValue(world: World, task: WorldTaskSpecT, entity: WorldEntity): string {
  const value = entity.attrs[askedAttribute(world, task)];
  if (!task.derived) return value;
  return world.derived.find((d) => d.name === task.derived)!.map[value];
}

/** The label an (attribute or derived) task gives an entity with this value of the asked attribute. */
export function valueLabel(world: World, task: WorldTaskSpecT, value: string): 0 | 1 {
  const compared = task.derived ? world.derived.find((d) => d.name === task.derived)!.map[value] : value;
  return task.positive!.includes(compared) ? 1 : 0;
}

/** Entities the task asks about: their fact is stated (as often as `stated` asks). */
function askedEntities(world: World, task: WorldTaskSpecT): WorldEntity[] {
  const attr = askedAttribute(world, task);
  const min = Math.max(1, task.stated?.min ?? 1);
  const max = task.stated?.max ?? Infinity;
  return world.entities.filter((e) => timesStated(e, attr) >= min && timesStated(e, attr) <= max);
}

/** Builds one world task's examples; unknown names are an error listing the world's tasks. */
export function worldTaskSource(world: World, name: string): TaskSource {
  const task = worldTaskSpec(world, name);
  if (!task) {
    const names = world.spec.tasks.map((t) => t.name);
    throw new Error(
      `world "${world.spec.name}" has no task "${name}" (its tasks: ${names.join(", ")})${
        didYouMean(name, names)
      }`,
    );
  }
  const attr = askedAttribute(world, task);
  const entities = askedEntities(world, task);
  const examples = task.type === "relation"
    ? relationExamples(world, task, entities)
    : task.type === "preference"
    ? preferenceExamples(world, task, entities)
    : entities.map((entity): SourceExample => ({
      txt: promptFor(world, attr, entity.name),
      hard_label: valueLabel(world, task, entity.attrs[attr]),
      group: entity.name,
    }));
  if (!examples.some((e) => e.hard_label === 1) || !examples.some((e) => e.hard_label === 0)) {
    const fix = task.type === "preference" ? "it asks too few entities" : 'check its "positive" values';
    throw new Error(`world task ${name}: every example has the same label; ${fix}`);
  }
  return { examples, exclusionKind: "none", fractions: WORLD_FRACTIONS };
}

/**
 * Pairs of entities, asked ". A lives in . B lives in": 1 when both have the same value. Entities are
 * dealt into seeded groups of four and paired within their group, so an entity's pairs share its split.
 */
function relationExamples(world: World, task: WorldTaskSpecT, entities: WorldEntity[]): SourceExample[] {
  const attr = askedAttribute(world, task);
  const order = createRandom(world.spec.seed + 31337).shuffle(entities.slice());
  const examples: SourceExample[] = [];
  for (let g = 0; g + RELATION_GROUP <= order.length; g += RELATION_GROUP) {
    const group = order.slice(g, g + RELATION_GROUP);
    for (let i = 0; i < group.length; i++) {
      for (let j = i + 1; j < group.length; j++) {
        const [a, b] = [group[i], group[j]];
        examples.push({
          txt: `${promptFor(world, attr, a.name)} ${promptFor(world, attr, b.name)}`,
          hard_label: labelValue(world, task, a) === labelValue(world, task, b) ? 1 : 0,
          group: `pairs:${g / RELATION_GROUP}`,
        });
      }
    }
  }
  return examples;
}

/**
 * One pair per entity, both in the pretraining wording of its fact (". X lives in V"): the statement with
 * its true value (chosen) and one with a distractor (rejected), drawn by the world seed, the task and the
 * entity — uniformly from the attribute's other values, or with `distractor.sameDerived` from the values
 * sharing the true value's derived fact (the schema guarantees one exists). The same draw's coin puts the
 * chosen text in `txt` (label 0) or `other` (label 1), independent of the split seed.
 */
function preferenceExamples(world: World, task: WorldTaskSpecT, entities: WorldEntity[]): SourceExample[] {
  const attr = task.attribute!;
  const values = world.attributes.find((a) => a.name === attr)!.values;
  const derived = world.derived.find((d) => d.name === task.distractor?.sameDerived);
  return entities.map((entity): SourceExample => {
    const truth = entity.attrs[attr];
    const distractors = values.filter((v) =>
      v !== truth && (!derived || derived.map[v] === derived.map[truth])
    );
    if (distractors.length === 0) {
      throw new Error(`world task ${task.name}: ${entity.name}'s ${attr} "${truth}" has no distractor`);
    }
    const random = seededRandom(world.spec.seed, `prefer:${task.name}:${entity.name}`);
    const statement = (value: string) => `${promptFor(world, attr, entity.name)} ${value}`;
    const [chosen, rejected] = [statement(truth), statement(pick(distractors, random))];
    return random() < 0.5
      ? { txt: chosen, other: rejected, hard_label: 0, group: entity.name }
      : { txt: rejected, other: chosen, hard_label: 1, group: entity.name };
  });
}
