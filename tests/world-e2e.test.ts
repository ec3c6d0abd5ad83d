/**
 * A world file written by hand, end to end: `lab world build --file` (the CLI) makes the moons world
 * (tests/fixtures/world-moons.json: names, attributes and tasks the code never saw) the lab's world, two
 * tiny sizes pretrain on it, and a sweep over `--tasks world` runs every moons task on them. Checked
 * against the file itself: the ladder's world holds the file's names, the sweep ran exactly the file's
 * tasks (names only the moons file has), and the checkpoints live under the world's key.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readWorldFile, worldKey } from "../server/corpus/world-spec.ts";
import { ExperimentCache } from "../server/lab/cache.ts";
import { ladderModelSource } from "../server/lab/model-source.ts";
import { modelDir } from "../server/lab/model-store.ts";
import { pretrainSize } from "../server/lab/pretrain.ts";
import { runSweep } from "../server/lab/sweep.ts";
import { tinySize } from "./helpers/tiny-ladder.ts";

const MOONS = new URL("./fixtures/world-moons.json", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;

const tiny = (name: string, width: number) => tinySize(name, 24, width);

Deno.test("a hand-written world file builds, pretrains a ladder and runs a sweep end to end", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "world-e2e-" });
  try {
    const spec = readWorldFile(MOONS);
    const built = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "scripts/lab.ts", "world", "build", "--file", MOONS, "--json"],
      cwd: ROOT,
      env: { LAB_DATA_DIR: dataDir, NO_COLOR: "1", LAB_WORLD: "" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(built.stderr);
    assert.ok(built.success, stderr);
    const summary = JSON.parse(new TextDecoder().decode(built.stdout).trim().split("\n").at(-1)!);
    assert.equal(summary.key, worldKey(spec));
    assert.deepEqual(summary.tasks.map((t: { name: string }) => t.name), spec.tasks.map((t) => t.name));

    const quiet = { evalEvery: 8, checkpointEvery: 12, logEvery: 8, valWindows: 4, knowledgeEntities: 8 };
    for (const [name, width] of [["nano", 8], ["micro", 16]] as const) {
      const run = await pretrainSize({ size: tiny(name, width), dataDir, seed: 1, ...quiet });
      assert.equal(run.status.status, "pretrained");
      assert.ok(run.dir.startsWith(join(dataDir, "worlds", worldKey(spec))), run.dir);
      assert.equal(run.dir, modelDir(dataDir, name));
    }
    const models = ladderModelSource(dataDir);
    const world = await models.world!();
    assert.deepEqual(world.entities.map((e) => e.name), spec.entities.names);

    const result = await runSweep(
      { tasks: ["world"], sizes: ["nano", "micro"], methods: ["naive"], seeds: [0], epochs: 1 },
      { models, cache: new ExperimentCache(join(dataDir, "cache")) },
    );
    assert.deepEqual(result.cells.map((c) => c.task), spec.tasks.map((t) => t.name));
    for (const c of result.cells) {
      assert.deepEqual([c.weak, c.strong], ["nano", "micro"]);
      for (const acc of [c.weak_acc, c.ceiling_acc, c.student_acc]) {
        assert.ok(acc.mean >= 0 && acc.mean <= 1, `${c.task}: accuracy ${acc.mean}`);
      }
    }
    assert.ok(result.medians.some((m) => m.task === null && m.method === "naive"));
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
