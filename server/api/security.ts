/**
 * What keeps a browser from turning the lab against itself: every request's Host header must be a name the
 * server answers to (a DNS-rebinding page carries its own name), and no page of the lab may be framed.
 */
import type { MiddlewareHandler } from "hono";
import { errorBody } from "./errors.ts";

/** Extra names the Host header may carry (comma-separated), e.g. the name a reverse proxy forwards. */
export const ALLOWED_HOSTS_ENV = "LAB_ALLOWED_HOSTS";

const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "::1"];
const WILDCARD_BINDS = ["0.0.0.0", "::"];

/** Every response: no framing by any page (clickjacking), no content-type guessing. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "X-Frame-Options": "DENY",
  // Only framing is restricted: the dashboard and /api/docs load nothing but their own origin's files.
  "Content-Security-Policy": "frame-ancestors 'none'; base-uri 'self'; object-src 'none'",
  "X-Content-Type-Options": "nosniff",
};

/** A host name without brackets, port or trailing dot, lower-cased: `[::1]:8787` → `::1`. */
export function bareHostname(host: string): string {
  const trimmed = host.trim().toLowerCase();
  const bracketed = /^\[([^\]]*)\](:\d*)?$/.exec(trimmed);
  if (bracketed) return bracketed[1];
  // More than one colon without brackets is an IPv6 address with no port.
  const name = (trimmed.match(/:/g) ?? []).length === 1 ? trimmed.slice(0, trimmed.indexOf(":")) : trimmed;
  return name.endsWith(".") ? name.slice(0, -1) : name;
}

function isIpLiteral(name: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(name) || (name.includes(":") && /^[0-9a-f:.]+$/.test(name));
}

/** True when `hostname` (a --host value) is reachable only from this machine. */
export function isLoopbackBind(hostname: string): boolean {
  const name = bareHostname(hostname);
  return LOOPBACK_NAMES.includes(name) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/** The names a Host header may carry: loopback, the bound --host (unless a wildcard), LAB_ALLOWED_HOSTS. */
export function allowedHostnames(
  boundHost?: string,
  extra = Deno.env.get(ALLOWED_HOSTS_ENV) ?? "",
): string[] {
  const bound = boundHost && !WILDCARD_BINDS.includes(bareHostname(boundHost))
    ? [bareHostname(boundHost)]
    : [];
  const listed = extra.split(",").map((h) => h.trim()).filter((h) => h !== "").map(bareHostname);
  return [...new Set([...LOOPBACK_NAMES, ...bound, ...listed])];
}

/** The warning `deno task start` prints for a bind other machines can reach, or undefined for loopback. */
export function exposureWarning(hostname: string): string | undefined {
  if (isLoopbackBind(hostname)) return undefined;
  return `warning: --host ${hostname} opens the lab to the network: every read (tasks, results, models) is ` +
    `answered without a token, and the token travels in clear over http. Put a reverse proxy with TLS in ` +
    `front of it (and name it in ${ALLOWED_HOSTS_ENV}), or bind 127.0.0.1.`;
}

/**
 * Refuses a Host header that names none of the allowed names (403 naming the fix) and stamps every
 * response with SECURITY_HEADERS. An IP-address Host always passes: a DNS-rebinding page carries a name.
 */
export function hostGuard(boundHost?: string): MiddlewareHandler {
  const allowed = new Set(allowedHostnames(boundHost));
  return async (c, next) => {
    // A request built without a Host header (tests, HTTP/1.0) falls back to its URL's host.
    const host = c.req.header("host") ?? new URL(c.req.url).host;
    const name = bareHostname(host);
    if (!allowed.has(name) && !isIpLiteral(name)) {
      const message =
        `Host "${host}" is not a name this lab server answers to (${[...allowed].join(", ")}); ` +
        `to reach it by that name, start it with ${ALLOWED_HOSTS_ENV}=${name}`;
      return c.json(
        errorBody("host_not_allowed", message, { host, allowed: [...allowed] }),
        403,
        SECURITY_HEADERS,
      );
    }
    await next();
    for (const [header, value] of Object.entries(SECURITY_HEADERS)) c.res.headers.set(header, value);
  };
}
