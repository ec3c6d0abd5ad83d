/**
 * Cross-entropy (kernels/ops/crossentropy.ts): the LM head with ignored rows and an out-of-range target,
 * and the classification head with soft targets, invalid rows and the logconf aux target (hand-computed
 * quantiles), against float64 references; the stats slots of kernels/stats.ts.
 */
import assert from "node:assert/strict";
import { getGpu, type Gpu } from "../kernels/device.ts";
import { readTensor } from "../kernels/runtime.ts";
import {
  type CrossEntropyVersion,
  planClassCrossEntropy,
  planLmCrossEntropy,
} from "../kernels/ops/crossentropy.ts";
import { STAT_CORRECT, STAT_COUNT, STAT_GRAD_NORM_SQ, STAT_LOSS, STAT_NONFINITE } from "../kernels/stats.ts";
import { assertBitIdentical, assertClose, placed, randoms, run } from "./helpers/kernel-check.ts";

function lmCrossEntropyRef(logits: Float32Array, targets: number[], V: number) {
  const rows = targets.length;
  const count = targets.filter((t) => t >= 0).length;
  const grad = new Float64Array(rows * V), rowLoss = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    if (targets[r] < 0) continue;
    const x = logits.subarray(r * V, (r + 1) * V);
    const max = Math.max(...x);
    const sum = x.reduce((acc, v) => acc + Math.exp(v - max), 0);
    rowLoss[r] = max + Math.log(sum) - x[targets[r]];
    for (let v = 0; v < V; v++) {
      grad[r * V + v] = (Math.exp(x[v] - max) / sum - (v === targets[r] ? 1 : 0)) / count;
    }
  }
  const loss = count > 0 ? rowLoss.reduce((a, b) => a + b, 0) / count : 0;
  return { grad, rowLoss, loss, count };
}

Deno.test("LM cross-entropy with ignored rows on odd shapes; deterministic; out-of-range target flagged", async () => {
  const gpu = await getGpu();
  const cases: [number, number][] = [[1, 1], [7, 130], [33, 7], [5, 300], [3, 11]];
  for (const [rows, V] of cases) {
    const logits = randoms(rows * V, rows * V, 4);
    // Every third row ignored; the last case ignores all rows (loss 0, no NaN).
    const targets = Array.from({ length: rows }, (_, r) => (r % 3 === 2 || V === 11) ? -1 : (r * 5 + 1) % V);
    const ref = lmCrossEntropyRef(logits, targets, V);
    const tag = `rows=${rows} V=${V}`;
    let firstStats: Float32Array | undefined, firstGrad: Float32Array | undefined;
    for (let attempt = 0; attempt < 2; attempt++) {
      const logitsT = placed(gpu, logits, "logits");
      const targetsT = placed(gpu, Int32Array.from(targets), "targets");
      const rowLoss = placed(gpu, new Float32Array(rows), "rowLoss");
      const stats = placed(gpu, Float32Array.from([9, 9, 0.5, 0, 9, 0, 0, 0]), "stats");
      await run(
        gpu,
        planLmCrossEntropy(gpu, { logits: logitsT, targets: targetsT, rowLoss, stats, rows, V, label: "ce" }),
      );
      const grad = await readTensor(gpu, logitsT), st = await readTensor(gpu, stats);
      if (attempt === 0) {
        assertClose(grad, ref.grad, `LM CE dlogits ${tag}`, 1e-7, 1e-4);
        assertClose(await readTensor(gpu, rowLoss), ref.rowLoss, `LM CE row loss ${tag}`, 1e-5, 1e-5);
        assertClose([st[STAT_LOSS]], [ref.loss], `LM CE loss ${tag}`, 1e-6, 1e-5);
        assert.equal(st[STAT_COUNT], ref.count, `LM CE count ${tag}`);
        assert.equal(st[STAT_NONFINITE], 0, `LM CE nonfinite flag ${tag}`);
        assert.equal(st[STAT_GRAD_NORM_SQ], 0.5, `LM CE must not touch other stats ${tag}`);
        [firstStats, firstGrad] = [st, grad];
      } else {
        assertBitIdentical(firstStats!, st, `LM CE stats ${tag}`);
        assertBitIdentical(firstGrad!, grad, `LM CE dlogits ${tag}`);
      }
    }
  }
  // A target id ≥ V: counted, flagged non-finite, and the other rows' gradients stay finite.
  const V = 5, rows = 3;
  const logitsT = placed(gpu, randoms(rows * V, 1), "logits");
  const stats = placed(gpu, new Float32Array(8), "stats");
  const rowLoss = placed(gpu, new Float32Array(rows), "rowLoss");
  const targetsT = placed(gpu, Int32Array.from([1, 5, -1]), "targets");
  await run(
    gpu,
    planLmCrossEntropy(gpu, { logits: logitsT, targets: targetsT, rowLoss, stats, rows, V, label: "ce bad" }),
  );
  const st = await readTensor(gpu, stats);
  assert.equal(st[STAT_NONFINITE], 1, "target 5 with V = 5 must set the non-finite flag");
  assert.equal(st[STAT_COUNT], 2, "an out-of-range target still counts as a target");
  assert.ok((await readTensor(gpu, logitsT)).every(Number.isFinite), "dlogits must stay finite");
});

