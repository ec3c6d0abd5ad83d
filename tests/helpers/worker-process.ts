/** A `deno task lab worker` process for the Postgres tests, its output collected as it runs. */

const ROOT = new URL("../../", import.meta.url).pathname;

/** Spawns `lab worker` with `args` (lease, heartbeat, poll flags) and `env` added to the process's own. */
export function spawnWorkerProcess(args: string[], env: Record<string, string>) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "scripts/lab.ts", "worker", ...args],
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const decoder = new TextDecoder();
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) output += decoder.decode(chunk);
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  return {
    child,
    output: () => output,
    /** Job ids this worker started (of `type`), one per attempt line. */
    started: (type = "toy-train") =>
      [...output.matchAll(new RegExp(`job (\\d+) \\(${type}\\) attempt \\d+`, "g"))].map((m) => Number(m[1])),
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
      await child.status;
      await drained;
    },
  };
}

export type WorkerProcess = ReturnType<typeof spawnWorkerProcess>;
