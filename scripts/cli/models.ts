/**
 * `deno task lab models [--json]`: the ladder with parameter counts, pretraining status, validation
 * loss and whether its corpus held the tasks' test items (world only, kept out for some split seeds, or
 * leakage on), then the snapshots kept along each size's pretraining (strong models named SIZE@PCT) with
 * the tokens seen and region recall — the same merge of the checkpoints on disk and the database as
 * GET /api/models; a size whose files are damaged is "broken" with the reason on a line below the table.
 * With --json the last line is a JSON array of {name, params, status, broken (the reason or null), val_loss,
 * knowledge, tokens, checkpoint, corpus, snapshots} (corpus: {realShare, leakage, splitSeeds, excluded}
 * or null when not recorded; snapshots: [{ref, pct, step, tokens, recall}]).
 */
import { parseFlags } from "../../server/contract/command-flags.ts";
import { openDb } from "../../db/client.ts";
import { listModels } from "../../server/api/catalog.ts";
import { leakageLabel, type ModelListing } from "../../server/contract/models.ts";

/** One line per snapshot: what `--strong SIZE@PCT` loads, how far along and what it recalls. */
function printSnapshots(models: ModelListing[]): void {
  const snapshots = models.flatMap((m) => m.snapshots);
  if (snapshots.length === 0) return;
  console.log("\nsnapshots (strong models SIZE@PCT)  step      tokens  region recall");
  for (const s of snapshots) {
    console.log(
      `  ${s.ref.padEnd(33)} ${String(s.step).padStart(4)} ${
        s.tokens.toLocaleString("en-US").padStart(11)
      }  ${s.recall === null ? "-" : s.recall.toFixed(3)}`,
    );
  }
}

export async function main(args: string[]): Promise<void> {
  parseFlags(args, { json: { type: "boolean" } });
  const dataDir = Deno.env.get("LAB_DATA_DIR") ?? "./data";
  const opened = await openDb({ dataDir, databaseUrl: Deno.env.get("DATABASE_URL") || undefined });
  try {
    const models = await listModels(opened.db, dataDir);
    if (!args.includes("--json")) {
      console.log(
        "name     width layers heads context      params  status       val_loss  knowledge  test items",
      );
      for (const m of models) {
        console.log(
          `${m.name.padEnd(8)} ${String(m.width).padStart(5)} ${String(m.layers).padStart(6)} ` +
            `${String(m.heads).padStart(5)} ${String(m.contextLength).padStart(7)} ${
              String(m.params).padStart(11)
            }  ${m.status.padEnd(12)} ${(m.valLoss === null ? "-" : m.valLoss.toFixed(4)).padStart(8)}  ${
              (m.knowledge === null ? "-" : m.knowledge.toFixed(3)).padEnd(9)
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
      tokens: m.tokens,
      checkpoint: m.checkpointPath,
      corpus: m.corpus,
      snapshots: m.snapshots,
    }))));
  } finally {
    await opened.close();
  }
}
