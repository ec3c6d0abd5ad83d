/**
 * `deno task lab lm-loss --checkpoint DIR --tokens 1,2,3,…`: the mean next-token cross-entropy of a
 * checkpoint (the lab's format or a Hugging Face GPT-2 directory) on one token sequence, computed by
 * the WGSL engine. The last line printed is `{"loss": x}`.
 */
import { parseFlags, UsageError } from "../../server/contract/command-flags.ts";
import { loadCheckpoint } from "../../kernels/checkpoint.ts";
import { getGpu } from "../../kernels/device.ts";
import { GptModel } from "../../kernels/gpt.ts";

export function parseTokenList(text: string): Int32Array {
  const parts = text.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  const ids = parts.map((s, i) => {
    if (!/^\d+$/.test(s)) {
      throw new UsageError(`--tokens: item ${i + 1} ("${s}") is not a non-negative integer`);
    }
    return Number(s);
  });
  if (ids.length < 2) throw new UsageError("--tokens needs at least 2 ids (one prediction)");
  return Int32Array.from(ids);
}

export async function lmLoss(checkpointDir: string, tokens: Int32Array): Promise<number> {
  const checkpoint = await loadCheckpoint(checkpointDir);
  const cfg = checkpoint.config;
  if (tokens.length > cfg.contextLength) {
    throw new Error(`${tokens.length} tokens exceed the checkpoint's context length ${cfg.contextLength}`);
  }
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] >= cfg.vocabSize) {
      throw new Error(`token id ${tokens[i]} at position ${i} is out of range 0…${cfg.vocabSize - 1}`);
    }
  }
  const gpu = await getGpu();
  const model = new GptModel(gpu, cfg, checkpoint.params, {
    batchSize: 1,
    seqLen: tokens.length,
    forwardOnly: true,
  });
  try {
    model.setBatch({ tokens, lengths: Int32Array.from([tokens.length]) });
    model.evalStep("lm");
    return (await model.readStats()).loss;
  } finally {
    model.destroy();
  }
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, { checkpoint: { type: "string" }, tokens: { type: "string" } });
  if (!values.checkpoint) throw new UsageError("--checkpoint DIR is required");
  if (!values.tokens) throw new UsageError("--tokens 1,2,3,… is required");
  const loss = await lmLoss(values.checkpoint, parseTokenList(values.tokens));
  console.log(JSON.stringify({ loss }));
}
