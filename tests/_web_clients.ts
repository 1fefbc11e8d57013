// Clients of the `web` chardev for tests: a plain WebSocket playing a tab, an upgrade that
// reports how it was answered, and how headless Chromium is started.

import WebSocket from "ws";
import { expect } from "./_harness.ts";
import { TERMINAL_PROTOCOL, type WebChardev } from "../host-ts/chardev/web.ts";
import type { ChardevRegistry, Frontend } from "../host-ts/mod.ts";
import { FeHandler } from "./_fe_handler.ts";

export const CHROMIUM = "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];

/** Resolves once `condition` holds; the test's own time limit ends a wait that never does. */
export async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 2));
}

/** One turn of the event loop, so sockets on both ends get to read. */
export const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A plain WebSocket client playing a tab: collects what it receives. */
export class Tab {
  received: Buffer[] = [];
  receivedBytes = 0;
  /** Text frames: the server's control messages to a page (only with the terminal protocol). */
  controls: unknown[] = [];

  private constructor(readonly socket: WebSocket) {
    socket.on("message", (data: Buffer, isBinary) => {
      if (!isBinary && socket.protocol === TERMINAL_PROTOCOL) {
        this.controls.push(JSON.parse(data.toString("utf8")));
        return;
      }
      expect(isBinary, "output comes in binary frames").toBe(true);
      this.received.push(data);
      this.receivedBytes += data.length;
    });
  }

  static async open(url: string, options: { protocol?: string; origin?: string; host?: string; headers?: Record<string, string> } = {}): Promise<Tab> {
    const socket = new WebSocket(url, options.protocol ? [options.protocol] : [], {
      origin: options.origin,
      headers: { ...options.headers, ...(options.host ? { Host: options.host } : {}) },
    });
    // Listening before the handshake ends: the server's first frame may come with its answer.
    const tab = new Tab(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once("open", () => resolve());
      socket.once("error", reject);
    });
    return tab;
  }

  text(): string {
    return Buffer.concat(this.received).toString("utf8");
  }

  /** Closes from this side and waits until the connection is gone. */
  async close(): Promise<void> {
    const closed = new Promise((resolve) => this.socket.once("close", resolve));
    this.socket.close();
    await closed;
  }
}

/** The HTTP status a WebSocket upgrade is refused with, or "open" if it is accepted. */
export function upgradeStatus(url: string, options: { origin?: string; host?: string; headers?: Record<string, string> } = {}): Promise<number | "open"> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { origin: options.origin, headers: { ...options.headers, ...(options.host ? { Host: options.host } : {}) } });
    socket.once("unexpected-response", (_request, response) => {
      resolve(response.statusCode ?? 0);
      socket.terminate();
    });
    socket.once("open", () => {
      resolve("open");
      socket.close();
    });
    socket.once("error", (error) => {
      if (!/Unexpected server response/.test(error.message)) reject(error);
    });
  });
}


/** A web chardev `web0` (on a free port, with more keys in `options`) behind a hub `hub0`, with a frontend attached. */
export async function webBehindHub(reg: ChardevRegistry, options = ""): Promise<{ web: WebChardev; fe: FeHandler; frontend: Frontend }> {
  const web = (await reg.add(`web,id=web0,port=0${options}`)) as WebChardev;
  await reg.add("hub,id=hub0,chardevs.0=web0");
  const fe = new FeHandler();
  const frontend = reg.attach("hub0", fe);
  return { web, fe, frontend };
}
