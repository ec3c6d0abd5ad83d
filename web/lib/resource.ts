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
  const reload = useCallback(() => setTick((t) => t + 1), []);

  useEffect(() => {
    if (path === null) {
      setLoading(false);
      return;
    }
    let cancelled = false;
    if (lastPath.current !== path) {
      lastPath.current = path;
      setData(undefined);
      setLoading(true);
    }
    const wait = Math.max(0, lastLoad.current + minIntervalMs - Date.now());
    const timer = setTimeout(() => {
      lastLoad.current = Date.now();
      apiGet<T>(path).then(
        (value) => {
          if (cancelled) return;
          setData(value);
          setError(undefined);
          setLoading(false);
        },
        (err) => {
          if (cancelled) return;
          setError(describeError(err));
          setLoading(false);
        },
      );
    }, wait);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [path, cue, tick]);

  return { data, error, loading, reload };
}
