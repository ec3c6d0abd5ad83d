/**
 * Peer benchmark: tfjs-backend-webgpu 4.22 on this process's WebGPU adapter (the same Deno adapter
 * our engine uses). Run as a subprocess by `deno task bench --peers` so tfjs's global state and its
 * own GPU device never touch ours; prints one JSON line on stdout.
 *
 *   deno run -A kernels/bench/peers/tfjs.ts [--quick] [--sizes 256,512] [--models 64/2,128/4,192/4]
 *
 * Matmul: S×S×S, wall time per call over `reps` calls ended by one read-back (the same method the
 * bench uses for our side of the ratio). Training: the GPT of kernels/gpt.ts built from tfjs ops —
 * token + position embedding, pre-LN blocks, causal multi-head attention, tanh-GELU 4× MLP, tied LM
 * head, mean softmax cross-entropy, AdamW (decoupled decay on matrices only, bias correction, the
 * engine's DEFAULT_ADAMW settings, no gradient clipping) — batch 32 × 64, vocabulary 256, width / layers
 * as --models names them (heads: width / 32),
 * tokens/s over timed steps ended by one loss read-back.
 */
// The umbrella package registers the gradient functions (tfjs-core alone has none for most ops).
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import { DEFAULT_ADAMW } from "../../config.ts";
import type { TfjsMatmul, TfjsReport, TfjsTraining } from "../report.ts";

async function benchMatmul(S: number): Promise<TfjsMatmul> {
  const a = tf.randomUniform([S, S], -0.5, 0.5);
  const b = tf.randomUniform([S, S], -0.5, 0.5);
  // Warm-up compiles the program and sizes the buffer pool.
  const warm = tf.matMul(a, b);
  await warm.data();
  warm.dispose();
  // Enough calls that the ≥ 10 ms read-back floor is a small part of the total.
  const reps = Math.max(3, Math.round(6e9 / (2 * S ** 3)));
  const start = performance.now();
  let last: tf.Tensor | undefined;
  for (let r = 0; r < reps; r++) {
    last?.dispose();
    last = tf.matMul(a, b);
  }
  await last!.data();
  const ms = (performance.now() - start) / reps;
  last!.dispose();
  a.dispose();
  b.dispose();
  return { size: S, ms, gflops: (2 * S ** 3) / ms / 1e6 };
}

interface Param {
  v: tf.Variable;
  m: tf.Variable;
  s: tf.Variable;
  decay: boolean;
}

function seededNormal(shape: number[], std: number, seed: number): tf.Tensor {
  return tf.truncatedNormal(shape, 0, std, "float32", seed);
}

