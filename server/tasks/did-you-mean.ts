/**
 * The known name an unknown one is a typo of, for the messages that refuse a task or size name: the tasks
 * layer sits below the contract, the lab and the API, which all name tasks and sizes.
 */

/** Edits (insert, delete, substitute one character) that turn `a` into `b`. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length];
}

/**
 * `; did you mean "world-region"?` after a message about an unknown name, where one known name is within a
 * typo of it (case aside, at most one edit per four characters, at least one); else "".
 */
export function didYouMean(name: string, known: readonly string[]): string {
  const wanted = name.toLowerCase();
  const within = Math.max(1, Math.floor(wanted.length / 4));
  let best: { name: string; distance: number } | undefined;
  for (const k of known) {
    const distance = editDistance(wanted, k.toLowerCase());
    if (distance <= within && (!best || distance < best.distance)) best = { name: k, distance };
  }
  return best ? `; did you mean "${best.name}"?` : "";
}
