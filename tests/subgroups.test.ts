/**
 * The subgroup variant of the workgroup reductions (kernels/ops/reduce.ts) and its callers: gradient
 * norm, layernorm v1 forward/dx, LM cross-entropy v1 (count, rows, reduce), class cross-entropy.
 *
 * 1. Here (Deno's adapter, llvmpipe, has no `subgroups`): the callers' WGSL without the feature holds
 *    no subgroup builtin or `enable`; with it, every module using a reduction starts with
 *    `enable subgroups;` and the barrier-free v2 row kernels stay the same.
 * 2. In headless Chromium with SwiftShader, which grants `subgroups`: the kernels are planned here on
 *    a recording stand-in device with the feature on (tests/helpers/recording-gpu.ts), their code,
 *    bind groups and initial buffers are replayed by plain WebGPU calls in a page served from
 *    127.0.0.1, and the results are compared with float64 references computed here. Each program runs
 *    twice in the page from the same initial buffers; the two runs must be bit-identical.
 * Without Chromium the browser test is skipped, unless REQUIRE_ALL=1.
 */
import assert from "node:assert/strict";
import { mulberry32 } from "../kernels/random.ts";
import { createTensor, type Dispatch, plan, type Tensor } from "../kernels/runtime.ts";
import { bindOperands, offsetParams } from "../kernels/ops/operands.ts";
import { subgroupsEnable, workgroupReduce } from "../kernels/ops/reduce.ts";
import { gradNormPartials, planGradNorm } from "../kernels/ops/optimizer.ts";
import { planLayernormBackward, planLayernormForward } from "../kernels/ops/layernorm.ts";
import { planClassCrossEntropy, planLmCrossEntropy } from "../kernels/ops/crossentropy.ts";
import { STAT_CORRECT, STAT_COUNT, STAT_GRAD_NORM_SQ, STAT_LOSS, STAT_NONFINITE } from "../kernels/stats.ts";
import {
  crossEntropyForwardBackward,
  layernormBackward,
  layernormForward,
  softCrossEntropyForwardBackward,
} from "../kernels/reference.ts";
import { bufferId, type RecordingGpu, recordingGpu, type ReplayProgram } from "./helpers/recording-gpu.ts";
import { assertChromium, browserTestIgnored, floatsOf, replayInChromium } from "./helpers/browser-webgpu.ts";

const SUBGROUP_WORDS = /subgroup|enable /;

/** Plans every caller of workgroupReduce (both row versions) on a recording device; returns its code. */
function callerSources(subgroups: boolean): { v1: string[]; v2: string[] } {
  const rec = recordingGpu(subgroups);
  const g = rec.gpu;
  const t = (n: number, label: string) => createTensor(g, n, label);
  const codeOf = (ds: Dispatch[]) => ds.map((d) => rec.program([d]).dispatches[0].code);
  const v1: string[] = [], v2: string[] = [];
  const n = 5000, N = 3, C = 70;
  const gradNorm = (version: "v1" | "v2") =>
    codeOf(
      planGradNorm(g, { grads: t(n, "g"), n, stats: t(8, "s"), partials: t(2, "p"), label: "gn", version }),
    );
  v1.push(...gradNorm("v1"));
  // v2's partial sums reduce with a tree of their own (its total is pass 2, v1's).
  v2.push(gradNorm("v2")[0]);
  for (const version of ["v1", "v2"] as const) {
    const out = version === "v1" ? v1 : v2;
    for (const residual of [undefined, { stream: t(N * C, "st"), branch: t(N * C, "br") }]) {
      const x = t(N * C, "x"), params = t(2 * C, "p");
      out.push(...codeOf([...planLayernormForward(g, {
        x,
        params,
        gammaOffset: 0,
        betaOffset: C,
        y: t(N * C, "y"),
        mean: t(N, "m"),
        rstd: t(N, "r"),
        N,
        C,
        label: "ln",
        version,
        residual,
      })]));
    }
    const [dx, paramGrads] = planLayernormBackward(g, {
      dy: t(N * C, "dy"),
      x: t(N * C, "x"),
      mean: t(N, "m"),
      rstd: t(N, "r"),
      params: t(2 * C, "p"),
      gammaOffset: 0,
      dx: t(N * C, "dx"),
      accumulateDx: false,
      grads: t(2 * C, "g"),
      dgammaOffset: 0,
      dbetaOffset: C,
      N,
      C,
      label: "lnb",
      version,
    });
    out.push(...codeOf([dx]));
    v2.push(...codeOf([paramGrads])); // column sums: no reduction in either version
    const [count, rows, reduce] = planLmCrossEntropy(g, {
      logits: t(N * C, "l"),
      targets: t(N, "t"),
      rowLoss: t(N, "rl"),
      stats: t(8, "s"),
      rows: N,
      V: C,
      label: "ce",
      version,
    });
    v1.push(...codeOf([count, reduce]));
    out.push(...codeOf([rows]));
  }
  for (const aux of [false, true]) {
    v1.push(...codeOf(planClassCrossEntropy(g, {
      logits: t(2 * N, "l"),
      targets: t(2 * N, "t"),
      valid: t(N, "v"),
      rowLoss: t(N, "rl"),
      stats: t(8, "s"),
      B: N,
      label: "cls",
      aux,
    })));
  }
  return { v1, v2 };
}