interface ClassCase {
  logits: number[];
  targets: number[];
  valid: number[];
}

/** Soft-label CE over valid rows; `hard0[r]` (1 = class 0) gives the aux target mixed in with alpha. */
function classRef(c: ClassCase, alpha: number, hard0?: number[]) {
  const B = c.valid.length, count = c.valid.filter((v) => v).length;
  const grad = new Float64Array(2 * B), rowLoss = new Float64Array(B);
  let correct = 0;
  for (let r = 0; r < B; r++) {
    if (!c.valid[r]) continue;
    const [l0, l1] = [c.logits[2 * r], c.logits[2 * r + 1]];
    let [t0, t1] = [c.targets[2 * r], c.targets[2 * r + 1]];
    if ((l1 > l0 ? 1 : 0) === (t1 > t0 ? 1 : 0)) correct++;
    if (hard0) [t0, t1] = [(1 - alpha) * t0 + alpha * hard0[r], (1 - alpha) * t1 + alpha * (1 - hard0[r])];
    const lse = Math.log(Math.exp(l0) + Math.exp(l1));
    rowLoss[r] = -(t0 * (l0 - lse) + t1 * (l1 - lse));
    grad[2 * r] = (Math.exp(l0 - lse) * (t0 + t1) - t0) / count;
    grad[2 * r + 1] = (Math.exp(l1 - lse) * (t0 + t1) - t1) / count;
  }
  return { grad, rowLoss, loss: rowLoss.reduce((a, b) => a + b, 0) / Math.max(count, 1), count, correct };
}

/** torch.quantile(values, q) with linear interpolation, then the hard labels of logconf. */
function logconfHardRef(c: ClassCase): number[] {
  const B = c.valid.length;
  const p0 = Array.from({ length: B }, (_, r) => 1 / (1 + Math.exp(c.logits[2 * r + 1] - c.logits[2 * r])));
  const validRows = [...Array(B).keys()].filter((r) => c.valid[r]);
  const q = validRows.reduce((a, r) => a + c.targets[2 * r + 1], 0) / validRows.length;
  const sorted = validRows.map((r) => p0[r]).sort((a, b) => a - b);
  const pos = q * (sorted.length - 1), lo = Math.floor(pos), hi = Math.ceil(pos);
  const threshold = sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
  return p0.map((p) => (p >= threshold ? 1 : 0));
}

async function runClass(gpu: Gpu, c: ClassCase, aux: boolean, alpha: number) {
  const B = c.valid.length;
  const logits = placed(gpu, Float32Array.from(c.logits), "class logits");
  const stats = placed(gpu, Float32Array.from([9, 9, 0.5, 0, 9, 0, 0, 0]), "stats");
  const rowLoss = placed(gpu, new Float32Array(B), "rowLoss");
  const d = planClassCrossEntropy(gpu, {
    logits,
    targets: placed(gpu, Float32Array.from(c.targets), "soft targets"),
    valid: placed(gpu, Int32Array.from(c.valid), "valid"),
    rowLoss,
    stats,
    B,
    label: "class ce",
    aux,
  });
  if (aux) d[0].setParams({ alpha });
  await run(gpu, d);
  return {
    grad: await readTensor(gpu, logits),
    stats: await readTensor(gpu, stats),
    rowLoss: await readTensor(gpu, rowLoss),
  };
}

