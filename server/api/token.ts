/**
 * The API token: LAB_TOKEN when set, else `<dataDir>/token` (created on first start with mode 0600). The
 * caller prints it once, when `generated` is true.
 */

export async function resolveToken(
  dataDir: string,
  envToken = Deno.env.get("LAB_TOKEN"),
): Promise<{ token: string; generated: boolean; source: "env" | "file" }> {
  if (envToken && envToken.trim() !== "") return { token: envToken.trim(), generated: false, source: "env" };
  const path = `${dataDir}/token`;
  try {
    const token = (await Deno.readTextFile(path)).trim();
    if (token !== "") return { token, generated: false, source: "file" };
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  await Deno.mkdir(dataDir, { recursive: true });
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  const token = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  await Deno.writeTextFile(path, token + "\n", { mode: 0o600 });
  await Deno.chmod(path, 0o600);
  return { token, generated: true, source: "file" };
}

/** Compares in time independent of where the strings differ. */
export function tokensEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}
