/**
 * The ladder-order rule of a weak→strong experiment, in one place for the pipeline, the API and the
 * dashboard: the weak model is smaller than the strong one, and the bootstrap method's intermediate sizes
 * grow strictly from weak to strong, each between the two. `sizes` is the ladder, smallest first.
 */

/** Why (weak, strong) is not a valid pair on this ladder, or null when it is. */
export function pairError(sizes: readonly string[], weak: string, strong: string): string | null {
  for (const size of [weak, strong]) {
    if (!sizes.includes(size)) return `unknown size "${size}"; sizes are: ${sizes.join(", ")}`;
  }
  if (sizes.indexOf(weak) >= sizes.indexOf(strong)) {
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
  let previous = sizes.indexOf(weak);
  const strongRank = sizes.indexOf(strong);
  for (const size of chain) {
    const rank = sizes.indexOf(size);
    if (rank < 0) return `unknown size "${size}"; sizes are: ${sizes.join(", ")}`;
    if (rank <= previous || rank >= strongRank) {
      return "bootstrapSizes must grow strictly from weak to strong, each between the two";
    }
    previous = rank;
  }
  return null;
}

/** The bootstrap method's default chain: every ladder size strictly between weak and strong. */
export function sizesBetween(sizes: readonly string[], weak: string, strong: string): string[] {
  return sizes.slice(sizes.indexOf(weak) + 1, sizes.indexOf(strong));
}
