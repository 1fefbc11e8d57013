// What the hub needs to know of screen replay without the terminal emulator itself: the
// `replay` values, the default size, the screen's contract, and where the emulator comes from.
// The emulator (_hub_screen.ts, xterm.js) is provided by the main entry (mod.ts), so that the
// edge entry (mod_web.ts) carries no terminal emulator: there `replay=screen` is refused. It is
// loaded when a hub first needs a screen, not at startup.

import type { Core } from "../core.ts";
import { ChardevError } from "../errors.ts";
import type { HubEntry } from "./_hub_output.ts";

/** Terminal size a hub's screen starts at until its size policy says otherwise. */
export const DEFAULT_SCREEN_COLS = 80;
/** @see DEFAULT_SCREEN_COLS */
export const DEFAULT_SCREEN_ROWS = 24;
/** Lines the emulator keeps above the screen, the most a `replay.N=screen` backend can get. */
export const SCREEN_SCROLLBACK_LINES = 1000;

/** A `replay` value: bytes of history, or the screen (`screen`, `screen:LINES` of scrollback). */
export type HubReplay = number | "screen" | `screen:${number}`;

/** The scrollback lines a `screen` replay asks for, or null for a byte replay. */
export function screenScrollback(replay: HubReplay | undefined): number | null {
  if (typeof replay !== "string") return null;
  if (replay === "screen") return SCREEN_SCROLLBACK_LINES;
  return Math.min(Number(replay.slice("screen:".length)), SCREEN_SCROLLBACK_LINES);
}

/** Whether `value` is a `replay` value of the screen kind (`screen` or `screen:LINES`). */
export function isScreenReplay(value: unknown): value is "screen" | `screen:${number}` {
  return typeof value === "string" && /^screen(:\d{1,9})?$/.test(value);
}

/** What a hub's screen asks of the broadcast ring it reads. */
export interface ScreenRing {
  readonly core: Core;
  /** The ring's address, the writer's pending bytes booked (not from inside the drain). */
  settled(): number;
  /** The ring's address as is (from inside the drain, where the writer is settled). */
  readonly address: number;
  /** Serves the readers again at the end of this turn. */
  scheduleDrain(): void;
  /** A hard write error of a backend while its repaint went out. */
  fail(entry: HubEntry, result: number): void;
  /** An `evict` backend stalled on its repaint past its `stallMs`. */
  evict(entry: HubEntry): void;
}

/** A hub's screen as the ring drives it (_hub_screen.ts's HubScreen). */
export interface HubScreenReader {
  /** Its reader in the ring. */
  readonly slot: number;
  /** The core's slice for its reader (inside the drain); returns bytes taken. */
  take(data: Uint8Array): number;
  /** A `replay=screen` backend's slice: 0 while its repaint is due, undefined once through. */
  holdJoiner(slot: number): number | undefined;
  /**
   * Backend `entry` opened asking for the screen with `scrollback` lines above it, when the
   * ring's head was at `openedAt` (default: the head now; earlier when the backend opened
   * while the emulator was loading, and took no ring bytes since).
   */
  join(entry: HubEntry, scrollback: number, openedAt?: number): void;
  /** Backend `slot` closed or left. */
  forget(slot: number): void;
  /** The hub agreed on a new size. */
  resize(cols: number, rows: number): void;
  /** The screen now, serialized (tests, tools). */
  serialize(scrollback?: number): string;
  /** Resolves once the emulator has parsed everything written to the ring so far. */
  parsed(): Promise<void>;
  dispose(): void;
}

/** Makes a hub's screen: a reader of `ring` (of `ringSize` bytes) at `cols`x`rows`. */
export type HubScreenMaker = (ring: ScreenRing, ringSize: number, cols: number, rows: number) => HubScreenReader;

/** Loads the emulator's code (a dynamic import: xterm.js is a third of the command's code). */
export type HubScreenLoader = () => Promise<HubScreenMaker>;

let screenLoader: HubScreenLoader | null = null;
let screenLoading: Promise<HubScreenMaker> | null = null;
let screenMaker: HubScreenMaker | null = null;

/**
 * Called once by the main entry (mod.ts): hubs made from then on can replay the screen. The
 * loader runs when a hub first needs a screen, so a process that replays none never loads it.
 */
export function provideHubScreen(loader: HubScreenLoader): void {
  screenLoader = loader;
}

/** Whether this build can make screens at all (the edge entry cannot). */
export function hubScreenProvided(): boolean {
  return screenLoader !== null;
}

/**
 * Loads the emulator, once; resolves when `makeHubScreen` can make screens. Awaiting it before
 * a screen is needed (a hub configured with `replay=screen`) saves the joiners' wait.
 */
export function loadHubScreen(): Promise<void> {
  if (!screenLoader) return Promise.reject(unsupported());
  screenLoading ??= screenLoader().then((maker) => {
    screenMaker = maker;
    return maker;
  });
  return screenLoading.then(() => undefined);
}

/** A new screen for a hub, or null while the emulator is still loading (`loadHubScreen`). */
export function makeHubScreen(ring: ScreenRing, ringSize: number, cols: number, rows: number): HubScreenReader | null {
  if (!screenLoader) throw unsupported();
  return screenMaker ? screenMaker(ring, ringSize, cols, rows) : null;
}

function unsupported(): ChardevError {
  return new ChardevError("UNSUPPORTED", "hub: replay=screen needs the terminal emulator of the main entry (chardev-hub, not chardev-hub/edge)");
}
