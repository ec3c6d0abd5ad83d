/**
 * `deno task lab knowledge --size S [--json]`: what a pretrained size knows about the knowledge world —
 * completion accuracy per attribute, by how often the fact was stated in pretraining. With --json the
 * last line is one JSON object.
 */
import { parseFlags, UsageError } from "../../server/contract/command-flags.ts";
import { ladderSize } from "../../server/lab/ladder.ts";
import { percentWithInterval, wilsonInterval } from "../../server/contract/intervals.ts";
import { sizeKnowledge, STATED_BUCKETS } from "../../server/lab/knowledge.ts";

export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, {
    size: { type: "string" },
    json: { type: "boolean", default: false },
  });
  const name = values.size;
  if (!name) throw new UsageError("--size NAME is required");
  ladderSize(name);
  const report = await sizeKnowledge({ size: name, dataDir: Deno.env.get("LAB_DATA_DIR") ?? "./data" });
  if (values.json) {
    // Per-entity predictions stay out of the summary.
    const attributes = report.attributes.map(({ predictions: _, ...rest }) => rest);
    console.log(JSON.stringify({ ...report, attributes }));
    return;
  }
  const percent = (x: number | null) => (x === null ? "-" : `${(100 * x).toFixed(1)}%`);
  console.log(`${report.size}: ${report.entities} entities, tokenizer ${report.tokenizerId}`);
  console.log(
    `attribute  values  majority  accuracy [95% CI]  ` +
      STATED_BUCKETS.map((b) => `stated ${b.label}`.padStart(16)).join(""),
  );
  for (const a of report.attributes) {
    console.log(
      `${a.attribute.padEnd(10)} ${String(a.candidates).padStart(6)}  ${percent(a.majority).padStart(8)}  ` +
        `${(a.n ? percentWithInterval(a.correct / a.n, wilsonInterval(a.correct, a.n)) : "-").padEnd(17)}  ` +
        a.buckets.map((b) => `${percent(b.accuracy)} (n=${b.n})`.padStart(16)).join(""),
    );
  }
  console.log("(95% CI: Wilson over the entities asked about)");
}
