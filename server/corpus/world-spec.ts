/**
 * World files: reading and checking them, the two that ship with the lab, and which world is the lab's.
 *
 * The lab's world is, in order: the file named by LAB_WORLD (the CLI's `--world F` sets it for one
 * command and the workers it starts), the file `lab world build` / POST /api/world stored in the data
 * directory (lab-world.json), or the default world (worlds/default.json). Everything pretrained on a world
 * lives under a directory named by its key (name + hash of what pretraining reads), so two worlds never mix.
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { type WorldSpec, worldSpecProblems, WorldSpecSchema } from "./world-schema.ts";
import classicFile from "./worlds/classic.json" with { type: "json" };
import defaultFile from "./worlds/default.json" with { type: "json" };

/**
 * Checks a parsed world file: the spec, or every problem with the field it is about (the shape's first;
 * the cross-field checks need a well-formed file).
 */
export function checkWorldSpec(json: unknown): { spec: WorldSpec; problems: [] } | { problems: string[] } {
  const result = WorldSpecSchema.safeParse(json);
  if (!result.success) {
    return {
      problems: result.error.issues.map((issue) =>
        `${issue.path.length > 0 ? issue.path.join(".") : "(top level)"}: ${issue.message}`
      ),
    };
  }
  const problems = worldSpecProblems(result.data);
  if (problems.length > 0) return { problems };
  // Through JSON: no undefined keys, so a spec equals itself saved and read back.
  return { spec: JSON.parse(JSON.stringify(result.data)), problems: [] };
}

/** The error of a world file that does not check: one problem a line. */
export const invalidWorldMessage = (source: string, problems: readonly string[]) =>
  `${source} is not a valid world:\n  ${problems.join("\n  ")}`;

/** Checks a parsed world file; the error lists every problem with the field it is about. */
export function parseWorldSpec(json: unknown, source = "world file"): WorldSpec {
  const checked = checkWorldSpec(json);
  if (!("spec" in checked)) throw new Error(invalidWorldMessage(source, checked.problems));
  return checked.spec;
}

/** The world the lab ships as its default: sized for a 2-core machine (README, "the demo"). */
export const DEFAULT_WORLD_SPEC: WorldSpec = parseWorldSpec(defaultFile, "worlds/default.json");
/** The reference world of the PyTorch study: 2,000 entities, the classic attributes. Sized for GPUs. */
export const CLASSIC_WORLD_SPEC: WorldSpec = parseWorldSpec(classicFile, "worlds/classic.json");

/** A world file's JSON (a definition, or a drawn world); errors name the file. */
export function readWorldJson(path: string): unknown {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    throw new Error(`cannot read world file ${path}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`world file ${path} is not valid JSON: ${(err as Error).message}`);
  }
}

/** Reads and checks a world file; errors name the file and the field. */
export function readWorldFile(path: string): WorldSpec {
  return parseWorldSpec(readWorldJson(path), `world file ${path}`);
}

/** JSON with sorted keys: equal definitions hash equally whatever their key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined).sort((
      [a],
      [b],
    ) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * What pretraining reads of a definition: all of it but the tasks and the description. Tasks are questions
 * asked of a pretrained model, so adding or editing one must not orphan the models of its world.
 */
export function pretrainingSpec(spec: WorldSpec): Omit<WorldSpec, "tasks" | "description"> {
  const { tasks: _tasks, description: _description, ...rest } = spec;
  return rest;
}

/** A world's key: its name and the hash of what pretraining reads of it (models live under it). */
export function worldKey(spec: WorldSpec): string {
  const hash = createHash("sha256").update(canonical(pretrainingSpec(spec))).digest("hex");
  return `${spec.name}-${hash.slice(0, 10)}`;
}

/** Where `lab world build` and POST /api/world store the lab's world. */
export const labWorldPath = (dataDir: string) => join(dataDir, "lab-world.json");

/** The lab's world for this data directory (see the file's header for the order). */
export function activeWorldSpec(dataDir: string): WorldSpec {
  const named = typeof Deno === "undefined" ? undefined : Deno.env.get("LAB_WORLD");
  if (named) return readWorldFile(named);
  try {
    Deno.statSync(labWorldPath(dataDir));
  } catch {
    return DEFAULT_WORLD_SPEC;
  }
  return readWorldFile(labWorldPath(dataDir));
}

/** Makes a world the lab's world for this data directory (checked first; written whole, then renamed). */
export async function storeLabWorld(dataDir: string, spec: WorldSpec): Promise<void> {
  const checked = parseWorldSpec(spec);
  await Deno.mkdir(dataDir, { recursive: true });
  const tmp = `${labWorldPath(dataDir)}.tmp-${crypto.randomUUID()}`;
  await Deno.writeTextFile(tmp, JSON.stringify(checked, null, 1) + "\n");
  await Deno.rename(tmp, labWorldPath(dataDir));
}

/** The knobs older code and tests turn on a world (applied over a spec). */
export interface WorldKnobs {
  seed: number;
  entities: number;
  minMentions: number;
  maxMentions: number;
  mentionDistribution: "log-uniform" | "zipf";
  zipfExponent: number;
  /** Statements of each derived fact per value (the region halves). */
  halfStatementsPerRegion: number;
  sentencesPerDocument: number;
  nameTokens: "added" | "bpe";
}

/** A spec with some knobs turned (checked again). */
export function worldSpecWith(base: WorldSpec, knobs: Partial<WorldKnobs>): WorldSpec {
  const k = Object.fromEntries(Object.entries(knobs).filter(([, v]) => v !== undefined)) as Partial<
    WorldKnobs
  >;
  return parseWorldSpec({
    ...base,
    seed: k.seed ?? base.seed,
    entities: { ...base.entities, count: k.entities ?? base.entities.count },
    mentions: {
      ...base.mentions,
      min: k.minMentions ?? base.mentions.min,
      max: k.maxMentions ?? base.mentions.max,
      distribution: k.mentionDistribution ?? base.mentions.distribution,
      zipfExponent: k.zipfExponent ?? base.mentions.zipfExponent,
    },
    derived: base.derived.map((d) => ({
      ...d,
      statementsPerValue: k.halfStatementsPerRegion ?? d.statementsPerValue,
    })),
    sentencesPerDocument: k.sentencesPerDocument ?? base.sentencesPerDocument,
    nameTokens: k.nameTokens ?? base.nameTokens,
  }, "world knobs");
}
