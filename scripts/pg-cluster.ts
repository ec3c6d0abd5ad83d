/**
 * A throwaway Postgres cluster for tests and scripts: initdb in a temporary directory (as the postgres user
 * when run as root, which initdb refuses to be), listening on 127.0.0.1 only, fsync off. It can be stopped
 * and started again (an outage), and is removed whole at the end.
 */

/** The bin directory of the newest installed Postgres with initdb, or undefined. */
export function findPostgresBin(): string | undefined {
  try {
    const versions = [...Deno.readDirSync("/usr/lib/postgresql")].map((e) => e.name).sort().reverse();
    for (const v of versions) {
      const bin = `/usr/lib/postgresql/${v}/bin`;
      try {
        Deno.statSync(`${bin}/initdb`);
        return bin;
      } catch { /* try the next version */ }
    }
  } catch { /* no postgres installed */ }
  return undefined;
}

/** Runs a command (as the postgres user when `asPostgres`); its output, or an error carrying it. */
export async function runCommand(cmd: string[], asPostgres: boolean): Promise<string> {
  const argv = asPostgres ? ["runuser", "-u", "postgres", "--", ...cmd] : cmd;
  const out = await new Deno.Command(argv[0], { args: argv.slice(1), stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${cmd.join(" ")} failed:\n${text}`);
  return text;
}

export interface PgCluster {
  url: string;
  /** Stops the server at once (`pg_ctl stop -m immediate`): connections drop, as in a crash. */
  stop(): Promise<void>;
  /** Starts it again on the same data. */
  start(): Promise<void>;
  /** Stops it if running and removes its directory. */
  destroy(): Promise<void>;
}

/** initdb and start a cluster on `port` of 127.0.0.1. */
export async function startPgCluster(bin: string, port: number): Promise<PgCluster> {
  const asPostgres = Deno.uid() === 0;
  const dir = await Deno.makeTempDir({ prefix: "lab-pg-" });
  if (asPostgres) {
    const uid = Number((await runCommand(["id", "-u", "postgres"], false)).trim());
    const gid = Number((await runCommand(["id", "-g", "postgres"], false)).trim());
    await Deno.chown(dir, uid, gid);
  }
  const pgdata = `${dir}/pgdata`;
  await runCommand(
    [`${bin}/initdb`, "-D", pgdata, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"],
    asPostgres,
  );
  const options = `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off`;
  let running = false;
  const start = async () => {
    await runCommand(
      [`${bin}/pg_ctl`, "-D", pgdata, "-o", options, "-l", `${dir}/log`, "-w", "start"],
      asPostgres,
    );
    running = true;
  };
  const stop = async () => {
    await runCommand([`${bin}/pg_ctl`, "-D", pgdata, "-m", "immediate", "-w", "stop"], asPostgres);
    running = false;
  };
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop,
    async destroy() {
      if (running) await stop().catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
