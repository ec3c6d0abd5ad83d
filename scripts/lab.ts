/**
 * `deno task lab <command> …`: the lab's command line. Each command lives in scripts/cli/<name>.ts
 * and exports `main(args: string[]): Promise<void>`; this file only dispatches.
 */
import { UsageError } from "../server/contract/command-flags.ts";

const COMMANDS: Record<string, { file: string; help: string }> = {
  demo: {
    file: "./cli/demo.ts",
    help: "start here: pretrain the small ladder and show weak-to-strong (≤ 20 min)",
  },
  pretrain: { file: "./cli/pretrain.ts", help: "pretrain ladder sizes (--size NAME[,NAME…]), two at a time" },
  w2s: { file: "./cli/w2s.ts", help: "one weak→strong experiment (--task T --weak A --strong B --method M)" },
  sweep: { file: "./cli/sweep.ts", help: "all pairs × methods × seeds; summary table" },
  recipes: { file: "./cli/recipes.ts", help: "the finetuning-recipe study, on validation only" },
  corpus: { file: "./cli/corpus.ts", help: "build the pretraining corpus and print its sizes per source" },
  knowledge: { file: "./cli/knowledge.ts", help: "what a pretrained model knows about the world (--size S)" },
  models: { file: "./cli/models.ts", help: "the ladder: sizes, parameters, status, validation loss" },
  tasks: { file: "./cli/tasks.ts", help: "list tasks" },
  import: { file: "./cli/import.ts", help: "import a task (--name N --file F.jsonl)" },
  "lm-loss": {
    file: "./cli/lm-loss.ts",
    help: "mean next-token loss of a checkpoint (--checkpoint DIR --tokens 1,2,3)",
  },
  export: {
    file: "./cli/export.ts",
    help: "a pretrained size as a Hugging Face GPT-2 folder (--size S --out DIR)",
  },
  worker: { file: "./cli/worker.ts", help: "an extra worker for the job queue at DATABASE_URL" },
  world: { file: "./cli/world.ts", help: "the lab's world: show it, or make a world file the lab's (build)" },
};

/** Commands that take `--world F`: that world file is the lab's world for this command and its workers. */
const WORLD_COMMANDS = new Set([
  "pretrain",
  "w2s",
  "sweep",
  "recipes",
  "knowledge",
  "models",
  "tasks",
  "demo",
  "worker",
]);

/** Strips `--world F` and makes F the lab's world for this process (LAB_WORLD, checked first). */
async function useWorldFlag(name: string, args: string[]): Promise<string[]> {
  const at = args.indexOf("--world");
  if (at < 0 || !WORLD_COMMANDS.has(name)) return args;
  const path = args[at + 1];
  if (!path || path.startsWith("--")) {
    throw new UsageError("--world needs a world file: --world path/to/world.json");
  }
  const { readWorldFile } = await import("../server/corpus/world-spec.ts");
  readWorldFile(path);
  Deno.env.set("LAB_WORLD", path);
  return [...args.slice(0, at), ...args.slice(at + 2)];
}

/** Commands that train: they pick the matmul blocks measured for this adapter (cached per machine). */
const TRAINING_COMMANDS = new Set(["demo", "pretrain", "w2s", "sweep", "recipes", "worker"]);
/** Commands that must start at once (a worker leases jobs): they take cached blocks and never measure. */
const CACHED_TUNE_ONLY = new Set(["worker"]);

async function tuneEngine(name: string): Promise<void> {
  const { getGpu } = await import("../kernels/device.ts");
  const { applyCachedMatmulTune, autotuneMatmul } = await import("../kernels/ops/matmul-autotune.ts");
  if (CACHED_TUNE_ONLY.has(name)) {
    applyCachedMatmulTune(await getGpu());
    return;
  }
  const result = await autotuneMatmul(await getGpu());
  if (!result.fromCache) {
    console.error(`matmul autotune for ${result.adapter}: ${JSON.stringify(result.blocks)} (cached)`);
  }
}

/** A command's help is the header comment of its file: the documentation lives in one place. */
async function commandHelp(file: string): Promise<string> {
  const text = await Deno.readTextFile(new URL(file, import.meta.url));
  const header = text.match(/^\/\*\*([\s\S]*?)\*\//)?.[1] ?? "";
  return header.split("\n").map((line) => line.replace(/^\s*\* ?/, "")).join("\n").trim();
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.help}`);
  return `usage: deno task lab <command> [options]\n\ncommands:\n${lines.join("\n")}`;
}

if (import.meta.main) {
  const [name, ...args] = Deno.args;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    Deno.exit(name ? 0 : 2);
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`lab: unknown command "${name}"\n\n${usage()}`);
    Deno.exit(2);
  }
  if (args.includes("--help") || args.includes("-h")) {
    console.log(await commandHelp(command.file));
    Deno.exit(0);
  }
  try {
    if (TRAINING_COMMANDS.has(name) && Deno.env.get("LAB_AUTOTUNE") !== "0") await tuneEngine(name);
    const rest = await useWorldFlag(name, args);
    const mod = await import(command.file);
    await mod.main(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      // A bad value names its flag and rule; an unknown or missing flag also lists the command's flags.
      const flags = err.flags.length === 0
        ? []
        : [...err.flags, ...WORLD_COMMANDS.has(name) ? ["--world …"] : [], "--help"];
      console.error(`lab ${name}: ${new UsageError(err.problem, flags).message}`);
      Deno.exit(2);
    }
    console.error(`lab ${name}: ${err instanceof Error ? err.message : String(err)}`);
    if (Deno.env.get("LAB_DEBUG")) console.error(err);
    Deno.exit(1);
  }
}