function checkClass(
  got: Awaited<ReturnType<typeof runClass>>,
  want: ReturnType<typeof classRef>,
  tag: string,
) {
  assertClose(got.grad, want.grad, `class CE dlogits ${tag}`, 1e-7, 1e-4);
  assertClose(got.rowLoss, want.rowLoss, `class CE row loss ${tag}`, 1e-6, 1e-5);
  assertClose([got.stats[STAT_LOSS]], [want.loss], `class CE loss ${tag}`, 1e-6, 1e-5);
  assert.equal(got.stats[STAT_COUNT], want.count, `class CE count ${tag}`);
  assert.equal(got.stats[STAT_CORRECT], want.correct, `class CE correct ${tag}`);
  assert.equal(got.stats[STAT_NONFINITE], 0, `class CE nonfinite ${tag}`);
  assert.equal(got.stats[STAT_GRAD_NORM_SQ], 0.5, `class CE must not touch other stats ${tag}`);
}

Deno.test("class cross-entropy with soft targets, invalid rows, and the logconf aux target", async () => {
  const gpu = await getGpu();
  for (const B of [1, 7, 33, 130, 300]) {
    const raw = randoms(3 * B, B, 3);
    const c: ClassCase = {
      logits: [...raw.subarray(0, 2 * B)],
      targets: [...Array(B).keys()].flatMap((r) => {
        const p = (raw[2 * B + r] / 3 + 1) / 2;
        return [1 - p, p];
      }),
      valid: Array.from({ length: B }, (_, r) => (B > 1 && r % 4 === 1 ? 0 : 1)),
    };
    checkClass(await runClass(gpu, c, false, 0), classRef(c, 0), `B=${B}`);
    checkClass(await runClass(gpu, c, true, 0.3), classRef(c, 0.3, logconfHardRef(c)), `aux B=${B}`);
  }

  // Hand-computed quantiles. preds0 = σ(l0 − l1): [0,0] → 0.5, [1,0] → 0.731, [2,0] → 0.881, [-1,0] → 0.269.
  // A: five valid rows (two tied at 0.731), q = mean t1 = 0.75 → pos = 3 → threshold = 0.731 (the
  // second tied value): hard class 0 for rows 1, 2, 3. The invalid last row would move q and the
  // sorted values if it were counted.
  const tied: ClassCase = {
    logits: [0, 0, 1, 0, 1, 0, 2, 0, -1, 0, 5, -5],
    targets: [0.25, 0.75, 0.25, 0.75, 0.25, 0.75, 0.25, 0.75, 0.25, 0.75, 1, 0],
    valid: [1, 1, 1, 1, 1, 0],
  };
  const hardTied = [0, 1, 1, 1, 0, 0];
  // argmax: logits → [0, 0, 0, 0, 1], targets → class 1 everywhere: only row 4 is correct.
  const wantTied = classRef(tied, 0.5, hardTied);
  assert.equal(wantTied.correct, 1);
  checkClass(await runClass(gpu, tied, true, 0.5), wantTied, "hand quantile with ties");
  // B: four valid rows, q = 0.5 → pos = 1.5 → threshold = (0.5 + 0.731)/2: row 0 (0.5) is class 1
  // under linear interpolation (it would be class 0 with the "lower" rule).
  const lerp: ClassCase = {
    logits: [0, 0, 1, 0, 2, 0, -1, 0, -9, 9],
    targets: [0.75, 0.25, 0.5, 0.5, 0.125, 0.875, 0.625, 0.375, 0, 1],
    valid: [1, 1, 1, 1, 0],
  };
  const wantLerp = classRef(lerp, 0.5, [0, 1, 1, 0, 0]);
  assert.equal(wantLerp.correct, 2); // rows 0 (tie → class 0 both) and 1 (target tie → class 0)
  checkClass(await runClass(gpu, lerp, true, 0.5), wantLerp, "hand quantile lerp");
  // alpha = 0 in aux mode is the plain soft-label loss.
  checkClass(await runClass(gpu, lerp, true, 0), classRef(lerp, 0), "aux alpha 0");
});

