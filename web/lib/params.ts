/** Parameter counts per ladder size, from /api/models (the x axis of the size plots). */
import { useMemo } from "preact/hooks";
import { useResource } from "./resource.ts";
import type { ModelListing } from "./types.ts";

export function useParamsBySize(): { params: ReadonlyMap<string, number>; error?: string; ready: boolean } {
  const models = useResource<ModelListing[]>("/models");
  const params = useMemo(() => new Map((models.data ?? []).map((m) => [m.name, m.params])), [models.data]);
  return { params, error: models.error, ready: models.data !== undefined };
}