async function benchTraining(C: number, L: number, H: number, steps: number): Promise<TfjsTraining> {
  const B = 32, T = 64, V = 256, D = C / H;
  const params: Param[] = [];
  let seed = 1;
  const add = (shape: number[], init: "normal" | "zeros" | "ones", decay: boolean) => {
    const value = init === "normal"
      ? seededNormal(shape, 0.02, seed++)
      : init === "ones"
      ? tf.ones(shape)
      : tf.zeros(shape);
    const p: Param = {
      v: tf.variable(value),
      m: tf.variable(tf.zeros(shape), false),
      s: tf.variable(tf.zeros(shape), false),
      decay,
    };
    value.dispose();
    params.push(p);
    return p.v;
  };
  const wte = add([V, C], "normal", true);
  const wpe = add([T, C], "normal", true);
  const blocks = [...Array(L)].map(() => ({
    ln1g: add([C], "ones", false),
    ln1b: add([C], "zeros", false),
    wqkv: add([C, 3 * C], "normal", true),
    bqkv: add([3 * C], "zeros", false),
    wo: add([C, C], "normal", true),
    bo: add([C], "zeros", false),
    ln2g: add([C], "ones", false),
    ln2b: add([C], "zeros", false),
    wfc: add([C, 4 * C], "normal", true),
    bfc: add([4 * C], "zeros", false),
    wp: add([4 * C, C], "normal", true),
    bp: add([C], "zeros", false),
  }));
  const lnfg = add([C], "ones", false);
  const lnfb = add([C], "zeros", false);

  const tokenIds = Int32Array.from({ length: B * T }, (_, i) => (i * 31 + 7) % V);
  const targetIds = Int32Array.from({ length: B * T }, (_, i) => (i % T === T - 1 ? 0 : tokenIds[i + 1]));
  const tokens = tf.tensor1d(tokenIds, "int32");
  const targets = tf.oneHot(tf.tensor1d(targetIds, "int32"), V);
  // Additive causal mask, T×T: 0 on and below the diagonal, −1e9 above.
  const mask = tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)), -1e9);

  const layernorm = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), g), b);
  };
  const gelu = (x: tf.Tensor) =>
    tf.mul(
      tf.mul(x, 0.5),
      tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3)))))),
    );
  const lossFn = () => {
    const pos = tf.tile(wpe, [B, 1]);
    let x: tf.Tensor = tf.add(tf.gather(wte, tokens), pos); // (B·T) × C
    for (const k of blocks) {
      const h = layernorm(x, k.ln1g, k.ln1b);
      const qkv = tf.add(tf.matMul(h, k.wqkv), k.bqkv);
      const heads = tf.transpose(tf.reshape(qkv, [B, T, 3, H, D]), [2, 0, 3, 1, 4]); // 3 B H T D
      const [q, kk, v] = tf.unstack(heads, 0);
      const scores = tf.add(tf.mul(tf.matMul(q, kk, false, true), 1 / Math.sqrt(D)), mask);
      const att = tf.matMul(tf.softmax(scores), v); // B H T D
      const merged = tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [B * T, C]);
      x = tf.add(x, tf.add(tf.matMul(merged, k.wo), k.bo));
      const h2 = layernorm(x, k.ln2g, k.ln2b);
      const fc = gelu(tf.add(tf.matMul(h2, k.wfc), k.bfc));
      x = tf.add(x, tf.add(tf.matMul(fc, k.wp), k.bp));
    }
    const logits = tf.matMul(layernorm(x, lnfg, lnfb), wte, false, true);
    return tf.losses.softmaxCrossEntropy(targets, logits) as tf.Scalar;
  };

  const { lr, beta1, beta2, eps, weightDecay: wd } = DEFAULT_ADAMW;
  let step = 0;
  const trainStep = (): tf.Scalar =>
    tf.tidy(() => {
      step++;
      const { value, grads } = tf.variableGrads(lossFn);
      const bc1 = 1 - beta1 ** step, bc2 = 1 - beta2 ** step;
      for (const p of params) {
        const g = grads[p.v.name];
        p.m.assign(tf.add(tf.mul(p.m, beta1), tf.mul(g, 1 - beta1)));
        p.s.assign(tf.add(tf.mul(p.s, beta2), tf.mul(tf.square(g), 1 - beta2)));
        const update = tf.div(tf.div(p.m, bc1), tf.add(tf.sqrt(tf.div(p.s, bc2)), eps));
        const decayed = p.decay ? tf.mul(p.v, 1 - lr * wd) : p.v;
        p.v.assign(tf.sub(decayed, tf.mul(update, lr)));
      }
      return tf.keep(value);
    });

  const first = trainStep();
  const loss0 = (await first.data())[0];
  first.dispose();
  if (!Number.isFinite(loss0)) throw new Error(`tfjs GPT ${C}/${L}: non-finite first loss ${loss0}`);
  const start = performance.now();
  let last: tf.Scalar | undefined;
  for (let i = 0; i < steps; i++) {
    last?.dispose();
    last = trainStep();
  }
  const loss = (await last!.data())[0];
  const msPerStep = (performance.now() - start) / steps;
  last!.dispose();
  for (const p of params) [p.v, p.m, p.s].forEach((t) => t.dispose());
  [tokens, targets, mask].forEach((t) => t.dispose());
  return { width: C, layers: L, heads: H, tokensPerSecond: (B * T) / (msPerStep / 1000), msPerStep, loss };
}

function listArg(args: string[], name: string, fallback: number[]): number[] {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1].split(",").map(Number) : fallback;
}

export async function runTfjs(args: string[]): Promise<TfjsReport> {
  const quick = args.includes("--quick");
  if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", Deno.makeTempDirSync());
  if (!(await tf.setBackend("webgpu"))) throw new Error("tfjs could not start its webgpu backend");
  await tf.ready();
  const matmul: TfjsMatmul[] = [];
  for (const S of listArg(args, "--sizes", quick ? [256, 512] : [256, 512, 1024])) {
    matmul.push(await benchMatmul(S));
  }
  const training: TfjsTraining[] = [];
  const i = args.indexOf("--models");
  const models = i >= 0 ? args[i + 1].split(",") : ["128/4", "192/4"];
  for (const [C, L] of models.map((m) => m.split("/").map(Number))) {
    training.push(await benchTraining(C, L, C / 32, quick ? 2 : 4));
  }
  return { backend: tf.getBackend(), matmul, training };
}

if (import.meta.main) {
  console.log(JSON.stringify(await runTfjs(Deno.args)));
}
