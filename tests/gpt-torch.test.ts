/**
 * The WGSL engine against PyTorch (fixtures from scripts/torch-fixtures.py, committed; torch is not
 * needed here): the HF-layout GPT-2 checkpoint is imported, then logits, losses, every gradient, the
 * features and the parameters after 3 AdamW steps must match torch for the lm, cls and reward heads.
 * Also `lab lm-loss`.
 */
import assert from "node:assert/strict";
import { paramLayout } from "../kernels/config.ts";
import { getGpu } from "../kernels/device.ts";
import { GptModel, type Head } from "../kernels/gpt.ts";
import { paramsFromFlat } from "../kernels/reference.ts";
import { loadTorchFixtures, TORCH_CHECKPOINT_DIR } from "./fixtures/torch-reference.ts";
import { lmLoss } from "../scripts/cli/lm-loss.ts";

const fx = await loadTorchFixtures();
const { B, T, tokens, lengths, targets, classTargets, pairTargets } = fx.batch;

function maxDiff(got: ArrayLike<number>, want: ArrayLike<number>, mask?: (i: number) => boolean) {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    if (mask && !mask(i)) continue;
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return { diff, rel: diff / Math.max(scale, 1e-12) };
}

/** A model on the fixture batch, with the reward head's pair targets or else the class targets. */
function newModel(gpu: Awaited<ReturnType<typeof getGpu>>, head: Head = "lm") {
  const model = new GptModel(gpu, fx.config, fx.params, { batchSize: B, seqLen: T });
  model.setBatch(
    head === "reward"
      ? { tokens, lengths, targets, pairTargets: Float32Array.from(pairTargets) }
      : { tokens, lengths, targets, classTargets: Float32Array.from(classTargets) },
  );
  model.setOptimizer({
    lr: fx.adamw.lr,
    beta1: fx.adamw.beta1,
    beta2: fx.adamw.beta2,
    eps: fx.adamw.eps,
    weightDecay: fx.adamw.weightDecay,
    maxGradNorm: fx.adamw.maxGradNorm,
  });
  return model;
}

Deno.test("torch: LM logits at every valid position match", async () => {
  const gpu = await getGpu();
  const model = newModel(gpu);
  model.logitsStep();
  const logits = await model.readLogits();
  const V = fx.config.vocabSize;
  const valid = (i: number) => {
    const row = Math.floor(i / (T * V));
    const t = Math.floor(i / V) % T;
    return t < lengths[row];
  };
  const { rel } = maxDiff(logits, fx.lm.logits, valid);
  assert.ok(rel <= 1e-4, `LM logits rel error ${rel}`);
  model.destroy();
});

/**
 * Parameters whose exact gradient under a head is zero, so float32 leaves noise that AdamW normalizes
 * (they may move by up to lr per step): the key bias (softmax ignores a shift per query), and ln_f.bias
 * under the reward head (a shift of every reward cancels in r₂ − r₁).
 */
function zeroGradientPart(head: Head, name: string): ((i: number) => boolean) | undefined {
  const C = fx.config.width;
  if (name.endsWith("attn.c_attn.bias")) return (i) => i >= C && i < 2 * C;
  if (head === "reward" && name === "ln_f.bias") return () => true;
}

