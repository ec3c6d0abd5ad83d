/**
 * The knowledge-world task "north or south?" (the lab's default task). The text is the pretraining
 * wording for the entity's region (`promptFor("region", name)`, e.g. ". X lives in"), so the question
 * is asked exactly as the models saw the fact; 1 = the entity's region belongs to the north half (the
 * region attribute's `groups`). Built from LAB_WORLD_OPTIONS, the world the ladder pretrains on (400
 * entities). Split by entity 25/25/20/30 % (about 100/100/80/120 examples): test entities are seen in
 * pretraining, never in finetuning. Nothing is excluded.
 */

import { generateWorld, LAB_WORLD_OPTIONS, promptFor, type World } from "../corpus/world.ts";
import type { SplitName } from "./splits.ts";
import type { SourceExample, TaskSource } from "./source.ts";

export const WORLD_FRACTIONS: Record<SplitName, number> = {
  train1: 0.25,
  train2: 0.25,
  validation: 0.2,
  test: 0.3,
};
export const NORTH_GROUP = "north";

/** Builds the task from a world; `promptFor` renders the pretraining wording. */
export function worldRegionFromWorld(world: World): TaskSource {
  const region = world.attributes.find((a) => a.name === "region");
  if (!region?.groups) throw new Error("the world has no `region` attribute with north/south groups");
  const groups = region.groups;
  const examples: SourceExample[] = world.entities.map((entity) => {
    const value = entity.attrs.region;
    const group = groups[value];
    if (group === undefined) {
      throw new Error(`entity ${entity.name}: region ${JSON.stringify(value)} has no group`);
    }
    return {
      txt: promptFor("region", entity.name),
      hard_label: group === NORTH_GROUP ? 1 : 0,
      group: entity.name,
    };
  });
  if (!examples.some((e) => e.hard_label === 1) || !examples.some((e) => e.hard_label === 0)) {
    throw new Error(`the region groups must include "${NORTH_GROUP}" and another half`);
  }
  return { examples, exclusionKind: "none", fractions: WORLD_FRACTIONS };
}

/** The task on the lab's world: the one the default ladder pretrains on (same options, same seed). */
export function worldRegionSource(): Promise<TaskSource> {
  return Promise.resolve(worldRegionFromWorld(generateWorld(LAB_WORLD_OPTIONS)));
}
