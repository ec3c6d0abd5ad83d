/**
 * In-process publish/subscribe for live job events: workers publish progress, the SSE endpoint and the
 * local worker (woken on enqueue) subscribe. Subscribers never block publishers.
 */

export type JobStatus = "queued" | "running" | "done" | "failed" | "cancelled";

export interface JobEvent {
  jobId: number;
  type: string;
  status: JobStatus;
  step?: number;
  total?: number;
  message?: string;
  loss?: number;
  accuracy?: number;
  /** Seconds left at the current rate. */
  etaSeconds?: number;
  metrics?: Record<string, number>;
  /** The run(s) being trained, where known. */
  runIds?: number[];
  error?: string;
}

export type Listener = (event: JobEvent) => void;

export class EventBus {
  #listeners = new Set<Listener>();

  publish(event: JobEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (err) {
        console.error("event listener failed:", err);
      }
    }
  }

  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get size(): number {
    return this.#listeners.size;
  }
}
