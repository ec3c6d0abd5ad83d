/** `useResource`: load an API path, reload on demand or when a live cue changes, keep the last good data. */
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { apiGet, describeError } from "./api.ts";

export interface Resource<T> {
  data: T | undefined;
  error: string | undefined;
  loading: boolean;
  reload: () => void;
}

/**
 * `path` null means "nothing to load yet". `cue` is any value whose change should trigger a reload (e.g.
 * the live status counter); reloads are spaced at least `minIntervalMs` apart.
 */
export function useResource<T>(path: string | null, cue: unknown = 0, minIntervalMs = 500): Resource<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
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
      apiGet<T>(path).then(
        (value) => {
          if (!accept()) return;
          applied.current = id;
          setData(value);
          setError(undefined);
          setLoading(false);
        },
        (err) => {
          if (!accept()) return;
          applied.current = id;
          setError(describeError(err));
          setLoading(false);
        },
      );
    }, wait);
    return () => clearTimeout(timer);
  }, [path, cue, tick]);

  return { data, error, loading, reload };
}
