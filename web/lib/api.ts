/**
 * The dashboard's only data source: the lab's HTTP API. Reads are open; mutations carry the bearer token the
 * user pasted once into Settings (kept in localStorage) or opened the dashboard with (`/#token=…`).
 */
import { signal } from "@preact/signals";
import { PAGE_LIMIT_MAX } from "../../server/contract/fields.ts";

const TOKEN_KEY = "lab.token";

function readStoredToken(): string {
  try {
    return localStorage.getItem(TOKEN_KEY) ?? "";
  } catch {
    return "";
  }
}

export const apiToken = signal(readStoredToken());

export function saveToken(token: string): void {
  apiToken.value = token.trim();
  try {
    if (apiToken.value) localStorage.setItem(TOKEN_KEY, apiToken.value);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // Private windows may refuse storage; the token then lives for this tab only.
  }
}

/** `#token=…` in the address (a link the server can print) is stored and removed from the address bar. */
export function adoptTokenFromUrl(): void {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!match) return;
  saveToken(decodeURIComponent(match[1]));
  history.replaceState(history.state, "", location.pathname + location.search);
}

export interface ApiIssue {
  path: string[];
  message: string;
  code?: string;
}

/** An API error body `{error: {code, message, details}}` or a network failure, as one exception. */
export class ApiRequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }

  /** Zod issues from a 400 `invalid_request`, paths without the leading "body"/"query". */
  get issues(): ApiIssue[] {
    const raw = (this.details as { issues?: ApiIssue[] } | null)?.issues ?? [];
    return raw.map((i) => ({ ...i, path: i.path.slice(1) }));
  }
}

async function parse<T>(res: Response, what: string): Promise<T> {
  const text = await res.text();
  let body: unknown = undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    if (!res.ok) throw new ApiRequestError(res.status, "http_error", `${what}: HTTP ${res.status}`);
    throw new ApiRequestError(res.status, "bad_response", `${what}: the server did not answer JSON`);
  }
  if (!res.ok) {
    const err = (body as { error?: { code?: string; message?: string; details?: unknown } })?.error;
    throw new ApiRequestError(
      res.status,
      err?.code ?? "http_error",
      err?.message ?? `${what}: HTTP ${res.status}`,
      err?.details,
    );
  }
  return body as T;
}

/** A body sent as it is (e.g. a JSONL file the server reads line by line), not as JSON. */
export interface RawBody {
  text: string;
  contentType: string;
}

/** The request as it went (the token where it needs one), or an error for a server that did not answer. */
async function send(
  method: string,
  path: string,
  body?: unknown,
  opts: { withToken?: boolean; raw?: RawBody } = {},
): Promise<Response> {
  const { raw } = opts;
  const headers: Record<string, string> = {};
  if (method !== "GET") headers["Content-Type"] = raw ? raw.contentType : "application/json";
  if ((method !== "GET" || opts.withToken) && apiToken.value) {
    headers.Authorization = `Bearer ${apiToken.value}`;
  }
  let res: Response;
  try {
    res = await fetch(`/api${path}`, {
      method,
      headers,
      body: method === "GET" ? undefined : raw ? raw.text : JSON.stringify(body ?? {}),
    });
  } catch {
    throw new ApiRequestError(0, "network", "cannot reach the lab server — is `deno task start` running?");
  }
  return res;
}

async function request<T>(
  method: string,
  path: string,
  body?: unknown,
  opts: { withToken?: boolean; raw?: RawBody } = {},
): Promise<T> {
  return await parse<T>(await send(method, path, body, opts), `${method} /api${path}`);
}

/** GETs in flight, by path: views asking for the same path at once share one request and its answer. */
const inFlight = new Map<string, Promise<unknown>>();

/** GET `path`; the answer is shared with every caller that asked while it was on its way (read it, never edit it). */
export function apiGet<T>(path: string): Promise<T> {
  const pending = inFlight.get(path) as Promise<T> | undefined;
  if (pending) return pending;
  const answer = request<T>("GET", path).finally(() => inFlight.delete(path));
  inFlight.set(path, answer);
  return answer;
}
export const apiPost = <T>(path: string, body?: unknown) => request<T>("POST", path, body);
/** POSTs `body` as it is, with its own content type. */
export const apiPostRaw = <T>(path: string, raw: RawBody) => request<T>("POST", path, undefined, { raw });
export const apiDelete = <T>(path: string) => request<T>("DELETE", path);

/** A list endpoint's `path` (with or without a query) asking for `limit` rows from `offset`. */
export function pagePath(path: string, limit: number, offset: number): string {
  return `${path}${path.includes("?") ? "&" : "?"}limit=${limit}&offset=${offset}`;
}

/**
 * Every row of a list endpoint (`path` with or without a query), in its order: pages of PAGE_LIMIT_MAX rows
 * until a short one, so a table that outgrows one request is never cut at its first page.
 */
export async function apiGetAll<T>(path: string): Promise<T[]> {
  const rows: T[] = [];
  for (;;) {
    const page = await apiGet<T[]>(pagePath(path, PAGE_LIMIT_MAX, rows.length));
    rows.push(...page);
    if (page.length < PAGE_LIMIT_MAX) return rows;
  }
}

/** A page of a list endpoint and how many rows match in all (X-Total-Count; null where it does not say). */
export async function apiGetPage<T>(path: string): Promise<{ rows: T[]; total: number | null }> {
  const res = await send("GET", path);
  const rows = await parse<T[]>(res, `GET /api${path}`);
  const total = res.headers.get("X-Total-Count");
  return { rows, total: total === null ? null : Number(total) };
}

/** Asks the server whether the stored token is accepted (GET /api/auth: 200, or 401 with the reason). */
export async function checkToken(): Promise<{ ok: true } | { ok: false; message: string }> {
  try {
    await request<{ ok: boolean }>("GET", "/auth", undefined, { withToken: true });
    return { ok: true };
  } catch (err) {
    return { ok: false, message: describeError(err) };
  }
}

/** A sentence for the user, with the next step when the token is the problem. */
export function describeError(err: unknown): string {
  if (err instanceof ApiRequestError && err.status === 401) {
    return `${err.message}. Paste the API token in Settings (it is printed when the server first starts and ` +
      `stored in <data dir>/token).`;
  }
  return err instanceof Error ? err.message : String(err);
}
