/**
 * `deno task lab models [--json]`: the ladder with parameter counts, pretraining status, validation
 * loss and whether its corpus held the tasks' test items (world only, kept out for some split seeds, or
 * leakage on), then the snapshots kept along each size's pretraining (strong models named SIZE@PCT) with
 * the tokens seen and region recall (each recall with its 95 % Wilson interval over the entities asked) —
 * the same merge of the checkpoints on disk and the database as
 * GET /api/models; a size whose files are damaged is "broken" with the reason on a line below the table.
 * With --json the last line is a JSON array of {name, params, status, broken (the reason or null), val_loss,
 * knowledge, knowledge_ci, tokens, checkpoint, corpus, snapshots} (corpus: {realShare, leakage,
 * splitSeeds, excluded} or null when not recorded; snapshots: [{ref, pct, step, tokens, recall, n, ci}]). Imported models follow the
 * ladder (`source: "imported"`).
 *
 * `deno task lab models add --name NAME --dir PATH [--force] [--json]`: registers a Hugging Face GPT-2
 * folder (server/lab/own-models.ts) after checking its config, tensor shapes, tokenizer and memory, and
 * prints its parameters, sha-256 and the memory a finetune needs; `--ladder a,b` on lab w2s / sweep uses it.
 */
import { parseFlags, requireFlags } from "../../server/contract/command-flags.ts";
import { openDb } from "../../db/client.ts";
import { listModels } from "../../server/api/catalog.ts";
import { leakageLabel, type ModelListing } from "../../server/contract/models.ts";
import { percentWithInterval } from "../../server/contract/intervals.ts";
import { formatBytes } from "../../kernels/memory.ts";
import { addOwnModel, ownModelListings } from "../../server/lab/own-models.ts";

/** `lab models add`: register a folder and say what the checks found. */
async function addModel(args: string[]): Promise<void> {
  const { values: given } = parseFlags(args, {
    name: { type: "string" },
    dir: { type: "string" },
    force: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
  });
  const values = requireFlags(
    given,
    { name: "NAME", dir: "PATH" },
    "lab models add --name NAME --dir PATH [--force]",
  );
  const dataDir = Deno.env.get("LAB_DATA_DIR") ?? "./data";
  const model = await addOwnModel(dataDir, { name: values.name, dir: values.dir, force: values.force });
  if (values.json) {
    console.log(JSON.stringify(model));
    return;
  }
  const { config, memory } = model;
  console.log(
    `registered ${model.name}: GPT-2 ${config.width}/${config.layers} layers/${config.heads} heads, context ` +
      `${config.contextLength}, vocabulary ${config.vocabSize}, ${
        model.params.toLocaleString("en-US")
      } parameters`,
  );
  console.log(`  ${model.dir}/model.safetensors sha-256 ${model.sha256}`);
  console.log(`  tokenizer ${model.tokenizer} (${model.tokenizerFiles})`);
  console.log(
    `  finetuning at context ${memory.seqLen} needs ${formatBytes(memory.leastBytes)} at batch 1, ` +
      `${formatBytes(memory.defaultBatchBytes)} at batch ${memory.defaultBatch}`,
  );
}

/** One line per snapshot: what `--strong SIZE@PCT` loads, how far along and what it recalls. */
function printSnapshots(models: ModelListing[]): void {
  const snapshots = models.flatMap((m) => m.snapshots);
  if (snapshots.length === 0) return;
  console.log("\nsnapshots (strong models SIZE@PCT)  step      tokens  region recall [95% CI]");
  for (const s of snapshots) {
    console.log(
      `  ${s.ref.padEnd(33)} ${String(s.step).padStart(4)} ${
        s.tokens.toLocaleString("en-US").padStart(11)
      }  ${percentWithInterval(s.recall, s.ci)}`,
    );
  }
}

export async function main(args: string[]): Promise<void> {
  if (args[0] === "add") return await addModel(args.slice(1));
  parseFlags(args, { json: { type: "boolean" } });
  const dataDir = Deno.env.get("LAB_DATA_DIR") ?? "./data";
  const opened = await openDb({ dataDir, databaseUrl: Deno.env.get("DATABASE_URL") || undefined });
  try {
    const models = [...await listModels(opened.db, dataDir), ...await ownModelListings(dataDir)];
    if (!args.includes("--json")) {
      console.log(
        "name     width layers heads context      params  status       val_loss  region recall [95% CI]  test items",
      );
      for (const m of models) {
        console.log(
          `${m.name.padEnd(8)} ${String(m.width).padStart(5)} ${String(m.layers).padStart(6)} ` +
            `${String(m.heads).padStart(5)} ${String(m.contextLength).padStart(7)} ${
              String(m.params).padStart(11)
            }  ${m.status.padEnd(12)} ${(m.valLoss === null ? "-" : m.valLoss.toFixed(4)).padStart(8)}  ${
              percentWithInterval(m.knowledge, m.knowledgeCi).padEnd(22)
            }  ${m.checkpointPath === null ? "-" : leakageLabel(m.corpus)}`,
        );
      }
      for (const m of models) {
        if (m.brokenReason !== null) console.log(`${m.name}: broken: ${m.brokenReason}`);
      }
      printSnapshots(models);
      return;
    }
    console.log(JSON.stringify(models.map((m) => ({
      name: m.name,
      params: m.params,
      status: m.status,
      broken: m.brokenReason,
      val_loss: m.valLoss,
      knowledge: m.knowledge,
      knowledge_ci: m.knowledgeCi,
      tokens: m.tokens,
      checkpoint: m.checkpointPath,
      corpus: m.corpus,
      snapshots: m.snapshots,
      source: m.source ?? "ladder",
    }))));
  } finally {
    await opened.close();
  }
}
