/**
 * The engine's whole training step on a second WebGPU implementation: headless Chromium's Dawn, whose
 * Tint compiler is stricter than Deno's naga, on SwiftShader (which grants `subgroups`, so the subgroup
 * reductions run too). The product promise is "any WebGPU adapter"; this is the check that every kernel
 * the model uses compiles under Tint and computes the right thing there.
 *
 * The GptModel is built here on a recording stand-in device (tests/helpers/recording-gpu.ts); setBatch
 * and trainStep drive its queue exactly as on a real device (writeBuffer, then ONE command encoder with
 * forward, backward, gradient norm and AdamW), and that queue work is replayed in the page
 * (tests/helpers/browser-webgpu.ts). The buffers read back are compared with the float64 reference
 * (kernels/reference.ts) on the tiny padded config of tests/gpt.test.ts: the loss, valid-target count,
 * gradient norm, EVERY parameter gradient (rel ≤ 1e-3 per tensor) and every parameter after the AdamW
 * step (≤ 1e-5 absolute), for both heads, with and without subgroups (the tree fallback), for the
 * default attention version (see ATTENTION_VERSIONS).
 * A control run with one parameter word perturbed in the replayed buffers must fail the same checks.
 */
import assert from "node:assert/strict";
import { paramLayout } from "../kernels/config.ts";
import { type AttentionVersion, GptModel, type Head, nextTokenTargets } from "../kernels/gpt.ts";
import { STAT_COUNT, STAT_GRAD_NORM_SQ, STAT_LOSS, STAT_NONFINITE } from "../kernels/stats.ts";
import {
  DEFAULT_ADAMW,
  newAdamWState,
  paramsFromFlat,
  refAdamWStep,
  refBackward,
  refForward,
} from "../kernels/reference.ts";
import type { Tensor } from "../kernels/runtime.ts";
import { bufferId, recordingGpu, type ReplayProgram } from "./helpers/recording-gpu.ts";
import { B, cfg, lengths, randomBatch, refBatch, relError, T, testParameters } from "./helpers/tiny-gpt.ts";
import { assertChromium, browserTestIgnored, floatsOf, replayInChromium } from "./helpers/browser-webgpu.ts";

const flat = testParameters(11);
const { tokens, classTargets } = randomBatch(5);
const lmTargets = nextTokenTargets(tokens, lengths, T);
const batch = refBatch(tokens, classTargets);

/** What one head's step must produce, from the float64 reference. */
interface Expected {
  loss: number;
  count: number;
  gradNormSq: number;
  grads: Map<string, Float64Array>;
  paramsAfter: Map<string, Float64Array>;
}

function expected(head: Head): Expected {
  const params = paramsFromFlat(cfg, flat);
  const fwd = refForward(cfg, params, batch, head);
  const grads = refBackward(cfg, params, batch, head, fwd);
  let gradNormSq = 0;
  for (const g of grads.values()) for (const v of g) gradNormSq += v * v;
  const count = head === "lm"
    ? lmTargets.filter((t) => t >= 0).length
    : lengths.filter((len) => len > 0).length;
  refAdamWStep(cfg, params, grads, newAdamWState(cfg), DEFAULT_ADAMW);
  return { loss: fwd.loss, count, gradNormSq, grads, paramsAfter: params };
}

/** One recorded training step: the replayable program and where its results live. */
interface StepCase {
  name: string;
  head: "lm" | "cls";
  program: ReplayProgram;
  params: Tensor;
  grads: Tensor;
  stats: Tensor;
}

function recordStep(head: StepCase["head"], attention: AttentionVersion, subgroups: boolean): StepCase {
  const rec = recordingGpu(subgroups);
  const model = new GptModel(rec.gpu, cfg, flat, { batchSize: B, seqLen: T, attention });
  rec.startCapture();
  model.setBatch({ tokens, lengths, classTargets });
  model.trainStep(head);
  const program = rec.captured();
  const name = `${head} head, attention ${attention}, ${subgroups ? "subgroups" : "tree reductions"}`;
  // Both the batch upload and the step's own parameter writes precede the single submit.
  assert.deepEqual(
    program.commands!.map((c) => c.op).filter((op, i, all) => op !== all[i - 1]),
    ["write", "submit"],
    name,
  );
  assert.equal(program.dispatches.length, model.dispatchCount(head), `${name}: dispatches`);
  if (subgroups) {
    assert.ok(program.dispatches.some((d) => /^enable subgroups;/.test(d.code)), `${name}: subgroup path`);
  } else assert.ok(program.dispatches.every((d) => !/subgroup/.test(d.code)), `${name}: tree path`);
  const [params, grads] = [model.params, model.grads].map((flat) => {
    assert.equal(flat.shards.length, 1, `${name}: ${flat.label} in one buffer`);
    return flat.shards[0].tensor;
  });
  return { name, head, program, params, grads, stats: model.stats };
}