/** The LM row pass of one version on rows padded to `ld` (padding holds 99), 4-aligned in their buffer. */
async function runPaddedRows(
  version: CrossEntropyVersion,
  logits: Float32Array,
  targets: number[],
  V: number,
) {
  const gpu = await getGpu();
  const rows = targets.length, ld = 4 * Math.ceil((V + 1) / 4);
  const padded = new Float32Array(rows * ld).fill(99);
  for (let r = 0; r < rows; r++) padded.set(logits.subarray(r * V, (r + 1) * V), r * ld);
  const logitsT = placed(gpu, padded, "logits", 40);
  const stats = placed(gpu, new Float32Array(8), "stats", 40);
  const rowLoss = placed(gpu, new Float32Array(rows), "rowLoss", 40);
  const targetsT = placed(gpu, Int32Array.from(targets), "targets", 40);
  const spec = { logits: logitsT, targets: targetsT, rowLoss, stats, rows, V, ld, label: "ce", version };
  await run(gpu, planLmCrossEntropy(gpu, spec));
  const out = await readTensor(gpu, logitsT);
  return { out, ld, rowLoss: await readTensor(gpu, rowLoss), stats: await readTensor(gpu, stats), spec };
}

Deno.test("LM cross-entropy v3 (vec4 rows) against float64 and bit for bit v2's; padding kept; refused where unaligned", async () => {
  for (const V of [1, 6, 7, 8, 130, 1538]) {
    const rows = 5;
    const logits = randoms(rows * V, 3 * V, 4);
    // Row 1 ignored; the last row's target is the row's last logit (in the partial vec4 where V % 4 ≠ 0).
    const targets = [0, -1, V >> 1, (3 * V) >> 2, V - 1];
    const ref = lmCrossEntropyRef(logits, targets, V);
    const got = await runPaddedRows("v3", logits, targets, V);
    const { ld } = got;
    const tag = `V=${V} ld=${ld}`;
    const grad = Float32Array.from({ length: rows * V }, (_, i) => got.out[Math.floor(i / V) * ld + (i % V)]);
    assertClose(grad, ref.grad, `v3 dlogits ${tag}`, 1e-7, 1e-4);
    assertClose(got.rowLoss, ref.rowLoss, `v3 row loss ${tag}`, 1e-5, 1e-5);
    assertClose([got.stats[STAT_LOSS]], [ref.loss], `v3 loss ${tag}`, 1e-6, 1e-5);
    for (let r = 0; r < rows; r++) {
      assert.ok(
        got.out.subarray(r * ld + V, (r + 1) * ld).every((x) => x === 99),
        `v3 keeps row ${r}'s padding ${tag}`,
      );
    }
    const v2 = await runPaddedRows("v2", logits, targets, V);
    assertBitIdentical(got.out, v2.out, `v3 dlogits against v2 ${tag}`);
    assertBitIdentical(got.rowLoss, v2.rowLoss, `v3 row loss against v2 ${tag}`);
    assertBitIdentical(got.stats, v2.stats, `v3 stats against v2 ${tag}`);
  }
  const gpu = await getGpu();
  const { spec } = await runPaddedRows("v3", randoms(6, 1), [1, 2], 3);
  assert.throws(
    () => planLmCrossEntropy(gpu, { ...spec, V: 3, ld: 3 }),
    /cross-entropy v3 \(vec4 rows\) does not apply: the row stride 3 is not a multiple of 4/,
  );
  // A target ≥ V is flagged as in v2, and the padding lane it names is left alone.
  const bad = await runPaddedRows("v3", randoms(6, 2), [1, 3], 3);
  assert.equal(bad.stats[STAT_NONFINITE], 1, "v3: target 3 with V = 3 must set the non-finite flag");
  assert.equal(bad.out[bad.ld + 3], 99, "v3: the out-of-range target's padding lane is kept");
});