for (const head of ["lm", "cls", "reward"] as const) {
  Deno.test(`torch ${head}: loss, every gradient and 3 AdamW steps match`, async () => {
    const gpu = await getGpu();
    const want = fx[head];
    const model = newModel(gpu, head);
    const layout = paramLayout(fx.config);

    model.setOptimizer({ lr: 0 });
    model.trainStep(head);
    const first = await model.readStats();
    assert.ok(
      Math.abs(first.loss - want.loss) <= 1e-5 * want.loss,
      `loss ${first.loss} vs torch ${want.loss}`,
    );
    assert.ok(
      Math.abs(first.gradNorm - want.adamwSteps[0].gradNorm) <= 1e-4 * want.adamwSteps[0].gradNorm,
      `grad norm ${first.gradNorm} vs torch ${want.adamwSteps[0].gradNorm}`,
    );
    const grads = paramsFromFlat(fx.config, await model.readGrads());
    const bad: string[] = [];
    for (const [name, g] of want.grads) {
      if (head === "reward" && name === "ln_f.bias") {
        // Exactly zero (see zeroGradientPart): float32 noise within 1e-6 of the gradient norm.
        const { diff } = maxDiff(grads.get(name)!, g);
        if (!(diff <= 1e-6 * want.adamwSteps[0].gradNorm)) bad.push(`${name}: abs ${diff.toExponential(2)}`);
        continue;
      }
      const { rel } = maxDiff(grads.get(name)!, g);
      if (!(rel <= 1e-3)) bad.push(`${name}: rel ${rel.toExponential(2)}`);
    }
    assert.deepEqual(bad, [], `gradients differ from torch:\n${bad.join("\n")}`);
    if (head === "cls") {
      // Empty rows (length 0) have no last token: only rows with tokens are compared.
      const logits = await model.readClassLogits();
      const { rel } = maxDiff(logits, want.logits, (i) => lengths[Math.floor(i / 2)] > 0);
      assert.ok(rel <= 1e-4, `cls logits rel error ${rel}`);
    }
    if (head === "reward") {
      const rewards = await model.readRewards();
      const { rel } = maxDiff(rewards, want.logits, (i) => lengths[i] > 0);
      assert.ok(rel <= 1e-4, `rewards rel error ${rel}`);
      assert.equal(first.count, 1, "pair 1 holds the empty row: one pair compared");
    }
    model.destroy();

    // Three real steps from the same start.
    const stepper = newModel(gpu, head);
    for (let s = 0; s < fx.adamw.steps; s++) {
      stepper.trainStep(head);
      const stats = await stepper.readStats();
      const ref = want.adamwSteps[s];
      assert.ok(
        Math.abs(stats.loss - ref.loss) <= 1e-4 * ref.loss,
        `step ${s}: loss ${stats.loss} vs ${ref.loss}`,
      );
    }
    const after = paramsFromFlat(fx.config, await stepper.readParams());
    const drift: string[] = [];
    for (const [name, p] of want.afterAdamW) {
      const zero = zeroGradientPart(head, name) ?? (() => false);
      const { diff } = maxDiff(after.get(name)!, p, (i) => !zero(i));
      if (!(diff <= 1e-5)) drift.push(`${name}: max abs diff ${diff.toExponential(2)}`);
      const noise = maxDiff(after.get(name)!, p, zero);
      if (!(noise.diff <= fx.adamw.lr * fx.adamw.steps)) {
        drift.push(`${name} (zero-gradient part): ${noise.diff}`);
      }
    }
    assert.deepEqual(
      drift,
      [],
      `parameters after ${fx.adamw.steps} AdamW steps differ:\n${drift.join("\n")}`,
    );
    assert.ok(layout.total > 0);
    stepper.destroy();
  });
}

Deno.test("torch: last-token features of every layer match", async () => {
  const gpu = await getGpu();
  const model = newModel(gpu);
  model.featuresStep();
  const features = await model.readFeatures();
  for (let l = 0; l < fx.features.length; l++) {
    const { rel } = maxDiff(features[l], fx.features[l]);
    assert.ok(rel <= 1e-4, `features layer ${l}: rel error ${rel}`);
  }
  model.destroy();
});

Deno.test("lab lm-loss: the HF checkpoint's loss on one sequence matches torch's math", async () => {
  // Row 0 of the fixture batch is full length; its mean next-token loss from the torch logits.
  const V = fx.config.vocabSize;
  const len = lengths[0];
  let sum = 0;
  for (let t = 0; t + 1 < len; t++) {
    const row = fx.lm.logits.subarray(t * V, (t + 1) * V);
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
    sum += lse - row[tokens[t + 1]];
  }
  const want = sum / (len - 1);
  const got = await lmLoss(TORCH_CHECKPOINT_DIR, tokens.slice(0, len));
  assert.ok(Math.abs(got - want) <= 1e-5 * want, `lm-loss ${got} vs ${want}`);
  await assert.rejects(lmLoss(TORCH_CHECKPOINT_DIR, Int32Array.from([1, 99])), /token id 99 at position 1/);
});