/** Compares one replayed step with the reference: problems found, and the worst errors for the log. */
function compare(c: StepCase, words: number[][], want: Expected): { problems: string[]; summary: string } {
  const read = (t: Tensor) => floatsOf(words[bufferId(t)]).slice(t.offset, t.offset + t.length);
  const problems: string[] = [];
  const stats = read(c.stats);
  const lossErr = Math.abs(stats[STAT_LOSS] - want.loss) / Math.abs(want.loss);
  if (!(lossErr <= 1e-4)) problems.push(`loss ${stats[STAT_LOSS]} vs ${want.loss}`);
  if (stats[STAT_COUNT] !== want.count) problems.push(`count ${stats[STAT_COUNT]} vs ${want.count}`);
  if (stats[STAT_NONFINITE] !== 0) problems.push("non-finite flag set");
  const normErr = Math.abs(stats[STAT_GRAD_NORM_SQ] - want.gradNormSq) / want.gradNormSq;
  if (!(normErr <= 1e-3)) problems.push(`grad norm² ${stats[STAT_GRAD_NORM_SQ]} vs ${want.gradNormSq}`);

  const grads = paramsFromFlat(cfg, read(c.grads));
  let worstGrad = { err: 0, name: "" };
  for (const [name, g] of want.grads) {
    const err = relError(grads.get(name)!, g);
    if (!(err <= 1e-3)) problems.push(`gradient ${name}: rel error ${err.toExponential(2)}`);
    if (err > worstGrad.err) worstGrad = { err, name };
  }

  const after = paramsFromFlat(cfg, read(c.params));
  const before = paramsFromFlat(cfg, flat);
  let worstParam = { diff: 0, name: "" };
  let moved = 0;
  for (const [name, p] of want.paramsAfter) {
    const got = after.get(name)!;
    // The key bias has an exactly-zero gradient (softmax ignores a per-query shift); in float32 it is
    // noise that AdamW normalizes, so those C elements may move by up to lr (as in tests/gpt.test.ts).
    const keyBias = (i: number) => name.endsWith("attn.c_attn.bias") && i >= cfg.width && i < 2 * cfg.width;
    for (let i = 0; i < p.length; i++) {
      const d = Math.abs(got[i] - p[i]);
      moved = Math.max(moved, Math.abs(got[i] - before.get(name)![i]));
      if (keyBias(i)) {
        if (!(d <= DEFAULT_ADAMW.lr)) problems.push(`${name}[${i}] (key part) after the step: off by ${d}`);
      } else {
        if (!(d <= 1e-5)) problems.push(`${name}[${i}] after the step: ${got[i]} vs ${p[i]}`);
        if (d > worstParam.diff) worstParam = { diff: d, name };
      }
    }
  }
  // The first AdamW step moves a weight by about lr: a step that did nothing must not pass.
  if (!(moved >= 0.5 * DEFAULT_ADAMW.lr)) problems.push(`the step moved no parameter (max ${moved})`);
  const summary =
    `loss ${stats[STAT_LOSS].toFixed(5)} vs ${want.loss.toFixed(5)} (rel ${lossErr.toExponential(1)}), ` +
    `grad norm² rel ${normErr.toExponential(1)}, worst gradient ${worstGrad.name} rel ${
      worstGrad.err.toExponential(1)
    }, worst parameter after AdamW ${worstParam.name} abs ${worstParam.diff.toExponential(1)}`;
  return { problems, summary };
}

/** The same program with one word of `tensor` (element `index`) changed to `value` in the initial buffers. */
function perturbed(c: StepCase, tensor: Tensor, index: number, value: number): StepCase {
  const buffers = c.program.buffers.map((b) =>
    b.id === bufferId(tensor) ? { id: b.id, words: b.words.slice() } : b
  );
  const words = buffers[bufferId(tensor)].words;
  words[tensor.offset + index] = new Uint32Array(Float32Array.of(value).buffer)[0];
  return { ...c, name: c.name + ", one parameter perturbed", program: { ...c.program, buffers } };
}

/**
 * Attention versions replayed: the model's default (v3 at these head sizes), as each version adds
 * seconds of SwiftShader compilation; BROWSER_ATTENTION=v1,v2,v3 replays the others too (all pass).
 */
const ATTENTION_VERSIONS = (Deno.env.get("BROWSER_ATTENTION") ?? "v3").split(",").map((v) => {
  if (!["v1", "v2", "v3"].includes(v)) throw new Error(`BROWSER_ATTENTION: unknown attention version ${v}`);
  return v as AttentionVersion;
});

Deno.test({
  name: "browser engine: a whole training step in Chromium's WebGPU (Tint) matches the float64 reference",
  ignore: browserTestIgnored,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    assertChromium();
    const cases: StepCase[] = [];
    for (const attention of ATTENTION_VERSIONS) {
      for (const head of ["lm", "cls"] as const) {
        for (const subgroups of [true, false]) cases.push(recordStep(head, attention, subgroups));
      }
    }
    const spec = paramLayout(cfg).byName.get("h.1.mlp.c_proj.weight")!;
    const control = perturbed(cases[0], cases[0].params, spec.offset + 5, 0.75);
    const want = { lm: expected("lm"), cls: expected("cls") };

    const result = await replayInChromium([...cases, control].map((c) => c.program));
    const { compile, run, read } = result.ms;
    console.log(
      `page adapter: ${result.adapter}, subgroup sizes ${result.subgroupSizes.join("–")}; ` +
        `compile ${compile.toFixed(0)} ms, run ${run.toFixed(0)} ms, read back ${read.toFixed(0)} ms`,
    );
    assert.deepEqual(result.errors, [], "WebGPU errors in the page (Tint compilation or validation)");
    const report: string[] = [];
    cases.forEach((c, i) => {
      const { problems, summary } = compare(c, result.runs[i][0], want[c.head]);
      console.log(`  ${c.name} (${c.program.dispatches.length} dispatches): ${summary}`);
      report.push(...problems.slice(0, 5).map((p) => `${c.name}: ${p}`));
    });
    assert.deepEqual(report, [], `the page's step differs from the reference:\n${report.join("\n")}`);
    const caught = compare(control, result.runs[cases.length][0], want[control.head]).problems;
    console.log(`  control (${control.name}): ${caught.length} problems found, e.g. ${caught[0]}`);
    assert.ok(
      caught.some((p) => p.startsWith("gradient")),
      "a perturbed parameter must change the gradients",
    );
  },
});
