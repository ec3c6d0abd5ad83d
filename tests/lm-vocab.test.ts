/**
 * The LM head at a vocabulary long enough that one invocation looping over a row exceeds llvmpipe's
 * 65535-iteration budget (kernels/ops/crossentropy.ts LM_ROW_V2_MAX_VOCAB): the cross-entropy kernel
 * and the whole model's loss and gradients against float64 references; an explicit v2 is refused.
 */
import assert from "node:assert/strict";
import { type GptConfig, initParameters } from "../kernels/config.ts";
import { getGpu } from "../kernels/device.ts";
import { GptModel, nextTokenTargets } from "../kernels/gpt.ts";
import { LM_ROW_V2_MAX_VOCAB, planLmCrossEntropy } from "../kernels/ops/crossentropy.ts";
import { mulberry32 } from "../kernels/random.ts";
import { paramsFromFlat, refBackward, refForward } from "../kernels/reference.ts";
import { readTensor } from "../kernels/runtime.ts";
import { STAT_LOSS } from "../kernels/stats.ts";
import { assertClose, placed, randoms, run } from "./helpers/kernel-check.ts";

/** Past the v2 row pass's limit by enough that its cut loops would miss whole thousands of logits. */
const V = 30000;

Deno.test("LM cross-entropy over a GPT-2-sized row matches float64 (loss and every dlogit)", async () => {
  const gpu = await getGpu();
  const rows = 2;
  const logits = randoms(rows * V, 11, 2);
  const targets = [7, V - 1];
  const grad = new Float64Array(rows * V);
  let loss = 0;
  for (let r = 0; r < rows; r++) {
    const x = logits.subarray(r * V, (r + 1) * V);
    const max = x.reduce((a, b) => Math.max(a, b), -Infinity);
    const sum = x.reduce((acc, v) => acc + Math.exp(v - max), 0);
    loss += (max + Math.log(sum) - x[targets[r]]) / rows;
    for (let v = 0; v < V; v++) {
      grad[r * V + v] = (Math.exp(x[v] - max) / sum - (v === targets[r] ? 1 : 0)) / rows;
    }
  }
  const logitsT = placed(gpu, logits, "logits");
  const stats = placed(gpu, new Float32Array(8), "stats");
  const spec = {
    logits: logitsT,
    targets: placed(gpu, Int32Array.from(targets), "targets"),
    rowLoss: placed(gpu, new Float32Array(rows), "rowLoss"),
    stats,
    rows,
    V,
    label: "ce",
  };
  await run(gpu, planLmCrossEntropy(gpu, spec));
  assertClose([(await readTensor(gpu, stats))[STAT_LOSS]], [loss], `LM CE loss V=${V}`, 1e-6, 1e-5);
  assertClose(await readTensor(gpu, logitsT), grad, `LM CE dlogits V=${V}`, 1e-9, 1e-3);
  assert.throws(
    () => planLmCrossEntropy(gpu, { ...spec, version: "v2" }),
    new RegExp(`v2 \\(invocation per row\\) takes V ≤ ${LM_ROW_V2_MAX_VOCAB}, got V = ${V}`),
  );
});

Deno.test("GPT at a GPT-2-sized vocabulary: LM loss and gradients match the float64 reference", async () => {
  const gpu = await getGpu();
  const cfg: GptConfig = { vocabSize: V, contextLength: 4, width: 8, layers: 1, heads: 1 };
  const B = 2, T = 4;
  const params = initParameters(cfg, 5);
  const uniform = mulberry32(9);
  const tokens = Int32Array.from({ length: B * T }, () => Math.floor(uniform() * V));
  const lengths = new Int32Array(B).fill(T);
  const batch = { B, T, tokens, lengths, targets: nextTokenTargets(tokens, lengths, T) };
  const ref = refForward(cfg, paramsFromFlat(cfg, params), batch, "lm");
  const refGrads = refBackward(cfg, paramsFromFlat(cfg, params), batch, "lm", ref);

  const model = new GptModel(gpu, cfg, params, { batchSize: B, seqLen: T });
  model.setBatch({ tokens, lengths });
  model.setOptimizer({ lr: 0 });
  model.trainStep("lm");
  const stats = await model.readStats();
  const grads = paramsFromFlat(cfg, await model.readGrads());
  model.destroy();
  assertClose([stats.loss], [ref.loss], "LM loss", 1e-6, 1e-5);
  for (const name of ["wte.weight", "wpe.weight", "h.0.mlp.c_fc.weight", "ln_f.weight"]) {
    const want = refGrads.get(name)!;
    const scale = want.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    assertClose(grads.get(name)!, want, `d loss / d ${name}`, 1e-3 * scale, 1e-3);
  }
});