Deno.test("subgroups: without the feature the callers' WGSL has no subgroup builtins", () => {
  const off = callerSources(false);
  const on = callerSources(true);
  assert.equal(off.v1.length, 12);
  for (const code of [...off.v1, ...off.v2]) {
    assert.doesNotMatch(code, SUBGROUP_WORDS, `fallback kernel uses subgroups:\n${code.slice(0, 400)}`);
    assert.match(code, /workgroupBarrier|for \(var/, "every kernel here reduces or loops");
  }
  for (const code of off.v1) assert.match(code, /for \(var stride = \d+u; stride > 0u/, "tree reduction");
  on.v1.forEach((code, i) => {
    assert.ok(code.startsWith("enable subgroups;\n"), `kernel ${i} with subgroups must enable them first`);
    assert.match(code, /subgroupAdd|subgroupMax/);
    assert.doesNotMatch(code, /stride/, "the subgroup variant has no tree");
    assert.equal(code.replace("enable subgroups;\n", "").match(/enable /), null, "one directive");
  });
  // The v2 row kernels and column sums have no workgroup reduction: identical with or without.
  assert.deepEqual(on.v2, off.v2);
  assert.equal(subgroupsEnable({ subgroups: false }), "");
});

/** Random f32 values in [lo, hi). */
function randoms(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const rand = mulberry32(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
}

/** Max |got − want| / (1 + |want|); asserts it is within tol and returns it for the log. */
function close(name: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number): number {
  assert.equal(got.length, want.length, `${name}: length`);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i]));
    assert.ok(err <= tol, `${name}[${i}]: got ${got[i]}, want ${want[i]} (tolerance ${tol})`);
    worst = Math.max(worst, err);
  }
  return worst;
}

/** A kernel of the test's own: per workgroup (row), sum and max of n values, and the sum again of 2x. */
function reductionProbe(
  rec: RecordingGpu,
  wg: number,
  rows: number,
  n: number,
  x: Tensor,
  out: Tensor,
): Dispatch {
  const g = rec.gpu;
  const b = bindOperands(g, "probe", [{ name: "x", tensor: x }, { name: "out", tensor: out, write: true }]);
  const code = subgroupsEnable({ subgroups: true }) + /* wgsl */ `
struct Params { n: u32, x_off: u32, out_off: u32 }
@group(0) @binding(0) var<uniform> params: Params;
${b.declarations}${workgroupReduce(wg, { sum: "reduce_sum", max: "reduce_max" }, { subgroups: true })}
@compute @workgroup_size(${wg})
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let tid = lid.x;
  let row = wid.x;
  var s = 0.0;
  var m = -3.4028234663852886e38;
  for (var i = tid; i < params.n; i += ${wg}u) {
    let v = ${b.array.x}[params.x_off + row * params.n + i];
    s += v;
    m = max(m, v);
  }
  let total = reduce_sum(tid, s);
  let top = reduce_max(tid, m);
  let again = reduce_sum(tid, 2.0 * s); // reuse of red right after another reduction
  if (tid == 0u) {
    ${b.array.out}[params.out_off + 3u * row] = total;
    ${b.array.out}[params.out_off + 3u * row + 1u] = top;
    ${b.array.out}[params.out_off + 3u * row + 2u] = again;
  }
}
`;
  return plan(g, {
    label: `probe wg=${wg} n=${n}`,
    code,
    params: { n, ...offsetParams(b) },
    bindings: b.bindings,
    workgroups: [rows],
  });
}

