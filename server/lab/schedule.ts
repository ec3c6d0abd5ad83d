/**
 * The learning-rate schedule of every training loop in the lab (pretraining and finetuning): linear
 * warmup to `lr`, then cosine decay to `lr · minFactor` at `totalSteps`.
 */

/** Learning rate at `step` (counted from 0). */
export function learningRateAt(
  step: number,
  totalSteps: number,
  lr: number,
  warmupSteps: number,
  minFactor = 0.1,
): number {
  if (step < warmupSteps) return lr * (step + 1) / warmupSteps;
  const progress = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
  return lr * (minFactor + (1 - minFactor) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}
