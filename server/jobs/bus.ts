/**
 * In-process publish/subscribe for live job events: workers publish progress, the SSE endpoint and the
 * local worker (woken on enqueue) subscribe. Subscribers never block publishers.
 */

import type { JobEvent } from "../contract/jobs.ts";

export type { JobEvent, JobStatus } from "../contract/jobs.ts";

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
