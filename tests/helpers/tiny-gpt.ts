/**
 * The tiny padded GPT every engine test compares against the float64 reference (tests/gpt.test.ts,
 * tests/browser-engine.test.ts): 2 layers of width 16, a batch of 4 rows of lengths 7, 4, 1 and 0
 * (an empty row), seeded tokens and soft class targets, and parameters with noise on every tensor.
 */
import { type GptConfig, HEAD_PARAMS, initParameters, paramLayout } from "../../kernels/config.ts";
import { nextTokenTargets } from "../../kernels/gpt.ts";
import type { RefBatch } from "../../kernels/reference.ts";

export const cfg: GptConfig = { vocabSize: 37, contextLength: 9, width: 16, layers: 2, heads: 2 };
export const B = 4;
export const T = 7;
export const lengths = Int32Array.from([7, 4, 1, 0]);

export function randomBatch(seed: number): { tokens: Int32Array; classTargets: Float32Array } {
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const tokens = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < lengths[b]; t++) tokens[b * T + t] = Math.floor(next() * cfg.vocabSize);
  }
  const classTargets = new Float32Array(B * 2);
  for (let b = 0; b < B; b++) {
    const p = next();
    classTargets[b * 2] = 1 - p;
    classTargets[b * 2 + 1] = p;
  }
  return { tokens, classTargets };
}

/** Non-trivial parameters: init plus noise on gains, biases and the (zero-initialized) heads. */
export function testParameters(seed: number, config: GptConfig = cfg): Float32Array {
  const flat = initParameters(config, seed);
  let s = seed + 7;
  const next = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5;
  const heads: readonly string[] = HEAD_PARAMS;
  for (const spec of paramLayout(config).specs) {
    const scale = spec.decay ? (heads.includes(spec.name) ? 0.3 : 0.05) : 0.2;
    for (let i = 0; i < spec.size; i++) flat[spec.offset + i] += scale * next();
  }
  return flat;
}

/** The reference's view of a batch: next-token LM targets and the soft class targets in float64. */
export function refBatch(tokens: Int32Array, classTargets: Float32Array): RefBatch {
  return {
    B,
    T,
    tokens,
    lengths,
    targets: nextTokenTargets(tokens, lengths, T),
    classTargets: Float64Array.from(classTargets),
  };
}

/** max |got − want| / max |want| over one tensor. */
export function relError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return diff / Math.max(scale, 1e-12);
}

type Tensors = Map<string, ArrayLike<number>>;

/**
 * What a model split some other way (windows, shards) gets wrong in its gradients: a line per tensor
 * off the float64 reference (rel 1e-3) or off the same model unsplit, `baseline` (rel 1e-4).
 */
export function gradientReport(got: Tensors, want: Tensors, base: Tensors, baseline: string): string[] {
  const report: string[] = [];
  for (const [name, g] of want) {
    const err = relError(got.get(name)!, g);
    if (!(err <= 1e-3)) report.push(`${name}: rel error ${err.toExponential(2)} vs the reference`);
    const errBase = relError(got.get(name)!, base.get(name)!);
    if (!(errBase <= 1e-4)) report.push(`${name}: rel error ${errBase.toExponential(2)} vs ${baseline}`);
  }
  return report;
}

/**
 * The same for parameters after a few AdamW steps: max abs diff 1e-5 against the reference and against
 * `baseline`. The key bias is left out: its gradient is exactly zero, in float32 noise that AdamW
 * normalizes (gpt.test.ts).
 */
export function parameterReport(
  got: Tensors,
  want: Tensors,
  base: Tensors,
  width: number,
  baseline: string,
): string[] {
  const report: string[] = [];
  for (const [name, p] of want) {
    const keyBias = (i: number) => name.endsWith("attn.c_attn.bias") && i >= width && i < 2 * width;
    let diff = 0, diffBase = 0;
    for (let i = 0; i < p.length; i++) {
      if (keyBias(i)) continue;
      diff = Math.max(diff, Math.abs(got.get(name)![i] - p[i]));
      diffBase = Math.max(diffBase, Math.abs(got.get(name)![i] - base.get(name)![i]));
    }
    if (!(diff <= 1e-5)) report.push(`${name}: max abs diff ${diff.toExponential(2)} vs the reference`);
    if (!(diffBase <= 1e-5)) report.push(`${name}: max abs diff ${diffBase.toExponential(2)} vs ${baseline}`);
  }
  return report;
}
