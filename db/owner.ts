/**
 * One process owns the embedded PGlite database of a data directory: PGlite is a single-process Postgres,
 * and a second process writing the same files loses its writes or aborts. The owner holds
 * `<dataDir>/db-owner.json` (its pid and command, created exclusively); another process that would open the
 * database stops with one line naming the owner, before it writes anything. A lock whose pid is gone (a
 * crash, `kill -9`) is taken over. Opens within one process share the lock and the last close releases it.
 */
import process from "node:process";
import { basename, join, resolve } from "node:path";

export const OWNER_FILE = "db-owner.json";

interface OwnerRecord {
  pid: number;
  command: string;
  /** The lab server: other commands can go through its API instead. */
  serves: boolean;
}

/** Another live process owns the data directory's database. */
export class DbOwnedError extends Error {
  constructor(readonly owner: OwnerRecord, dataDir: string) {
    super(
      owner.serves
        ? `the lab server (pid ${owner.pid}) owns ${dataDir}: run this through its API/dashboard, or stop it first`
        : `${owner.command} (pid ${owner.pid}) owns ${dataDir}: wait for it to finish, or stop it first`,
    );
  }
}

/** Lock files this process holds, by path, with how many opens share each. */
const held = new Map<string, number>();
let releaseOnExit = false;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the pid exists under another user.
    return (err as { code?: string }).code === "EPERM";
  }
}

function thisCommand(): string {
  const args = Deno.args.slice(0, 2).join(" ");
  return `\`${basename(Deno.mainModule)}${args ? ` ${args}` : ""}\``;
}

async function readOwner(path: string): Promise<OwnerRecord | undefined> {
  try {
    const owner = JSON.parse(await Deno.readTextFile(path));
    return Number.isInteger(owner?.pid) ? owner : undefined;
  } catch {
    return undefined; // gone meanwhile, or half-written by a crashed owner: stale
  }
}

/**
 * Claims the database of `dataDir` for this process (the server passes `serves`); returns the release.
 * Throws DbOwnedError when a live process holds it.
 */
export async function claimDbOwner(dataDir: string, opts: { serves?: boolean } = {}): Promise<() => void> {
  const path = resolve(join(dataDir, OWNER_FILE));
  const release = () => {
    const count = (held.get(path) ?? 1) - 1;
    if (count > 0) return void held.set(path, count);
    held.delete(path);
    try {
      Deno.removeSync(path);
    } catch { /* already gone */ }
  };
  if (held.has(path)) {
    held.set(path, held.get(path)! + 1);
    return release;
  }
  const record: OwnerRecord = {
    pid: Deno.pid,
    command: opts.serves ? "the lab server" : thisCommand(),
    serves: opts.serves ?? false,
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await Deno.writeTextFile(path, JSON.stringify(record), { createNew: true, mode: 0o600 });
      held.set(path, 1);
      if (!releaseOnExit) {
        releaseOnExit = true;
        // A command that exits without closing the database still hands it back.
        globalThis.addEventListener("unload", () => {
          for (const p of held.keys()) {
            try {
              Deno.removeSync(p);
            } catch { /* already gone */ }
          }
          held.clear();
        });
      }
      return release;
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    }
    const owner = await readOwner(path);
    // Our own pid in a lock we do not hold is a recycled pid: stale as well.
    if (owner && owner.pid !== Deno.pid && alive(owner.pid)) throw new DbOwnedError(owner, dataDir);
    // An unreadable lock may be one being written this instant: look again before taking it over.
    if (!owner && attempt === 0) {
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    await Deno.remove(path).catch(() => {});
  }
  throw new Error(`could not claim ${path}: another process keeps replacing it`);
}
