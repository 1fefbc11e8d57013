// Answering a `fetch(request)` with a WebSocket: the one step of a Web handler that every
// runtime spells differently. workerd (Cloudflare Workers) makes a `WebSocketPair` and answers
// 101 with the client end; Deno hands the request to `Deno.upgradeWebSocket`. Node and Bun
// cannot upgrade from a bare `fetch` handler (Bun needs its `server` object), so they get null
// and the caller offers something else (Server-Sent Events). Found by feature detection, so the
// edge bundle carries no runtime module.

/** A server-side WebSocket and the response that completes the upgrade. */
export interface UpgradedWebSocket {
  /** Our end. Send only after `opened` has settled. */
  socket: WebSocket;
  /** Resolves once `socket` may send (at once in workerd, on `open` in Deno). */
  opened: Promise<void>;
  /** Return this from the handler. */
  response: Response;
}

interface WorkerdSocket extends WebSocket {
  accept(): void;
}

interface UpgradeGlobals {
  WebSocketPair?: new () => Record<0 | 1, WorkerdSocket>;
  Deno?: { upgradeWebSocket(request: Request): { socket: WebSocket; response: Response } };
}

/**
 * Upgrades `request` (a GET with `Upgrade: websocket`) where the runtime can, else null.
 *
 * @example Echo, where the runtime lets a fetch handler upgrade
 * ```ts
 * import { upgradeWebSocket } from "./web_socket_upgrade.ts";
 * function handle(request: Request): Response {
 *   const upgraded = upgradeWebSocket(request);
 *   if (!upgraded) return new Response("no WebSockets here", { status: 501 });
 *   upgraded.socket.addEventListener("message", (event) => upgraded.socket.send(String(event.data)));
 *   return upgraded.response;
 * }
 * ```
 */
export function upgradeWebSocket(request: Request): UpgradedWebSocket | null {
  const globals = globalThis as unknown as UpgradeGlobals;
  if (typeof globals.WebSocketPair === "function") {
    const pair = new globals.WebSocketPair();
    const client = pair[0];
    const server = pair[1];
    server.accept();
    // workerd's ResponseInit takes `webSocket`; the standard type does not know it.
    const response = new Response(null, { status: 101, webSocket: client } as ResponseInit);
    return { socket: server, opened: Promise.resolve(), response };
  }
  if (typeof globals.Deno?.upgradeWebSocket === "function") {
    const { socket, response } = globals.Deno.upgradeWebSocket(request);
    const opened = new Promise<void>((resolve, reject) => {
      if (socket.readyState === WebSocket.OPEN) return resolve();
      socket.addEventListener("open", () => resolve(), { once: true });
      socket.addEventListener("close", () => reject(new Error("tail: the WebSocket closed before it opened")), { once: true });
    });
    return { socket, opened, response };
  }
  return null;
}
