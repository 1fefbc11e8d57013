// `web`: a terminal in the browser, our answer to QEMU's `vc` shown over VNC. It serves one
// page (xterm.js, built from web/ into _web_page.ts) and a WebSocket; every open tab is a
// client. Output goes to every tab, input from any tab goes to the holder, OPENED comes with
// the first tab and CLOSED when the last one leaves.
//
// Memory stays bounded both ways. Output: a tab more than `queue-limit` bytes behind is
// disconnected (close code 4000), so one stalled tab neither stalls the others nor grows a
// queue; the write itself never blocks. Input: while the holder cannot take more, every tab's
// socket stops being read.

import { ChardevError } from "../errors.ts";
import { strerror } from "../errno.ts";
import { ChrEvent } from "../events.ts";
import { parseSize, registerOptionKeys } from "../options.ts";
import type { WebRequestInfo, WebResource, WebServer, WebSocketHandlers, WebSocketPeer } from "../runtime/types.ts";
import { Chardev, type BackendData, type ChardevContext, type ChardevDriver } from "./_chardev.ts";
import { MAX_TERMINAL_CELLS, SOCKET_PATH, TERMINAL_PROTOCOL, WebCloseCode, type ControlMessage } from "./_web_protocol.ts";

export { TERMINAL_PROTOCOL, WebCloseCode };

registerOptionKeys("queue-limit");

/**
 * Where the server listens unless `host=` says otherwise: this machine only, since whoever
 * reaches the page can type into the console.
 */
export const DEFAULT_WEB_HOST = "127.0.0.1";

/** How far (bytes of queued output) a tab may fall behind before it is disconnected. */
export const DEFAULT_QUEUE_LIMIT = 1024 * 1024;

/** Largest frame a tab may send; a paste bigger than this closes that tab's connection. */
const MAX_INPUT_FRAME_BYTES = 1024 * 1024;

/**
 * The page loads only its own script and stylesheet and talks only to its own server; xterm.js
 * adds `<style>` elements at run time, hence inline styles.
 */
const PAGE_HEADERS: Readonly<Record<string, string>> = {
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src data:; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "Cache-Control": "no-store",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
};

/** A terminal's size in character cells. */
export interface TerminalSize {
  readonly cols: number;
  readonly rows: number;
}

/** Called with a tab's terminal size when it connects and whenever it changes. */
export type ResizeListener = (cols: number, rows: number) => void;

/** Options of {@link WebChardev.open} (the `-chardev web,...` keys). */
export interface WebChardevOptions {
  /**
   * Address to listen on. `0.0.0.0` or `::` opens the terminal to the network.
   * @default "127.0.0.1"
   */
  host?: string;
  /**
   * TCP port; 0 picks a free one (read it back from `port` or `url`).
   * @default 0
   */
  port?: number;
  /**
   * Bytes of output a tab may have queued before it is disconnected as too far behind.
   * @default 1048576
   */
  queueLimit?: number;
}

function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::";
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** A host as it appears in a URL or a Host header: IPv6 addresses in brackets. */
function urlHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

/**
 * Which requests may reach the page and the socket. A WebSocket is not bound by the browser's
 * same-origin rule, so without this any web site open in the user's browser could type into
 * the console: the Origin, when a browser sends one, must be the page's own. The Host must
 * name the address we listen on, so a DNS name rebound to 127.0.0.1 cannot pose as the page.
 * A server on a wildcard address cannot know its names and accepts any Host.
 */
function requestPolicy(host: string, port: number): (request: WebRequestInfo) => boolean {
  const names = isLoopback(host) ? ["localhost", "127.0.0.1", "[::1]", urlHost(host)] : [urlHost(host)];
  const hosts = new Set(names.flatMap((name) => (port === 80 ? [name, `${name}:80`] : [`${name}:${port}`])));
  return ({ host: requestHost, origin }) => {
    const asked = requestHost.toLowerCase();
    if (!isWildcard(host) && !hosts.has(asked)) return false;
    if (origin === null) return true;
    const from = origin.toLowerCase();
    return from === `http://${asked}` || from === `https://${asked}`;
  };
}

function isResize(message: unknown): message is ControlMessage {
  const { type, cols, rows } = (message ?? {}) as Record<string, unknown>;
  const isCells = (n: unknown) => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= MAX_TERMINAL_CELLS;
  return type === "resize" && isCells(cols) && isCells(rows);
}

