/**
 * `deno task lab world [show] [--json]`: the lab's world — its definition, statements, attributes and
 * tasks, with each task's split sizes and the surface-cue check (a lookup on name pieces and template
 * words must score at chance).
 * `deno task lab world build --file F [--json]`: checks the world file F (an error names the field and
 * the fix), makes it the lab's world for this data directory (LAB_DATA_DIR, default ./data), builds its
 * corpus and shows it. Models pretrained on another world stay under that world's key; `lab pretrain`
 * then pretrains the ladder on F. `--world F` on pretrain, w2s, sweep, knowledge, models, tasks and demo
 * uses F for one command instead. The default world is server/corpus/worlds/default.json.
 */
import { parseFlags, UsageError } from "../../server/contract/command-flags.ts";
import { activeWorld } from "../../server/corpus/world.ts";
import { readWorldFile, storeLabWorld } from "../../server/corpus/world-spec.ts";
import { loadLabCorpus } from "../../server/lab/lab-corpus.ts";
import { summarizeWorld } from "../../server/lab/world-summary.ts";
import type { WorldSummary } from "../../server/contract/world.ts";

export async function main(args: string[]): Promise<void> {
  const { values, positionals } = parseFlags(
    args,
    { file: { type: "string" }, json: { type: "boolean", default: false } },
    true,
  );
  const action = positionals[0] ?? "show";
  if (action !== "show" && action !== "build") {
    throw new UsageError(`unknown action "${action}": use "lab world show" or "lab world build --file F"`);
  }
  const dataDir = Deno.env.get("LAB_DATA_DIR") ?? "./data";
  if (action === "build") {
    if (!values.file) {
      throw new UsageError(
        "lab world build needs --file F (a world file, e.g. server/corpus/worlds/default.json)",
      );
    }
    await storeLabWorld(dataDir, readWorldFile(values.file));
  } else if (values.file) {
    throw new UsageError(
      `--file goes with "build"; to look at a file without making it the lab's world use --world F`,
    );
  }
  const world = activeWorld(dataDir);
  const corpus = action === "build" ? await loadLabCorpus(dataDir) : undefined;
  const summary = await summarizeWorld(world);
  if (values.json) {
    console.log(JSON.stringify({ ...summary, trainTokens: corpus?.world.train.length ?? null }));
    return;
  }
  printSummary(summary);
  if (corpus) {
    console.log(
      `corpus: ${corpus.world.train.length} training tokens, vocabulary ${corpus.tokenizer.vocabSize}`,
    );
    console.log(
      `this is now the lab's world in ${dataDir}; pretrain its ladder with: deno task lab pretrain --size S`,
    );
  }
}

function printSummary(s: WorldSummary): void {
  console.log(`world ${s.key}: ${s.spec.description ?? ""}`);
  console.log(`${s.entities} entities, ${s.statements} statements (mentions per ${s.spec.mentions.per})`);
  for (const a of s.attributes) {
    const values = a.invented
      ? `${a.values.length} invented (${a.values.slice(0, 3).join(", ")}, …)`
      : a.values.join(", ");
    console.log(`  ${a.name.padEnd(8)} stated ${a.meanStated.toFixed(2)}× per entity  ${values}`);
  }
  for (const d of s.derived) console.log(`  ${d.name} of ${d.of} (stated about ${d.of} values only)`);
  const width = Math.max(...s.tasks.map((t) => t.name.length));
  console.log(
    `tasks (split seed 0: train1/train2/validation/test; lookup on names and templates, test accuracy):`,
  );
  for (const t of s.tasks) {
    const n = t.splits;
    const cue = t.surfaceCue;
    const verdict = cue.atChance ? "not above chance" : "ABOVE CHANCE: the text gives the label away";
    console.log(
      `  ${t.name.padEnd(width)}  ${
        t.difficulty.padEnd(6)
      }  ${n.train1}/${n.train2}/${n.validation}/${n.test}  ` +
        `lookup ${cue.accuracy.toFixed(2)} [${cue.low.toFixed(2)}, ${cue.high.toFixed(2)}] ${verdict}`,
    );
  }
}
