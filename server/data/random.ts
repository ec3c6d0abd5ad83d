// Seeded pseudo-random numbers for the data builders (mulberry32): same seed, same corpus and world.

export interface Random {
  next(): number; // uniform in [0, 1)
  int(n: number): number; // uniform integer in [0, n)
  pick<T>(items: readonly T[]): T;
  shuffle<T>(items: T[]): T[]; // in place, returns items
}

export function createRandom(seed: number): Random {
  let state = (seed >>> 0) ^ 0x9e3779b9;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return {
    next,
    int,
    pick: (items) => items[int(items.length)],
    shuffle(items) {
      for (let i = items.length - 1; i > 0; i--) {
        const j = int(i + 1);
        [items[i], items[j]] = [items[j], items[i]];
      }
      return items;
    },
  };
}
