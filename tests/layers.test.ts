/**
 * The import graph of the source tree, read from every module's import and export specifiers (static and
 * dynamic): data flows one way, kernels → corpus → tasks → contract → lab → db → jobs → api → server
 * entry, so no module imports from a layer above its own, and no import chain comes back to where it
 * started. The dashboard is a separate program that talks HTTP: web/ imports only itself and the shared
 * contract, and the server's only arrow into web/ is the entry point building the dashboard it serves
 * (tests may import anything).
 */
import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");

/** Layers from the bottom; a module may import from its own layer or any below. */
const LAYERS = [
  "kernels",
  "server/corpus",
  "server/tasks",
  "server/contract",
  "server/lab",
  "db",
  "server/jobs",
  "server/api",
  "server/main.ts",
] as const;

/** The layer a repository path belongs to, or a named program above the layers. */
function layerOf(path: string): string {
  const layer = LAYERS.find((l) => path === l || path.startsWith(l + "/"));
  if (layer) return layer;
  return path.split("/")[0]; // web, scripts, tests
}

function rankOf(layer: string): number {
  const rank = LAYERS.indexOf(layer as typeof LAYERS[number]);
  return rank >= 0 ? rank : LAYERS.length; // scripts and tests sit on top
}

/** Every relative import of a source file, resolved to a repository path. */
function importsOf(path: string): string[] {
  // Template literals hold WGSL, or scripts that a test runs elsewhere: their text is not this module's.
  const text = Deno.readTextFileSync(join(ROOT, path)).replace(/`[^`]*`/g, "``");
  const specifiers = [
    ...text.matchAll(/(?:import|export)\s[^"';]*?from\s*["'](\.{1,2}\/[^"']+)["']/g),
    ...text.matchAll(/import\s*\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g),
    ...text.matchAll(/^import\s+["'](\.{1,2}\/[^"']+)["']/gm),
  ].map((m) => m[1]);
  return [...new Set(specifiers)].map((s) => relative(ROOT, resolve(ROOT, dirname(path), s)));
}

function sourceFiles(): string[] {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of Deno.readDirSync(join(ROOT, dir))) {
      const path = dir ? `${dir}/${entry.name}` : entry.name;
      if (entry.isDirectory) {
        if (!["node_modules", "dist", "data", ".git"].includes(entry.name)) walk(path);
      } else if (/\.(ts|tsx)$/.test(entry.name)) files.push(path);
    }
  };
  for (const top of ["kernels", "server", "db", "web", "scripts", "tests"]) walk(top);
  return files;
}

/** Arrows that break the layering (the graph's edges as "from → to"). */
export function layerViolations(graph: Map<string, string[]>): string[] {
  const bad: string[] = [];
  for (const [from, targets] of graph) {
    const fromLayer = layerOf(from);
    for (const to of targets) {
      const toLayer = layerOf(to);
      const allowed = fromLayer === "web"
        ? toLayer === "web" || toLayer === "server/contract"
        : toLayer === "web"
        ? fromLayer === "tests" || (from === "server/main.ts" && to === "web/build.ts")
        : rankOf(toLayer) <= rankOf(fromLayer);
      if (!allowed) bad.push(`${from} → ${to}`);
    }
  }
  return bad;
}

/** One import cycle per strongly connected group (each as a path that returns to its start). */
export function importCycles(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, "active" | "done">();
  const stack: string[] = [];
  const visit = (node: string) => {
    state.set(node, "active");
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === "active") cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, "done");
  };
  for (const node of graph.keys()) if (!state.has(node)) visit(node);
  return cycles;
}

const graph = new Map(sourceFiles().map((f) => [f, importsOf(f)]));

Deno.test("layers: the checks find what they look for (a planted upward arrow and a planted cycle)", () => {
  const planted = new Map([
    ["kernels/gpt.ts", ["server/lab/w2s.ts"]],
    ["server/lab/w2s.ts", ["kernels/gpt.ts"]],
    ["web/main.tsx", ["server/lab/metrics.ts"]],
    ["server/lab/metrics.ts", []],
  ]);
  assert.deepEqual(layerViolations(planted), [
    "kernels/gpt.ts → server/lab/w2s.ts",
    "web/main.tsx → server/lab/metrics.ts",
  ]);
  assert.deepEqual(importCycles(planted), [["kernels/gpt.ts", "server/lab/w2s.ts", "kernels/gpt.ts"]]);
});

Deno.test("layers: every import resolves to a file of the repository", () => {
  assert.ok(graph.size > 100, `read ${graph.size} files`);
  const missing = [...graph].flatMap(([from, targets]) =>
    targets.filter((t) => !graph.has(t) && !/\.(json|css|html)$/.test(t)).map((t) => `${from} → ${t}`)
  );
  assert.deepEqual(missing, []);
});

Deno.test("layers: no module imports from a layer above its own; web/ imports only web/ and the contract", () => {
  assert.deepEqual(layerViolations(graph), []);
});

Deno.test("layers: the import graph has no cycle", () => {
  assert.deepEqual(importCycles(graph), []);
});