/** One case: a program to replay and a check of its (first run's) buffers. */
interface BrowserCase {
  name: string;
  program: ReplayProgram;
  check(read: (t: Tensor) => Float32Array): string;
}

function reductionCases(): BrowserCase[] {
  const cases: BrowserCase[] = [];
  for (const wg of [64, 256]) {
    for (const n of [1, 3, 63, 64, 65, 255, 257, 1001]) {
      const rec = recordingGpu(true);
      const rows = 3;
      const data = randoms(rows * n, wg * 7919 + n);
      // Row 1's maximum sits at its last element, row 2 is all negative.
      data[2 * n - 1] = 5;
      for (let i = 2 * n; i < 3 * n; i++) data[i] = -2 - data[i];
      const x = createTensor(rec.gpu, rows * n, "x", data);
      const out = createTensor(rec.gpu, 3 * rows, "out");
      const d = reductionProbe(rec, wg, rows, n, x, out);
      cases.push({
        name: `sum/max wg=${wg} n=${n}`,
        program: rec.program([d]),
        check(read) {
          const got = read(out);
          let worst = 0;
          for (let r = 0; r < rows; r++) {
            const row = Array.from(data.subarray(r * n, (r + 1) * n));
            const sum = row.reduce((a, v) => a + v, 0), abs = row.reduce((a, v) => a + Math.abs(v), 0);
            const tag = `wg=${wg} n=${n} row ${r}`;
            const err = Math.abs(got[3 * r] - sum) / Math.max(1, abs);
            assert.ok(err < 1e-6, `sum ${tag}: got ${got[3 * r]}, want ${sum}`);
            assert.ok(Math.abs(got[3 * r + 2] - 2 * sum) / Math.max(1, abs) < 2e-6, `second sum ${tag}`);
            assert.equal(got[3 * r + 1], Math.max(...row), `max ${tag} must be exact`);
            worst = Math.max(worst, err);
          }
          return `sum rel. error ${worst.toExponential(1)}, max exact`;
        },
      });
    }
  }
  return cases;
}

function gradNormCases(): BrowserCase[] {
  // n = 1 cannot take vec4s (v1 by default); v2 on SwiftShader too.
  const runs = [[1, undefined], [4096, "v1"], [10_000, "v1"], [10_000, "v2"]] as const;
  return runs.map(([n, version]): BrowserCase => {
    const rec = recordingGpu(true);
    const g = rec.gpu;
    const grads = randoms(n, n + 1, -3, 3);
    const gt = createTensor(g, n, "grads", grads);
    const stats = createTensor(g, 8, "stats", Float32Array.from([9, 9, 9, 0, 9, 0, 0, 0]));
    const partials = createTensor(g, gradNormPartials(n), "partials");
    const program = rec.program(planGradNorm(g, { grads: gt, n, stats, partials, label: "gn", version }));
    return {
      name: `gradient norm ${version ?? "default"} n=${n}`,
      program,
      check(read) {
        const st = read(stats);
        const want = grads.reduce((a, v) => a + v * v, 0);
        const err = close(`grad norm² n=${n}`, [st[STAT_GRAD_NORM_SQ]], [want], 1e-5);
        assert.equal(st[STAT_NONFINITE], 0);
        assert.equal(st[STAT_LOSS], 9, "other stats untouched");
        return `norm² ${st[STAT_GRAD_NORM_SQ].toFixed(3)} vs ${want.toFixed(3)}, rel. error ${
          err.toExponential(1)
        }`;
      },
    };
  }).concat((() => {
    const rec = recordingGpu(true);
    const n = 5000, grads = randoms(n, 3);
    grads[4321] = NaN;
    const gt = createTensor(rec.gpu, n, "grads", grads), stats = createTensor(rec.gpu, 8, "stats");
    const partials = createTensor(rec.gpu, gradNormPartials(n), "partials");
    return [{
      name: "gradient norm with a NaN",
      program: rec.program(planGradNorm(rec.gpu, { grads: gt, n, stats, partials, label: "gn" })),
      check(read: (t: Tensor) => Float32Array) {
        assert.equal(read(stats)[STAT_NONFINITE], 1, "a NaN gradient must set the non-finite flag");
        return "non-finite flag set";
      },
    }];
  })());
}

