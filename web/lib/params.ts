/**
 * Parameter counts per ladder size, from /api/models (the x axis of the size plots), and pretraining
 * compute per size: 6 · parameters · pretraining tokens (FLOP, the usual estimate of forward + backward).
 */
import { useMemo } from "preact/hooks";
import { useResource } from "./resource.ts";
import type { ModelListing } from "../../server/contract/models.ts";

export function pretrainingCompute(params: number, tokens: number): number {
  return 6 * params * tokens;
}

export function useParamsBySize(): {
  params: ReadonlyMap<string, number>;
  compute: ReadonlyMap<string, number>;
  error?: string;
  ready: boolean;
} {
  const models = useResource<ModelListing[]>("/models");
  const params = useMemo(() => new Map((models.data ?? []).map((m) => [m.name, m.params])), [models.data]);
  const compute = useMemo(
    () =>
      new Map(
        (models.data ?? []).filter((m) => m.tokens > 0).map((
          m,
        ) => [m.name, pretrainingCompute(m.params, m.tokens)]),
      ),
    [models.data],
  );
  return { params, compute, error: models.error, ready: models.data !== undefined };
}
