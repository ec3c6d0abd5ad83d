/**
 * The command lines as a user meets them, spawned as real processes: one owner for the embedded database
 * (a second process that would open it stops before writing, a dead owner's lock is taken over), and
 * `--help`, unknown flags, bad values and a taken port answered with one line that names the fix.
 */
import assert from "node:assert/strict";
import { openDb } from "../db/client.ts";
import { OWNER_FILE } from "../db/owner.ts";
import { tasks } from "../db/schema.ts";

const ROOT = new URL("../", import.meta.url).pathname;

async function run(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", LAB_AUTOTUNE: "0", DATABASE_URL: "", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b).trim();
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("a second process refuses a data directory whose database another process holds, writing nothing", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "lab-owner-" });
  const file = `${dataDir}/t.jsonl`;
  const lines = Array.from({ length: 20 }, (_, i) => JSON.stringify({ txt: `item ${i}`, hard_label: i % 2 }));
  await Deno.writeTextFile(file, lines.join("\n") + "\n");
  const opened = await openDb({ dataDir, serves: true });
  try {
    const before = await Array.fromAsync(Deno.readDir(`${dataDir}/db`), (e) => e.name);
    const imported = await run(
      ["scripts/lab.ts", "import", "--name", "intruder", "--file", file],
      { LAB_DATA_DIR: dataDir },
    );
    assert.equal(imported.code, 1, imported.stderr);
    assert.equal(
      imported.stderr,
      `lab import: the lab server (pid ${Deno.pid}) owns ${dataDir}: run this through its API/dashboard, ` +
        "or stop it first",
    );
    assert.equal(imported.stdout, "");
    const owner = JSON.parse(await Deno.readTextFile(`${dataDir}/${OWNER_FILE}`));
    assert.deepEqual([owner.pid, owner.serves], [Deno.pid, true]);
    const rows = await opened.db.select({ name: tasks.name }).from(tasks);
    assert.deepEqual(rows, [], "the refused import wrote no task");
    assert.deepEqual(await Array.fromAsync(Deno.readDir(`${dataDir}/db`), (e) => e.name), before);
  } finally {
    await opened.close();
  }
  // Closing hands the database back: the same import now goes through.
  await assert.rejects(Deno.stat(`${dataDir}/${OWNER_FILE}`), Deno.errors.NotFound);
  const imported = await run(
    ["scripts/lab.ts", "import", "--name", "after", "--file", file],
    { LAB_DATA_DIR: dataDir },
  );
  assert.equal(imported.code, 0, imported.stderr);
  assert.match(imported.stdout, /imported classification task after: 20 /);
  await Deno.remove(dataDir, { recursive: true });
});

Deno.test("a lock left by a dead process is taken over; a live one held by a command names that command", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "lab-owner-stale-" });
  const dead = new Deno.Command("true").spawn();
  await dead.status;
  await Deno.writeTextFile(
    `${dataDir}/${OWNER_FILE}`,
    JSON.stringify({ pid: dead.pid, command: "`lab.ts import`", serves: false }),
  );
  const opened = await openDb({ dataDir });
  const owner = JSON.parse(await Deno.readTextFile(`${dataDir}/${OWNER_FILE}`));
  assert.equal(owner.pid, Deno.pid, "the stale lock now names this process");
  assert.equal(owner.serves, false);
  // A second open in the same process shares the lock; only the last close releases it.
  const again = await openDb({ dataDir });
  await again.close();
  await Deno.stat(`${dataDir}/${OWNER_FILE}`);
  const refused = await run(["scripts/lab.ts", "tasks"], { LAB_DATA_DIR: dataDir });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, new RegExp(`^lab tasks: \`.+\` \\(pid ${Deno.pid}\\) owns ${dataDir}: wait`));
  await opened.close();
  await Deno.remove(dataDir, { recursive: true });
});

const W2S = ["scripts/lab.ts", "w2s", "--task", "world-region", "--weak", "nano", "--strong", "micro"];

