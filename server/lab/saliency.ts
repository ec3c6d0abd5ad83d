/**
 * Linear-probe saliency (paper §5.2.3): how linearly readable the ground-truth concept is in each
 * layer's frozen features (last token), measured by a converged logistic regression trained on train2
 * and scored on test with ground truth. Four kinds:
 *   lp(weak)         pretrained strong model, probe trained on the weak soft labels;
 *   lp(gt)           pretrained strong model, probe trained on ground truth;
 *   ft(weak)+lp(gt)  the strong model after finetuning on weak labels (the student), probe on GT;
 *   ft(gt)           the strong model after finetuning on GT (the ceiling), probe on GT.
 */

import type { GptModel } from "../../kernels/gpt.ts";
import { type EncodedSet, featuresOf } from "./finetune.ts";
import { trainLogisticProbe } from "./probe.ts";
import type { LayerProbe, ProbeKind } from "../contract/results.ts";

/**
 * One probe per layer: trained on train features with `targets`, scored on test with `testLabels`.
 * `pairs`: the features are a comparison's differences (featuresOf), fitted antisymmetric.
 */
export function probeLayers(
  kind: ProbeKind,
  trainFeatures: Float32Array[][],
  targets: readonly number[],
  testFeatures: Float32Array[][],
  testLabels: readonly number[],
  pairs = false,
): LayerProbe[] {
  if (trainFeatures.length !== testFeatures.length) throw new Error("probeLayers: layer counts differ");
  return trainFeatures.map((train, layer) => {
    const probe = trainLogisticProbe(train, [...targets], { antisymmetric: pairs });
    return { kind, layer, accuracy: probe.accuracy(testFeatures[layer], [...testLabels]) };
  });
}

/** Probes of the model's current parameters on GT (used after finetuning). */
export async function modelProbes(
  model: GptModel,
  kind: ProbeKind,
  train: EncodedSet,
  trainLabels: readonly number[],
  test: EncodedSet,
  testLabels: readonly number[],
): Promise<LayerProbe[]> {
  return probeLayers(
    kind,
    await featuresOf(model, train),
    trainLabels,
    await featuresOf(model, test),
    testLabels,
    train.pairs,
  );
}
