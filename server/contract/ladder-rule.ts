/**
 * The ladder-order rule of a weak→strong experiment, in one place for the pipeline, the API and the
 * dashboard: the weak model is a smaller size than the strong one, and the bootstrap method's intermediate
 * sizes grow strictly from weak to strong, each between the two. `sizes` is the ladder, smallest first.
 * Models are named by reference (model-ref.ts): a snapshot ranks as its size and is only for the strong side.
 */
import { isSnapshot, modelRefError, parseModelRef, refSize } from "./model-ref.ts";
import { didYouMean } from "../tasks/did-you-mean.ts";

/** Why (weak, strong) is not a valid pair on this ladder, or null when it is. */
export function pairError(sizes: readonly string[], weak: string, strong: string): string | null {
  for (const ref of [weak, strong]) {
    const error = modelRefError(sizes, ref);
    if (error) return error;
  }
  if (isSnapshot(weak)) {
    return `the weak model "${weak}" is a pretraining snapshot: snapshots are for the strong side only ` +
      `(student and ceiling); use ${refSize(weak)} as the weak model`;
  }
  if (sizes.indexOf(refSize(weak)) >= sizes.indexOf(refSize(strong))) {
    return `the weak model must be smaller than the strong one (weak "${weak}", strong "${strong}")`;
  }
  return null;
}

/** Why `chain` is not a valid bootstrap chain from weak to strong, or null when it is. */
export function bootstrapChainError(
  sizes: readonly string[],
  weak: string,
  strong: string,
  chain: readonly string[],
): string | null {
  let previous = sizes.indexOf(refSize(weak));
  const strongRank = sizes.indexOf(refSize(strong));
  for (const size of chain) {
    const rank = sizes.indexOf(size);
    if (rank < 0) return `unknown size "${size}"; sizes are: ${sizes.join(", ")}${didYouMean(size, sizes)}`;
    if (rank <= previous || rank >= strongRank) {
      return "bootstrapSizes must grow strictly from weak to strong, each between the two";
    }
    previous = rank;
  }
  return null;
}

/** The bootstrap method's default chain: every ladder size strictly between weak and strong. */
export function sizesBetween(sizes: readonly string[], weak: string, strong: string): string[] {
  return sizes.slice(sizes.indexOf(refSize(weak)) + 1, sizes.indexOf(refSize(strong)));
}

/** References in ladder order: by size, then by snapshot (medium@10, medium@30, medium). */
export function sortModelRefs(sizes: readonly string[], refs: readonly string[]): string[] {
  const key = (ref: string) => {
    const { size, pct } = parseModelRef(ref, sizes);
    return sizes.indexOf(size) * 1000 + pct;
  };
  return [...refs].sort((a, b) => key(a) - key(b));
}

/**
 * Why a sweep over `refs` would leave a model out of every pair, or null when each takes part in one: a
 * snapshot needs a smaller size to supervise it, and a size needs another size above or below it.
 */
export function sweepSizesError(sizes: readonly string[], refs: readonly string[]): string | null {
  for (const ref of refs) {
    const error = modelRefError(sizes, ref);
    if (error) return error;
  }
  for (const ref of refs) {
    const paired = refs.some((other) =>
      pairError(sizes, ref, other) === null || pairError(sizes, other, ref) === null
    );
    if (paired) continue;
    return isSnapshot(ref)
      ? `${ref} is a snapshot, only ever a strong model, and no smaller size is listed to supervise it; ` +
        `add one (e.g. ${sizes[0]})`
      : `${ref} takes part in no pair: list a smaller or a larger size beside it`;
  }
  return null;
}