/**
 * A browser terminal: an HTTP server with one xterm.js page and a WebSocket at `ws`. Every
 * open tab is a client of the chardev.
 *
 * @example A browser terminal behind a hub
 * ```ts
 * const reg = await ChardevRegistry.create();
 * const web = (await reg.add("web,id=web0,port=0")) as WebChardev;
 * await reg.add("hub,id=hub0,chardevs.0=web0");
 * console.log(`open ${web.url}`); // e.g. http://127.0.0.1:41235/
 * web.onResize((cols, rows) => console.log(`a tab is ${cols}x${rows}`));
 * ```
 */
export class WebChardev extends Chardev {
  readonly kind = "web";
  readonly #tabs = new Set<WebSocketPeer>();
  readonly #resizeListeners = new Set<ResizeListener>();
  #server: WebServer | null = null;
  #url = "";
  #inputPaused = false;
  #destroyed = false;
  #terminalSize: TerminalSize | null = null;

  private constructor(
    id: string,
    context: ChardevContext,
    /** The address the server listens on. */
    readonly host: string,
    /** Bytes of output a tab may have queued before it is disconnected. */
    readonly queueLimit: number,
  ) {
    super(id, context);
  }

  /**
   * Starts the server and returns the chardev. Throws ChardevError `OPEN_FAILED` when it cannot
   * listen (a busy port, an address not on this machine), leaving nothing listening.
   */
  static async open(id: string, context: ChardevContext, options: WebChardevOptions = {}): Promise<WebChardev> {
    const web = context.runtime.web;
    if (!web) throw new ChardevError("UNSUPPORTED", `chardev: web: this runtime (${context.runtime.name}) cannot serve web pages`);
    const host = options.host ?? DEFAULT_WEB_HOST;
    const port = options.port ?? 0;
    const queueLimit = options.queueLimit ?? DEFAULT_QUEUE_LIMIT;
    if (host === "") throw new ChardevError("INVALID_VALUE", "web: host must not be empty");
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ChardevError("INVALID_VALUE", "web: port must be between 0 and 65535");
    if (!Number.isSafeInteger(queueLimit) || queueLimit <= 0) throw new ChardevError("INVALID_VALUE", "web: queue-limit must be greater than zero");

    const chardev = new WebChardev(id, context, host, queueLimit);
    // The page's policy needs the bound port, which port=0 only tells after listening.
    let allow: (request: WebRequestInfo) => boolean = () => false;
    const resources = await pageResources();
    try {
      chardev.#server = await web.listen({
        host,
        port,
        resources,
        headers: PAGE_HEADERS,
        socketPath: SOCKET_PATH,
        socketProtocols: [TERMINAL_PROTOCOL],
        maxFrameBytes: MAX_INPUT_FRAME_BYTES,
        allow: (request) => allow(request),
        connect: (peer) => chardev.#connect(peer),
      });
    } catch (error) {
      throw new ChardevError("OPEN_FAILED", `web: Failed to listen on ${urlHost(host)}:${port}: ${strerror(error)}`);
    }
    allow = requestPolicy(host, chardev.#server.port);
    // A wildcard address is not one a browser can open; this machine can always use loopback.
    const browsable = isWildcard(host) ? (host === "::" ? "::1" : "127.0.0.1") : host;
    chardev.#url = `http://${urlHost(browsable)}:${chardev.#server.port}/`;
    return chardev;
  }

  /** The page's address, e.g. `http://127.0.0.1:8080/` (loopback when listening on a wildcard). */
  get url(): string {
    return this.#url;
  }

  /** The port the server listens on (the one picked when `port=0`). */
  get port(): number {
    return this.#server?.port ?? 0;
  }

  /** `web:` and the page's address, as `query-chardev` shows it. */
  override get filename(): string {
    return `web:${this.#url}`;
  }

  /** Tabs connected now. */
  get clientCount(): number {
    return this.#tabs.size;
  }

  /**
   * The terminal size a tab reported last (when it connected or resized), or null before any
   * did. With several tabs of different sizes the latest report wins.
   */
  get terminalSize(): TerminalSize | null {
    return this.#terminalSize;
  }

  /**
   * Calls `listener(cols, rows)` whenever a tab reports its terminal size (on connecting and
   * on every resize); returns a function that stops the calls. For a backend that owns a pty
   * (a future `spawn`), this is where the window size comes from.
   */
  onResize(listener: ResizeListener): () => void {
    this.#resizeListeners.add(listener);
    return () => this.#resizeListeners.delete(listener);
  }

  protected writeOut(data: Uint8Array): number {
    if (data.length === 0 || this.#tabs.size === 0) return data.length;
    // One copy for every tab: `data` may be a view of core memory, valid only during this call.
    const copy = data.slice();
    let dropped = false;
    for (const peer of this.#tabs) {
      const queued = peer.bufferedAmount;
      // A tab that has caught up takes any write whole, so a write larger than the limit
      // does not drop everyone; a tab already behind must not go past the limit.
      if (queued > 0 && queued + copy.length > this.queueLimit) {
        this.#drop(peer, WebCloseCode.TOO_FAR_BEHIND, `output queue over ${this.queueLimit} bytes: tab too far behind`);
        dropped = true;
      } else {
        peer.send(copy);
      }
    }
    // A hub calls us from inside its write loop: the CLOSED of a last tab must come after it.
    if (dropped) queueMicrotask(() => this.#reportOpenState());
    return data.length;
  }

  protected override resumeInput(): void {
    if (!this.#inputPaused) return;
    this.#inputPaused = false;
    for (const peer of this.#tabs) peer.resume();
  }

  #pauseInput(): void {
    if (this.#inputPaused) return;
    this.#inputPaused = true;
    for (const peer of this.#tabs) peer.pause();
  }

  #connect(peer: WebSocketPeer): WebSocketHandlers {
    if (this.#destroyed) {
      peer.close(WebCloseCode.GOING_AWAY, "chardev removed");
      return { message() {}, close() {} };
    }
    this.#tabs.add(peer);
    if (this.#inputPaused) peer.pause();
    this.#reportOpenState();
    return {
      message: (frame) => this.#receive(peer, frame),
      close: () => {
        if (this.#tabs.delete(peer)) this.#reportOpenState();
      },
    };
  }

  #receive(peer: WebSocketPeer, frame: Uint8Array | string): void {
    // A dropped tab's frames that were already on their way are not input any more.
    if (!this.#tabs.has(peer)) return;
    if (typeof frame === "string") {
      if (peer.protocol === TERMINAL_PROTOCOL) return this.#control(frame);
      frame = new TextEncoder().encode(frame);
    }
    if (frame.length > 0 && !this.deliverInput(frame)) this.#pauseInput();
  }

  /** A control frame of the page; anything that is not one we know is ignored. */
  #control(text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (!isResize(message)) return;
    this.#terminalSize = { cols: message.cols, rows: message.rows };
    for (const listener of this.#resizeListeners) listener(message.cols, message.rows);
  }

  #drop(peer: WebSocketPeer, code: number, reason: string): void {
    this.#tabs.delete(peer);
    // Its socket must be read again, or its answer to our close frame would never arrive.
    peer.resume();
    peer.close(code, reason);
  }

  /** OPENED when the first tab is here, CLOSED when the last has gone, each once. */
  #reportOpenState(): void {
    if (this.#destroyed) return;
    const open = this.#tabs.size > 0;
    if (open !== this.beOpen) this.emitEvent(open ? ChrEvent.OPENED : ChrEvent.CLOSED);
  }

  override async destroy(): Promise<void> {
    this.#destroyed = true;
    for (const peer of [...this.#tabs]) this.#drop(peer, WebCloseCode.GOING_AWAY, "chardev removed");
    this.#resizeListeners.clear();
    await this.#server?.close();
    this.#server = null;
    await super.destroy();
  }
}

/** The page from the generated module, loaded when the first web chardev opens. */
async function pageResources(): Promise<ReadonlyMap<string, WebResource>> {
  const { WEB_PAGE } = await import("../_web_page.ts");
  return new Map<string, WebResource>([
    ["/", { contentType: "text/html; charset=utf-8", body: WEB_PAGE.html }],
    ["/terminal.js", { contentType: "text/javascript; charset=utf-8", body: WEB_PAGE.script }],
    ["/terminal.css", { contentType: "text/css; charset=utf-8", body: WEB_PAGE.style }],
  ]);
}

function parsePort(value: string): number {
  const port = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(port <= 65535)) throw new ChardevError("INVALID_VALUE", "Parameter 'port' expects a port number (0 to 65535)");
  return port;
}

/** `-chardev web,id=ID[,host=ADDR][,port=PORT][,queue-limit=SIZE]`. */
export const webDriver: ChardevDriver = {
  type: "web",
  fields: { host: "string", port: "integer", "queue-limit": "integer" },
  fromOptions(options) {
    const data: BackendData = {};
    if (options.has("host")) data.host = options.get("host");
    if (options.has("port")) data.port = parsePort(options.get("port")!);
    if (options.has("queue-limit")) data["queue-limit"] = parseSize("queue-limit", options.get("queue-limit")!);
    return data;
  },
  open: (id, data, context) =>
    WebChardev.open(id, context, {
      host: data.host as string | undefined,
      port: data.port as number | undefined,
      queueLimit: data["queue-limit"] as number | undefined,
    }),
};
