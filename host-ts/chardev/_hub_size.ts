// A hub's size policy (`size=latest|smallest|largest|manual`, tmux's `window-size` names): the
// terminal size the device (a spawned program's pty, a guest's console) and the hub's screen
// emulator get, agreed among the read-write backends that know theirs (browser tabs, the
// command's own terminal, `attach` clients). Read-only backends only watch: they never resize.

/** How a hub agrees on one terminal size among its backends' (tmux's `window-size`). */
export type HubSizePolicy = "latest" | "smallest" | "largest" | "manual";

/** A terminal size in character cells. */
export interface HubTerminalSize {
  cols: number;
  rows: number;
}

/** The size policies, as option strings spell them. */
export const HUB_SIZE_POLICIES: readonly HubSizePolicy[] = ["latest", "smallest", "largest", "manual"];

/**
 * The sizes the backends reported and the one agreed from them. With no backend size to go
 * by (none yet, or the last one left) the agreed size stays what it was.
 */
export class HubSizeAgreement {
  /** Each backend's last size, and when it reported it (a counter: the order is what counts). */
  readonly #sizes = new Map<string, HubTerminalSize & { order: number }>();
  #reports = 0;
  #agreed: HubTerminalSize;

  constructor(
    readonly policy: HubSizePolicy,
    initial: HubTerminalSize,
  ) {
    this.#agreed = { ...initial };
  }

  get agreed(): HubTerminalSize {
    return { ...this.#agreed };
  }

  /** Backend `id` (read-write) is `cols`x`rows` now; returns whether the agreed size changed. */
  report(id: string, cols: number, rows: number): boolean {
    this.#sizes.set(id, { cols, rows, order: this.#reports++ });
    return this.#agree();
  }

  /** Backend `id` no longer counts (it closed, left or became read-only); returns whether the agreed size changed. */
  forget(id: string): boolean {
    return this.#sizes.delete(id) && this.#agree();
  }

  #agree(): boolean {
    const sizes = [...this.#sizes.values()];
    if (this.policy === "manual" || sizes.length === 0) return false;
    let next: HubTerminalSize;
    if (this.policy === "latest") {
      const latest = sizes.reduce((a, b) => (b.order > a.order ? b : a));
      next = { cols: latest.cols, rows: latest.rows };
    } else {
      // As tmux: each dimension on its own (the narrowest width and the shortest height).
      const pick = this.policy === "smallest" ? Math.min : Math.max;
      next = { cols: pick(...sizes.map((size) => size.cols)), rows: pick(...sizes.map((size) => size.rows)) };
    }
    if (next.cols === this.#agreed.cols && next.rows === this.#agreed.rows) return false;
    this.#agreed = next;
    return true;
  }
}
