/**
 * `useResource`: load an API path, reload on demand or when a live cue changes, keep the last good data.
 * `usePagedList`: the same for a list endpoint shown page by page ("Load more" adds one page).
 */
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { apiGet, apiGetAll, apiGetPage, ApiRequestError, describeError, pagePath } from "./api.ts";
import { noteServerAnswered, noteServerAway } from "./live.ts";

export interface Resource<T> {
  data: T | undefined;
  error: string | undefined;
  /** The HTTP status of the answer that said no (404: it does not exist, so retrying will not help). */
  errorStatus?: number;
  loading: boolean;
  reload: () => void;
}

/**
 * `path` null means "nothing to load yet". `cue` is any value whose change should trigger a reload (e.g.
 * the live status counter); reloads are spaced at least `minIntervalMs` apart.
 */
export function useResource<T>(path: string | null, cue: unknown = 0, minIntervalMs = 500): Resource<T> {
  return useLoader<T>(path, () => apiGet<T>(path!), cue, minIntervalMs);
}

/** Every row of a list endpoint (apiGetAll), reloaded like useResource. */
export function useAllRows<T>(path: string | null, cue: unknown = 0): Resource<T[]> {
  return useLoader<T[]>(path, () => apiGetAll<T>(path!), cue);
}

export interface PagedList<T> extends Resource<T[]> {
  /** The server has rows beyond those loaded. */
  hasMore: boolean;
  /** How many rows match in all, where the endpoint says (X-Total-Count); undefined before it answers. */
  total: number | undefined;
  loadMore: () => void;
}

/** Rows of one page of a list endpoint; the API takes at most PAGE_LIMIT_MAX per request. */
export const PAGE_SIZE = 200;

/**
 * A list endpoint (`path` with or without a query; `limit`/`offset` are added) loaded as `pages` pages of
 * `pageSize` rows; one extra row on the last page says whether there is more.
 */
export function usePagedList<T>(path: string, cue: unknown = 0, pageSize = PAGE_SIZE): PagedList<T> {
  const [pages, setPages] = useState(1);
  const resource = useLoader<{ rows: T[]; hasMore: boolean; total: number | undefined }>(
    `${path}#${pages}`,
    async () => {
      const requests = Array.from({ length: pages }, (_, page) => {
        const limit = page === pages - 1 ? pageSize + 1 : pageSize;
        return apiGetPage<T>(pagePath(path, limit, page * pageSize));
      });
      const answers = await Promise.all(requests);
      const rows = answers.flatMap((a) => a.rows);
      return {
        rows: rows.slice(0, pages * pageSize),
        hasMore: rows.length > pages * pageSize,
        total: answers[answers.length - 1].total ?? undefined,
      };
    },
    cue,
  );
  // Loading one more page keeps the rows already shown until the longer list arrives.
  const [shown, setShown] = useState<{ rows: T[]; hasMore: boolean; total: number | undefined }>();
  useEffect(() => void (resource.data && setShown(resource.data)), [resource.data]);
  useEffect(() => (setPages(1), setShown(undefined)), [path]);
  const data = resource.data ?? shown;
  return {
    data: data?.rows,
    error: resource.error,
    loading: resource.loading,
    reload: resource.reload,
    hasMore: data?.hasMore ?? false,
    total: data?.total,
    loadMore: () => setPages((p) => p + 1),
  };
}

function useLoader<T>(
  path: string | null,
  load: () => Promise<T>,
  cue: unknown,
  minIntervalMs = 500,
): Resource<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [errorStatus, setErrorStatus] = useState<number | undefined>(undefined);
  const [loading, setLoading] = useState(path !== null);
  const [tick, setTick] = useState(0);
  const lastLoad = useRef(0);
  const lastPath = useRef<string | null>(null);
  const currentPath = useRef(path);
  currentPath.current = path;
  // Requests are numbered so that a slow older answer never overwrites a newer one.
  const sent = useRef(0);
  const applied = useRef(0);
  const mounted = useRef(true);
  const reload = useCallback(() => setTick((t) => t + 1), []);

  useEffect(() => () => void (mounted.current = false), []);

  useEffect(() => {
    if (path === null) {
      setLoading(false);
      return;
    }
    if (lastPath.current !== path) {
      lastPath.current = path;
      lastLoad.current = 0;
      setData(undefined);
      setError(undefined);
      setLoading(true);
    }
    // Cues that arrive before the timer fires reschedule it to the same moment (fixed by the last load), so
    // frequent cues give one request per interval; a request already in flight is never thrown away.
    const wait = Math.max(0, lastLoad.current + minIntervalMs - Date.now());
    const timer = setTimeout(() => {
      const id = ++sent.current;
      lastLoad.current = Date.now();
      const accept = () => mounted.current && currentPath.current === path && id > applied.current;
      load().then(
        (value) => {
          noteServerAnswered();
          if (!accept()) return;
          applied.current = id;
          setData(value);
          setError(undefined);
          setLoading(false);
        },
        (err) => {
          // Status 0: no answer at all (the server is down), not an answer that says no.
          if (err instanceof ApiRequestError && err.status === 0) noteServerAway();
          else noteServerAnswered();
          if (!accept()) return;
          applied.current = id;
          setError(describeError(err));
          setErrorStatus(err instanceof ApiRequestError ? err.status : undefined);
          setLoading(false);
        },
      );
    }, wait);
    return () => clearTimeout(timer);
  }, [path, cue, tick]);

  return { data, error, errorStatus, loading, reload };
}
