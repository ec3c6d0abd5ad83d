/** The model ladder as the API lists it and the dashboard and the CLI read it. */

/** One size's pretraining on disk, as the model store reads `<dataDir>/models/<size>/`. */
export interface LadderEntry {
  name: string;
  params: number;
  /** Pretraining budget in tokens (of the finished or partial run when there is one). */
  tokens: number;
  status: "pretrained" | "partial" | "missing";
  val_loss: number | null;
  /** Recall of the knowledge attribute (region) at the last evaluation. */
  knowledge?: number | null;
  wallSeconds?: number;
  step?: number;
  totalSteps?: number;
  cpu: boolean;
}

/** One size of the ladder: its shape, the checkpoint on disk and what the database knows (a live job). */
export interface ModelListing {
  name: string;
  width: number;
  layers: number;
  heads: number;
  contextLength: number;
  tokens: number;
  cpu: boolean;
  params: number;
  /** queued | pretraining (a live job) | pretrained | partial (resumable) | missing | failed */
  status: string;
  valLoss: number | null;
  /** Region recall of the knowledge world at the last evaluation. */
  knowledge: number | null;
  step: number | null;
  totalSteps: number | null;
  checkpointPath: string | null;
  pretrainInfo: unknown;
  jobId: number | null;
}
