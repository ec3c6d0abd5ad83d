/** The lab's world as `lab world` and GET /api/world show it: definition, sizes, tasks and their checks. */

import type { WorldSummary } from "../contract/world.ts";
import { timesStated, type World } from "../corpus/world.ts";
import { worldKey } from "../corpus/world-spec.ts";
import { loadTaskSplits } from "../tasks/load.ts";
import { surfaceCueCheck } from "./surface-cues.ts";

export async function summarizeWorld(world: World): Promise<WorldSummary> {
  const entityStatements = world.entities.reduce((n, e) => n + e.mentions, 0);
  const derivedStatements = world.derived.reduce((n, d) => {
    const of = world.attributes.find((a) => a.name === d.of)!;
    return n + of.values.length * d.statementsPerValue;
  }, 0);
  const tasks = [];
  for (const t of world.spec.tasks) {
    const splits = await loadTaskSplits(t.name, 0, undefined, world);
    const { accuracy, low, high, atChance } = surfaceCueCheck(splits);
    tasks.push({
      name: t.name,
      description: t.description,
      difficulty: t.difficulty,
      type: t.type,
      splits: {
        train1: splits.train1.length,
        train2: splits.train2.length,
        validation: splits.validation.length,
        test: splits.test.length,
      },
      surfaceCue: { accuracy, low, high, atChance },
    });
  }
  return {
    key: worldKey(world.spec),
    spec: world.spec,
    entities: world.entities.length,
    statements: entityStatements + derivedStatements,
    attributes: world.attributes.map((a) => ({
      name: a.name,
      values: a.values,
      invented: world.spec.attributes.find((s) => s.name === a.name)?.invent !== undefined,
      meanStated: world.entities.reduce((n, e) => n + timesStated(e, a.name), 0) / world.entities.length,
    })),
    derived: world.derived.map((d) => ({ name: d.name, of: d.of, map: d.map })),
    tasks,
  };
}