function layernormCases(): BrowserCase[] {
  const cases: BrowserCase[] = [];
  for (const [N, C] of [[3, 37], [4, 130]]) {
    for (const fused of [false, true]) {
      const rec = recordingGpu(true);
      const g = rec.gpu;
      const stream = randoms(N * C, C + 1, -2, 3), branch = randoms(N * C, C + 2);
      const xIn = fused ? stream.map((v, i) => v + branch[i]) : stream;
      const gamma = randoms(C, 5, 0.5, 1.5), beta = randoms(C, 6);
      const params = createTensor(g, 2 * C + 3, "params", Float32Array.from([...gamma, ...beta, 0, 0, 0]));
      const x = createTensor(g, N * C, "x", fused ? undefined : stream);
      const y = createTensor(g, N * C, "y"),
        mean = createTensor(g, N, "mean"),
        rstd = createTensor(g, N, "rstd");
      const dy = randoms(N * C, 9), dx0 = randoms(N * C, 10), grads0 = randoms(2 * C, 11);
      const dyT = createTensor(g, N * C, "dy", dy), dxT = createTensor(g, N * C, "dx", dx0);
      const gradsT = createTensor(g, 2 * C, "grads", grads0);
      const fwd = planLayernormForward(g, {
        x,
        params,
        gammaOffset: 0,
        betaOffset: C,
        y,
        mean,
        rstd,
        N,
        C,
        label: "ln",
        version: "v1",
        residual: fused
          ? {
            stream: createTensor(g, N * C, "stream", stream),
            branch: createTensor(g, N * C, "branch", branch),
          }
          : undefined,
      });
      const bwd = planLayernormBackward(g, {
        dy: dyT,
        x,
        mean,
        rstd,
        params,
        gammaOffset: 0,
        dx: dxT,
        accumulateDx: true,
        grads: gradsT,
        dgammaOffset: 0,
        dbetaOffset: C,
        N,
        C,
        label: "lnb",
        version: "v1",
      });
      cases.push({
        name: `layernorm v1 N=${N} C=${C}${fused ? " fused residual" : ""}`,
        program: rec.program([...fwd, ...bwd]),
        check(read) {
          const x64 = Float64Array.from(xIn), g64 = Float64Array.from(gamma), b64 = Float64Array.from(beta);
          const yRef = new Float64Array(N * C), mRef = new Float64Array(N), rRef = new Float64Array(N);
          layernormForward(yRef, mRef, rRef, x64, g64, b64, N, C);
          const dxRef = Float64Array.from(dx0);
          const dgRef = Float64Array.from(grads0.subarray(0, C)),
            dbRef = Float64Array.from(grads0.subarray(C));
          layernormBackward(dxRef, dgRef, dbRef, Float64Array.from(dy), x64, g64, mRef, rRef, N, C);
          if (fused) assert.deepEqual(read(x), xIn, "fused x = stream + branch exactly");
          const errs = [
            close("ln mean", read(mean), mRef, 1e-5),
            close("ln rstd", read(rstd), rRef, 1e-5),
            close("ln y", read(y), yRef, 1e-5),
            close("ln dx", read(dxT), dxRef, 2e-5),
            close("ln dgamma dbeta", read(gradsT), [...dgRef, ...dbRef], 2e-5),
          ];
          return `max rel. error mean/rstd/y/dx/dparams ${errs.map((e) => e.toExponential(1)).join(" ")}`;
        },
      });
    }
  }
  return cases;
}

