// What happens on a hub (a gap, an eviction, a backend's error, attach/detach, open/close, a
// BREAK), told to the hub's own listeners and to those of every hub in this process (a QMP
// monitor that outlives the hubs it reports on). The hub (hub.ts) decides when; this file only
// hands the events out.

import type { HubChardev } from "./hub.ts";

/** What happens on a hub, for `hub.onEvent` and `for await (const ev of hub.events())`. */
export type HubEvent =
  | { type: "gap"; backend: string; bytes: number }
  | { type: "evict"; backend: string; reason: string }
  /** A hard write error (`errno`: "ENOSPC", "EIO", "EPIPE", ...) took the backend out; it is closed for the hub. */
  | { type: "error"; backend: string; errno: string }
  /** `break`: a read-write backend sent a BREAK, passed on to the device (a viewer's is discarded). */
  | { type: "open" | "close" | "attach" | "detach" | "break"; backend: string };

/** Listeners of the events of every hub in this process; see `onEveryHubEvent`. */
const everyHubListeners = new Set<(hub: HubChardev, event: HubEvent) => void>();

/**
 * Calls `listener` for every event of every hub (of any registry) in this process; returns the
 * function that stops it. For watchers that outlive the hubs they report on (a QMP monitor
 * forwards backend errors as events); check that a hub is yours with `registry.find(hub.id) === hub`.
 *
 * @example Log every backend error of every hub
 * ```ts
 * const stop = onEveryHubEvent((hub, event) => { if (event.type === "error") console.log(hub.id, event.backend, event.errno); });
 * ```
 */
export function onEveryHubEvent(listener: (hub: HubChardev, event: HubEvent) => void): () => void {
  everyHubListeners.add(listener);
  return () => everyHubListeners.delete(listener);
}

/** One hub's listeners; each event goes to them, then to those of every hub. */
export class HubEventListeners {
  readonly #listeners = new Set<(event: HubEvent) => void>();

  constructor(private readonly hub: HubChardev) {}

  /** Calls `listener` for every event of this hub; returns the function that stops it. */
  add(listener: (event: HubEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  emit(event: HubEvent): void {
    for (const listener of this.#listeners) listener(event);
    for (const listener of everyHubListeners) listener(this.hub, event);
  }

  /** This hub's events as an async iterable, until `signal` aborts or the loop breaks out. */
  async *iterate(signal?: AbortSignal): AsyncGenerator<HubEvent> {
    const queue: HubEvent[] = [];
    let wake: (() => void) | null = null;
    const stop = this.add((event) => {
      queue.push(event);
      wake?.();
    });
    const onAbort = () => wake?.();
    signal?.addEventListener("abort", onAbort);
    try {
      while (!signal?.aborted) {
        if (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
        while (queue.length > 0) yield queue.shift()!;
      }
    } finally {
      stop();
      signal?.removeEventListener("abort", onAbort);
    }
  }
}
