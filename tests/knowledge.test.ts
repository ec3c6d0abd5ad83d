/**
 * Knowledge probe: its answers against the float64 CPU reference (argmax of next-token logits for
 * one-token candidates, summed log-probabilities for BPE-piece candidates), and the per-bucket
 * accuracy against hand-counted scores.
 */
import assert from "node:assert/strict";
import { type GptConfig, initParameters, paramLayout } from "../kernels/config.ts";
import { getGpu } from "../kernels/device.ts";
import { paramsFromFlat, refForward } from "../kernels/reference.ts";
import { createTokenizer } from "../server/corpus/tokenizer.ts";
import { generateWorld, knowledgeQueries, type World, worldAddedTokens } from "../server/corpus/world.ts";
import { KnowledgeProbe, type ProbeQuery, summarize } from "../server/lab/knowledge.ts";
import { watchReadBacks } from "./helpers/read-backs.ts";

/** Random non-trivial parameters so that the candidates' scores differ. */
function randomParams(cfg: GptConfig, seed: number): Float32Array {
  const flat = initParameters(cfg, seed);
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5;
  for (const spec of paramLayout(cfg).specs) {
    // The probe reads no head; skipping the reward head keeps the draws of the layout before it had one.
    if (spec.name === "reward.weight") continue;
    for (let i = 0; i < spec.size; i++) flat[spec.offset + i] += 3 * next();
  }
  return flat;
}

/** Reference prediction: the candidate with the highest summed log-probability after the prompt. */
function referenceAnswers(
  cfg: GptConfig,
  flat: Float32Array,
  world: World,
  attribute: string,
  merges: number,
) {
  const tokenizer = createTokenizer({ merges, addedTokens: worldAddedTokens(world, merges) });
  const params = paramsFromFlat(cfg, flat);
  const V = cfg.vocabSize;
  return knowledgeQueries(world, attribute).map((q) => {
    const scores = q.candidates.map((value) => {
      const prompt = tokenizer.encode(q.prompt);
      const candidate = tokenizer.encode(" " + value);
      const ids = [...prompt, ...candidate];
      const T = ids.length;
      const targets = new Int32Array(T).fill(-1);
      for (let t = 0; t + 1 < T; t++) targets[t] = ids[t + 1];
      const { logits } = refForward(cfg, params, {
        B: 1,
        T,
        tokens: Int32Array.from(ids),
        lengths: Int32Array.of(T),
        targets,
      }, "lm");
      let score = 0;
      for (let j = 0; j < candidate.length; j++) {
        const row = logits.subarray((prompt.length - 1 + j) * V, (prompt.length + j) * V);
        const max = Math.max(...row);
        const logSum = max + Math.log(row.reduce((a, x) => a + Math.exp(x - max), 0));
        score += row[candidate[j]] - logSum;
      }
      return score;
    });
    return scores.indexOf(Math.max(...scores));
  });
}

for (const nameTokens of ["added", "bpe"] as const) {
  Deno.test(`knowledge probe agrees with the float64 reference (${nameTokens} names)`, async () => {
    const merges = 64;
    const world = generateWorld({ seed: 3, entities: 20, maxMentions: 4, nameTokens });
    const tokenizer = createTokenizer({ merges, addedTokens: worldAddedTokens(world, merges) });
    const cfg: GptConfig = {
      vocabSize: tokenizer.vocabSize,
      contextLength: 24,
      width: 16,
      layers: 2,
      heads: 2,
    };
    const flat = randomParams(cfg, 11);
    const gpu = await getGpu();
    const probe = new KnowledgeProbe(gpu, cfg, tokenizer, world, {
      attributes: ["region", "size"],
      batchSize: 16,
    });
    try {
      const report = await probe.measure(flat);
      for (const attribute of ["region", "size"]) {
        const expected = referenceAnswers(cfg, flat, world, attribute, merges);
        const got = report.attributes.find((a) => a.attribute === attribute)!;
        assert.deepEqual(got.predictions, expected, `${attribute} predictions`);
        // Random weights must not answer everything alike, or the comparison would prove little.
        if (attribute === "region") {
          assert.ok(new Set(expected).size > 1, "the reference picks more than one region");
        }
      }
    } finally {
      probe.destroy();
    }
  });
}

Deno.test("knowledge probe queues every batch's logits read and waits once, answers unchanged", async () => {
  const merges = 64;
  const world = generateWorld({ seed: 3, entities: 20, maxMentions: 4, nameTokens: "added" });
  const tokenizer = createTokenizer({ merges, addedTokens: worldAddedTokens(world, merges) });
  const cfg: GptConfig = {
    vocabSize: tokenizer.vocabSize,
    contextLength: 24,
    width: 16,
    layers: 2,
    heads: 2,
  };
  const flat = randomParams(cfg, 11);
  // 20 one-token-candidate prompts in batches of 6: three full batches and a partial one.
  const probe = new KnowledgeProbe(await getGpu(), cfg, tokenizer, world, {
    attributes: ["region"],
    batchSize: 6,
  });
  try {
    let predictions: number[] = [];
    const log = await watchReadBacks(async () => {
      predictions = (await probe.measure(flat)).attributes[0].predictions;
    });
    assert.deepEqual(predictions, referenceAnswers(cfg, flat, world, "region", merges));
    const logitsBytes = Math.max(...log.mostPendingBySize.keys());
    assert.equal(log.mostPendingBySize.get(logitsBytes), 4, "the four batches' logits read back in one wait");
  } finally {
    probe.destroy();
  }
});

Deno.test("summarize counts accuracy per stated-times bucket and the majority baseline", () => {
  const q = (answer: number, stated: number): ProbeQuery => ({
    attribute: "region",
    answer,
    stated,
    candidates: ["a", "b", "c"],
  });
  const queries = [q(0, 0), q(1, 1), q(2, 1), q(0, 2), q(0, 3), q(1, 5), q(2, 12)];
  // Predicted (argmax): 0, 2, 2, 0, 1, 1, 2  →  right: yes, no, yes, yes, no, yes, yes.
  const scores = [
    [3, 1, 2],
    [0, 1, 5],
    [0, 0, 1],
    [2, 2, 1], // a tie goes to the first candidate
    [0, 4, 1],
    [1, 3, 2],
    [0, 0, 9],
  ].map((s) => Float64Array.from(s));
  const [region] = summarize(["region"], queries, scores).attributes;
  assert.equal(region.n, 7);
  assert.equal(region.correct, 5);
  assert.equal(region.majority, 3 / 7);
  assert.deepEqual(
    region.buckets.map((b) => [b.label, b.n, b.correct]),
    [["0", 1, 1], ["1", 2, 1], ["2-3", 2, 1], ["4-8", 1, 1], ["9+", 1, 1]],
  );
});