function crossEntropyCases(): BrowserCase[] {
  const cases: BrowserCase[] = [];
  for (const [rows, V] of [[5, 300], [3, 7]]) {
    const rec = recordingGpu(true);
    const g = rec.gpu;
    const logits = randoms(rows * V, rows * V, -4, 4);
    const targets = Int32Array.from({ length: rows }, (_, r) => r === 1 ? -1 : (r * 37 + 2) % V);
    const logitsT = createTensor(g, rows * V, "logits", logits);
    const rowLoss = createTensor(g, rows, "rowLoss");
    const stats = createTensor(g, 8, "stats", Float32Array.from([9, 9, 0.5, 0, 9, 0, 0, 0]));
    const ds = planLmCrossEntropy(g, {
      logits: logitsT,
      targets: createTensor(g, rows, "targets", targets),
      rowLoss,
      stats,
      rows,
      V,
      label: "ce",
      version: "v1",
    });
    cases.push({
      name: `LM cross-entropy v1 rows=${rows} V=${V}`,
      program: rec.program(ds),
      check(read) {
        const grad = new Float64Array(rows * V);
        const loss = crossEntropyForwardBackward(grad, Float64Array.from(logits), targets, rows, V);
        const st = read(stats);
        assert.equal(st[STAT_COUNT], rows - 1);
        assert.equal(st[STAT_NONFINITE], 0);
        assert.equal(st[STAT_GRAD_NORM_SQ], 0.5, "other stats untouched");
        const e1 = close("LM CE loss", [st[STAT_LOSS]], [loss], 1e-5);
        const e2 = close("LM CE dlogits", read(logitsT), grad, 1e-6);
        return `loss ${st[STAT_LOSS].toFixed(5)} vs ${loss.toFixed(5)}; rel. errors loss ${
          e1.toExponential(1)
        } dlogits ${e2.toExponential(1)}`;
      },
    });
  }
  for (const aux of [false, true]) {
    const rec = recordingGpu(true);
    const g = rec.gpu;
    const B = 300;
    const logits = randoms(2 * B, 21, -3, 3);
    const p1 = randoms(B, 22, 0, 1);
    const targets = Float32Array.from({ length: 2 * B }, (_, i) => i % 2 ? p1[i >> 1] : 1 - p1[i >> 1]);
    const valid = Int32Array.from({ length: B }, (_, r) => r % 7 === 3 ? 0 : 1);
    const logitsT = createTensor(g, 2 * B, "logits", logits);
    const stats = createTensor(g, 8, "stats");
    // aux with alpha = 0 (its planned value) leaves the targets as given but runs the quantile path.
    const ds = planClassCrossEntropy(g, {
      logits: logitsT,
      targets: createTensor(g, 2 * B, "targets", targets),
      valid: createTensor(g, B, "valid", valid),
      rowLoss: createTensor(g, B, "rowLoss"),
      stats,
      B,
      label: "cls",
      aux,
    });
    cases.push({
      name: `class cross-entropy B=${B}${aux ? " aux (alpha 0)" : ""}`,
      program: rec.program(ds),
      check(read) {
        const grad = new Float64Array(2 * B);
        const loss = softCrossEntropyForwardBackward(
          grad,
          Float64Array.from(logits),
          Float64Array.from(targets),
          valid,
          B,
          2,
        );
        let count = 0, correct = 0;
        for (let r = 0; r < B; r++) {
          if (!valid[r]) continue;
          count++;
          if ((logits[2 * r + 1] > logits[2 * r]) === (targets[2 * r + 1] > targets[2 * r])) correct++;
        }
        const st = read(stats);
        assert.equal(st[STAT_COUNT], count);
        assert.equal(st[STAT_CORRECT], correct);
        const e1 = close("class CE loss", [st[STAT_LOSS]], [loss], 1e-5);
        const e2 = close("class CE dlogits", read(logitsT), grad, 1e-6);
        return `count ${count}, correct ${correct}; rel. errors loss ${e1.toExponential(1)} dlogits ${
          e2.toExponential(1)
        }`;
      },
    });
  }
  return cases;
}

Deno.test({
  name: "subgroups: reductions and their callers in Chromium's SwiftShader match float64 references",
  ignore: browserTestIgnored,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    assertChromium();
    const cases = [...reductionCases(), ...gradNormCases(), ...layernormCases(), ...crossEntropyCases()];
    // Each program runs twice from the same initial buffers: the two runs must be bit-identical.
    const result = await replayInChromium(cases.map((c) => c.program), 2);
    console.log(`page adapter: ${result.adapter}, subgroup sizes ${result.subgroupSizes.join("–")}`);
    assert.deepEqual(result.errors, [], "WebGPU errors in the page");
    cases.forEach((c, i) => {
      // Each case runs at least one kernel on the subgroup path (not the tree fallback).
      assert.ok(
        c.program.dispatches.some((d) => /^enable subgroups;\n[^]*subgroupAdd/.test(d.code)),
        c.name,
      );
      const [first, second] = result.runs[i];
      first.forEach((words, b) =>
        assert.deepEqual(second[b], words, `${c.name}: rerun differs in buffer ${b}`)
      );
      const read = (t: Tensor) => floatsOf(first[bufferId(t)]).slice(t.offset, t.offset + t.length);
      console.log(`  ${c.name}: ${c.check(read)}; rerun bit-identical`);
    });
  },
});
