/**
 * The lab's one seeded generator, mulberry32 (a small, fast 32-bit PRNG: deterministic across platforms,
 * good enough for initialization, shuffles and sampling, not for cryptography), and what is built on it.
 * Every seeded draw in the repository — parameter init, the world and corpus builders, task splits,
 * finetuning order, pretraining windows — comes from here, so "same seed, same run" has one meaning.
 */

/** mulberry32 with its state exposed, so a checkpoint can store where a sampler was. */
export class Mulberry32 {
  constructor(public state: number) {
    this.state = state >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** A uniform source in [0, 1) started from `seed`. */
export function mulberry32(seed: number): () => number {
  const generator = new Mulberry32(seed);
  return () => generator.next();
}

/** A uniform source whose stream depends on the seed and a salt, so that two users of one seed draw independently. */
export function seededRandom(seed: number, salt = ""): () => number {
  return mulberry32(hashSeed(seed, salt));
}

/** FNV-1a over the text "seed:salt", then a final avalanche. */
function hashSeed(seed: number, salt: string): number {
  let h = 0x811c9dc5;
  const text = `${seed}:${salt}`;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Standard normal samples from a uniform source (Box–Muller). */
export function gaussian(rand: () => number): () => number {
  return () => {
    const u = Math.max(rand(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  };
}

/** Fisher–Yates shuffle of a copy. */
export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  return shuffleInPlace(items.slice(), random);
}

/** Fisher–Yates shuffle in place; returns `items`. */
export function shuffleInPlace<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/** A uniformly chosen element. */
export function pick<T>(items: readonly T[], random: () => number): T {
  return items[Math.floor(random() * items.length)];
}

/** The data builders' interface: a uniform source with integer, pick and in-place shuffle on top. */
export interface Random {
  next(): number;
  int(n: number): number;
  pick<T>(items: readonly T[]): T;
  shuffle<T>(items: T[]): T[];
}

/** The world and corpus builders' generator (its start state mixes the seed with the golden ratio). */
export function createRandom(seed: number): Random {
  const generator = new Mulberry32((seed >>> 0) ^ 0x9e3779b9);
  const next = () => generator.next();
  return {
    next,
    int: (n) => generator.int(n),
    pick: (items) => pick(items, next),
    shuffle: (items) => shuffleInPlace(items, next),
  };
}