/** Command lines a user gets wrong: the exit status and the one line each prints. */
const BAD_COMMAND_LINES: [string[], number, RegExp][] = [
  [
    ["scripts/lab.ts", "models", "--jsn"],
    2,
    /^lab models: unknown flag --jsn; its flags: --json --world … --help$/,
  ],
  [["scripts/lab.ts", "tasks", "--jsn"], 2, /^lab tasks: unknown flag --jsn; its flags: --json --world/],
  [
    ["scripts/lab.ts", "import", "--name"],
    2,
    /^lab import: --name needs a value; its flags: --name … --file/,
  ],
  // The numeric knobs follow the API's bounds (contract NumericKnobs), a negative value after a space
  // included; a bad value is a usage error too (exit 2), named in the flag's words.
  [[...W2S, "--seed", "-1"], 2, /^lab w2s: --seed must be ≥ 0, got -1$/],
  // A whole number past 2^53 breaks its bound and nothing else: one rule, as the API words it.
  [[...W2S, "--seed", "1.2e29"], 2, /^lab w2s: --seed must be ≤ 2147483647, got 1\.2e\+29$/],
  [[...W2S, "--epochs", "1.2e29"], 2, /^lab w2s: --epochs must be ≤ 1000, got 1\.2e\+29$/],
  [[...W2S, "--lr", "50"], 2, /^lab w2s: --lr must be ≤ 1, got 50$/],
  [[...W2S, "--max-examples", "0"], 2, /^lab w2s: --max-examples must be ≥ 8, got 0$/],
  [[...W2S, "--seed", "1", "--seed", "2"], 2, /^lab w2s: --seed is given twice: give it once; its flags:/],
  [
    ["scripts/lab.ts", "w2s", "--task", "world-region", "--strong", "micro"],
    2,
    /^lab w2s: missing --weak A/,
  ],
  [
    ["scripts/lab.ts", "sweep", "--sizes", "nano,micro", "--seeds", "0,-1"],
    2,
    /^lab sweep: --seeds must be ≥ 0/,
  ],
  [["scripts/lab.ts", "sweep", "--sizes", "nano,micro", "--json", "--csv"], 2, /--json and --csv both/],
  [["scripts/lab.ts", "demo", "--seeds=-1"], 2, /^lab demo: --seeds must be ≥ 0, got -1$/],
  [
    ["scripts/lab.ts", "sweep", "--sizes", "nano,micro", "--seeds", "0,1.2e29"],
    2,
    /^lab sweep: --seeds must be ≤ 2147483647, got 1\.2e\+29$/,
  ],
  [
    ["scripts/lab.ts", "pretrain", "--size=nano", "--seed=-2"],
    2,
    /^lab pretrain: --seed must be ≥ 0, got -2$/,
  ],
  // The API's bound (POST /api/models/{size}/pretrain refuses it too), not only a whole number.
  [
    ["scripts/lab.ts", "pretrain", "--size=nano", "--seed", "3e9"],
    2,
    /^lab pretrain: --seed must be ≤ 2147483647, got 3e9$/,
  ],
  [
    ["scripts/lab.ts", "pretrain", "--size=nano", "--tokens", "0"],
    2,
    /^lab pretrain: --tokens must be ≥ 1, got 0$/,
  ],
  [
    ["scripts/lab.ts", "pretrain", "--size", "nano,micro,nano"],
    2,
    /^lab pretrain: --size names nano twice; give each size once$/,
  ],
  [
    ["scripts/lab.ts", "pretrain", "--size", "nano,micro", "--concurrency", "0"],
    2,
    /^lab pretrain: --concurrency must be ≥ 1, got 0$/,
  ],
  [
    ["scripts/lab.ts", "sweep", "--sizes", "nano,micro", "--concurrency", "0"],
    2,
    /^lab sweep: --concurrency must be ≥ 1, got 0$/,
  ],
  [
    ["scripts/lab.ts", "demo", "--concurrency", "two"],
    2,
    /^lab demo: --concurrency must be an integer, got "two"$/,
  ],
  [
    ["scripts/lab.ts", "pretrain", "--size", "nano", "-f"],
    2,
    /^lab pretrain: unknown flag -f; its flags: --size …/,
  ],
  [
    ["scripts/lab.ts", "export", "--size", "nano", "--out", "scripts"],
    2,
    /--out scripts already holds files: .*--force/,
  ],
  [
    ["scripts/lab.ts", "import", "--name", "x"],
    2,
    /^lab import: missing --file FILE\.jsonl: lab import --name/,
  ],
  // A name one typo from a known one is named.
  [
    ["scripts/lab.ts", "pretrain", "--size", "medum"],
    1,
    /^lab pretrain: unknown ladder size "medum"; known sizes: nano, .*; did you mean "medium"\?$/,
  ],
  [
    ["scripts/lab.ts", "w2s", "--task", "world-coats", "--weak", "nano", "--strong", "micro"],
    1,
    /^lab w2s: world "default" has no task "world-coats" \(its tasks: .*\); did you mean "world-coast"\?$/,
  ],
  [["scripts/load.ts", "--help"], 0, /^API latency under load/],
  [["scripts/load.ts", "--rate", "fast"], 2, /^load: --rate must be a number in \(0, 2000\], got "fast"$/],
  [
    ["scripts/load.ts", "--job", "train"],
    2,
    /^load: --job must be one of pretrain, toy, none, got "train"$/,
  ],
  [["scripts/fuzz.ts", "--help"], 0, /^Hostile requests against the lab's API/],
  [["scripts/faults.ts", "--rounds", "0"], 2, /^faults: --rounds must be a whole number 1–50, got "0"$/],
  [["scripts/bench.ts", "--help"], 0, /kernel and training benchmarks/],
  [["scripts/bench.ts", "--quik"], 2, /^bench: unknown flag --quik; its flags: --json --quick/],
  [["scripts/bench.ts", "--profile", "64/2", "extra"], 2, /^bench: unexpected argument "extra"/],
  [
    ["scripts/bench.ts", "--profile", "nanoo"],
    1,
    /^bench: --profile: model "nanoo" must be WIDTH\/LAYERS .* or a ladder size \(nano, micro/,
  ],
  [["server/main.ts", "--help"], 0, /^usage: deno task start \[--port N\]/],
  [
    ["server/main.ts", "--port", "abc"],
    2,
    /^lab server: --port must be a whole number 0–65535 .*got "abc"$/,
  ],
  [["server/main.ts", "--prot", "1"], 2, /^lab server: unknown flag --prot; its flags: --port …/],
];

Deno.test("every command answers --help and refuses unknown flags and bad values in one line", async () => {
  for (const [args, code, expected] of BAD_COMMAND_LINES) {
    const out = await run(args);
    const text = code === 0 ? out.stdout : out.stderr;
    assert.equal(out.code, code, `${args.join(" ")}: ${out.stderr}`);
    assert.match(text, expected, args.join(" "));
    if (code !== 0) assert.equal(text.split("\n").length, 1, `${args.join(" ")}: one line, got\n${text}`);
  }
});

Deno.test("bench --sweep on a data directory without the ladder names the sizes and the command", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "lab-bench-sweep-" });
  try {
    const out = await run(["scripts/bench.ts", "--sweep"], { LAB_DATA_DIR: dataDir });
    assert.equal(out.code, 1, out.stderr);
    assert.equal(
      out.stderr,
      `bench: --sweep needs nano, micro, mini pretrained in ${dataDir} (missing: nano, micro, mini); run: deno ` +
        "task lab pretrain --size nano,micro,mini (or set LAB_DATA_DIR to a lab's data directory)",
    );
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("deno task start on a taken port says so before opening the database", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "lab-port-" });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  try {
    const out = await run(["server/main.ts", "--port", String(port), "--data-dir", dataDir]);
    assert.equal(out.code, 2, out.stderr);
    assert.equal(
      out.stderr,
      `lab server: port ${port} on 127.0.0.1 is in use (another lab server?): stop it, or pick another with ` +
        "--port N",
    );
    assert.deepEqual(await Array.fromAsync(Deno.readDir(dataDir)), [], "no database, no token written");
  } finally {
    listener.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("deno task start --host 0.0.0.0 warns that reads are open and the token travels in clear", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "lab-exposed-" });
  // A taken port stops the server right after its warning: nothing is opened or built.
  const listener = Deno.listen({ hostname: "0.0.0.0", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  try {
    const out = await run([
      "server/main.ts",
      "--host",
      "0.0.0.0",
      "--port",
      String(port),
      "--data-dir",
      dataDir,
    ]);
    assert.equal(out.code, 2, out.stderr);
    const [warning, refusal] = out.stderr.split("\n");
    assert.match(
      warning,
      /^warning: --host 0\.0\.0\.0 opens the lab to the network: every read .* without a token/,
    );
    assert.match(warning, /token travels in clear .*reverse proxy with TLS .*LAB_ALLOWED_HOSTS/);
    assert.match(refusal, new RegExp(`^lab server: port ${port} on 0\\.0\\.0\\.0 is in use`));
    const quiet = await run([
      "server/main.ts",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--data-dir",
      dataDir,
    ]);
    assert.doesNotMatch(quiet.stderr, /warning/, "a loopback bind is not warned about");
    const help = await run(["server/main.ts", "--help"]);
    assert.match(help.stdout, /LAB_ALLOWED_HOSTS: extra names the Host header may carry/);
  } finally {
    listener.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});
