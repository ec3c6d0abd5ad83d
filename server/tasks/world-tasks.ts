/**
 * The knowledge-world tasks: the binary questions a world file declares (server/corpus/world-schema.ts),
 * built from the world the ladder pretrained on. Every text is the pretraining wording of the asked fact
 * (`promptFor`, e.g. ". X lives in"), so the question is asked exactly as the models saw it; the label is
 * a split of the attribute's values, or a derived fact of the value (two-hop), or — for a relation — whether
 * two entities share a value. Split by entity 25/25/20/30 %: test entities are seen in pretraining,
 * never in finetuning. An entity whose asked fact is never stated is left out (no model could know it),
 * and `stated` keeps only facts stated that often.
 */

import type { WorldTaskSpecT } from "../corpus/world-schema.ts";
import { createRandom } from "../../kernels/random.ts";
import { promptFor, timesStated, type World, type WorldEntity } from "../corpus/world.ts";
import type { SplitName } from "./splits.ts";
import type { SourceExample, TaskSource } from "./source.ts";
import type { TaskInfo } from "./types.ts";

export const WORLD_FRACTIONS: Record<SplitName, number> = {
  train1: 0.25,
  train2: 0.25,
  validation: 0.2,
  test: 0.3,
};

/** Entities per relation group: each group's entities are paired every way (6 pairs of 4), one split each. */
const RELATION_GROUP = 4;

/** The name that stands for every task of the world (a sweep's `--tasks world`). */
export const WORLD_SUITE = "world";

/** Task names with "world" replaced by the world's tasks, in the world file's order, without repeats. */
export function expandWorldSuite(tasks: readonly string[], world: World | undefined): string[] {
  const out: string[] = [];
  for (const task of tasks) {
    if (task !== WORLD_SUITE) out.push(task);
    else if (!world) {
      throw new Error(`"${WORLD_SUITE}" stands for the world's tasks, and these models have no world`);
    } else out.push(...world.spec.tasks.map((t) => t.name));
  }
  return [...new Set(out)];
}

/** The world's tasks as the registry lists them. */
export function worldTaskInfos(world: World): TaskInfo[] {
  return world.spec.tasks.map((t) => ({
    name: t.name,
    description: `${t.description} [${t.difficulty}]`,
    kind: "world",
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
    throw new Error(
      `world "${world.spec.name}" has no task "${name}" (its tasks: ${
        world.spec.tasks.map((t) => t.name).join(", ")
      })`,
    );
  }
  const attr = askedAttribute(world, task);
  const entities = askedEntities(world, task);
  const examples = task.type === "relation"
    ? relationExamples(world, task, entities)
    : entities.map((entity): SourceExample => ({
      txt: promptFor(world, attr, entity.name),
      hard_label: valueLabel(world, task, entity.attrs[attr]),
      group: entity.name,
    }));
  if (!examples.some((e) => e.hard_label === 1) || !examples.some((e) => e.hard_label === 0)) {
    throw new Error(`world task ${name}: every example has the same label; check its "positive" values`);
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
