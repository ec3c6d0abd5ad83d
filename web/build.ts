/**
 * Builds the dashboard into web/dist: `deno bundle` of web/main.tsx (Preact, signals, uPlot and the
 * contract's zod schemas in one minified file), the styles with uPlot's CSS inlined, and
 * index.html. Nothing is fetched at run time (no CDN). `buildDashboard()` rebuilds only when web/dist is
 * missing or older than its sources; the server calls it at start. By hand:
 * `deno run -A web/build.ts [--force]`.
 */
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const WEB_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(WEB_DIR);
export const DIST_DIR = join(WEB_DIR, "dist");
const OUTPUTS = ["index.html", "main.js", "app.css"];
/**
 * Sources outside web/ and the contract that change the bundle: the build settings, kernel version names,
 * the world's suite names.
 */
const EXTRA_INPUTS = [
  join(ROOT, "deno.json"),
  join(ROOT, "kernels/versions.ts"),
  join(ROOT, "server/corpus/world-schema.ts"),
  join(ROOT, "server/tasks/storable.ts"),
];
/** The contract the dashboard shares with the server (schemas, names, the ladder rule), bundled whole. */
const CONTRACT_DIR = join(ROOT, "server/contract");

async function mtime(path: string): Promise<number | undefined> {
  try {
    return (await Deno.stat(path)).mtime?.getTime() ?? 0;
  } catch {
    return undefined;
  }
}

async function* sourceFiles(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) {
      if (path === DIST_DIR || entry.name.startsWith(".")) continue;
      yield* sourceFiles(path);
    } else if (/\.(tsx?|css|html)$/.test(entry.name)) {
      yield path;
    }
  }
}

/** The newest source file and its time, or the first missing output: why a build is needed, if it is. */
export async function staleReason(): Promise<string | undefined> {
  let oldestOutput = Infinity;
  for (const name of OUTPUTS) {
    const time = await mtime(join(DIST_DIR, name));
    if (time === undefined) return `web/dist/${name} is missing`;
    oldestOutput = Math.min(oldestOutput, time);
  }
  const inputs = [...EXTRA_INPUTS];
  for (const dir of [WEB_DIR, CONTRACT_DIR]) {
    for await (const path of sourceFiles(dir)) inputs.push(path);
  }
  for (const path of inputs) {
    const time = await mtime(path);
    if (time !== undefined && time > oldestOutput) return `${relative(ROOT, path)} changed`;
  }
  return undefined;
}

/** uPlot's stylesheet from the npm package (node_modules is populated by `deno bundle` / `deno install`). */
async function uplotCss(): Promise<string> {
  const candidates = [join(ROOT, "node_modules/uplot/dist/uPlot.min.css")];
  try {
    for await (const entry of Deno.readDir(join(ROOT, "node_modules/.deno"))) {
      if (entry.name.startsWith("uplot@")) {
        candidates.push(
          join(ROOT, "node_modules/.deno", entry.name, "node_modules/uplot/dist/uPlot.min.css"),
        );
      }
    }
  } catch {
    // No .deno folder: only the top-level link can hold it.
  }
  for (const path of candidates) {
    try {
      return await Deno.readTextFile(path);
    } catch {
      continue;
    }
  }
  throw new Error(`uPlot's CSS not found (looked in ${candidates.join(", ")}); run \`deno install\` first`);
}

export interface BuildResult {
  built: boolean;
  reason?: string;
  ms: number;
}

/**
 * Builds web/dist when it is missing or stale (or always, with `force`). Files are written to a temporary
 * folder and renamed into place, so a server reading web/dist never sees half a build.
 */
export async function buildDashboard(opts: { force?: boolean; quiet?: boolean } = {}): Promise<BuildResult> {
  const started = performance.now();
  const reason = opts.force ? "forced" : await staleReason();
  if (!reason) return { built: false, ms: performance.now() - started };
  const log = opts.quiet ? () => {} : (msg: string) => console.log(msg);
  log(`building the dashboard (${reason})…`);

  await Deno.mkdir(DIST_DIR, { recursive: true });
  const tmp = await Deno.makeTempDir({ dir: DIST_DIR, prefix: ".build-" });
  try {
    const bundle = await new Deno.Command(Deno.execPath(), {
      args: [
        "bundle",
        "--quiet",
        "--platform",
        "browser",
        "--minify",
        "--config",
        join(ROOT, "deno.json"),
        "-o",
        join(tmp, "main.js"),
        join(WEB_DIR, "main.tsx"),
      ],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    if (!bundle.success) {
      const stderr = new TextDecoder().decode(bundle.stderr).trim();
      throw new Error(`deno bundle failed for web/main.tsx (exit ${bundle.code}):\n${stderr}`);
    }
    const css = `${await Deno.readTextFile(
      join(WEB_DIR, "styles.css"),
    )}\n/* uPlot 1.6 (MIT) */\n${await uplotCss()}`;
    await Deno.writeTextFile(join(tmp, "app.css"), css);
    const version = Date.now().toString(36);
    const html = (await Deno.readTextFile(join(WEB_DIR, "index.html"))).replaceAll("__BUILD__", version);
    await Deno.writeTextFile(join(tmp, "index.html"), html);
    // index.html last: it names the other two, so it must never point at files not yet in place.
    for (const name of ["main.js", "app.css", "index.html"]) {
      await Deno.rename(join(tmp, name), join(DIST_DIR, name));
    }
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  const ms = performance.now() - started;
  log(`dashboard built in ${(ms / 1000).toFixed(1)} s → ${relative(ROOT, DIST_DIR)}/`);
  return { built: true, reason, ms };
}

if (import.meta.main) {
  await buildDashboard({ force: Deno.args.includes("--force") });
}
