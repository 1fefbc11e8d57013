// `web`: a terminal in the browser, our answer to QEMU's `vc` shown over VNC. It serves one
// page (xterm.js, built from web/ into _web_page.ts) and a WebSocket; every open tab is a
// client. Output goes to every tab, input from any tab goes to the holder, OPENED comes with
// the first tab and CLOSED when the last one leaves.
//
// Nobody types who may not: the page and its socket ask for a secret (printed in the URL,
// kept in a cookie after the first load), a second secret makes a tab view-only, another
// local user's connection to a loopback address is closed at once, and `max-clients` bounds
// the tabs. `auth=none` and `access=any` turn the checks off, loudly.
//
// Held by a hub (outside qemuCompat) with `max-clients` above 1, it is a ClientSource: every
// tab is handed to the hub as a chardev of its own (_web_tab.ts), a backend with the hub's
// per-backend options (policy, lag-limit, stall-ms, replay, mode); a view-only tab is one with
// mode `ro`. The chardev itself then moves no bytes and never opens.
//
// Otherwise (held directly, `max-clients=1`, or under qemuCompat, whose hub takes at most 4
// backends) it fans out to its tabs itself. Memory stays bounded both ways. Output: a tab more
// than `queue-limit` bytes behind is disconnected (close code 4000), so one stalled tab
// neither stalls the others nor grows a queue; the write itself never blocks. Input: while the
// holder cannot take more, every tab's socket stops being read.
//
// Beside it: the keys and their checks (_web_options.ts), the secrets (_web_auth.ts), the wire
// protocol (_web_protocol.ts) and a tab as a backend of its own (_web_tab.ts).

import { ChardevError } from "../errors.ts";
import { strerror } from "../errno.ts";
import { ChrEvent } from "../events.ts";
import { checkSize, MAX_CLIENT_BUFFER_BYTES, MAX_CLIENTS, MIN_CLIENTS } from "../limits.ts";
import type { TcpEndpoint, WebRequestInfo, WebResource, WebServer, WebSocketHandlers, WebSocketPeer, WebVerdict } from "../runtime/types.ts";
import { Chardev, type ChardevContext, type ChardevUser, defineDriver } from "./_chardev.ts";
import { MAX_TERMINAL_CELLS, SOCKET_PATH, TERMINAL_PROTOCOL, WebCloseCode, type ControlMessage, type HelloMessage } from "./_web_protocol.ts";
import { loopbackPeerRefusal, plainNetworkListenerWarning, type PeerAccess } from "./_peer_access.ts";
import { tlsCredsFor, type TlsCredsX509 } from "../tls_creds.ts";
import type { ClientInfo } from "./_client_source.ts";
import type { HubReplay } from "./_hub_screen_contract.ts";
import { tabPeerAddress, WebTabChardev } from "./_web_tab.ts";
import { webChardevOptionsFromData, type WebChardevOptions, webOptions } from "./_web_options.ts";
import { checkSecret, cookieName, generateSecret, MAX_SECRET_LENGTH, presentedSecret, secretsEqual, sessionCookie } from "./_web_auth.ts";

export { TERMINAL_PROTOCOL, WebCloseCode };
export { type WebChardevOptions, webOptions } from "./_web_options.ts";

/**
 * Where the server listens unless `host=` says otherwise: this machine only, since whoever
 * reaches the page can type into the console.
 */
export const DEFAULT_WEB_HOST = "127.0.0.1";

/** How far (bytes of queued output) a tab may fall behind before it is disconnected. */
export const DEFAULT_QUEUE_LIMIT = 1024 * 1024;

/** Tabs served at once unless `max-clients` says otherwise: enough for a team, far from the fd limit. */
export const DEFAULT_MAX_CLIENTS = 64;

/**
 * TCP connections beyond the tabs: page loads and upgrades in progress. Past tabs plus these,
 * new connections are closed at once.
 */
const EXTRA_CONNECTIONS = 16;

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

/**
 * Called with a tab's terminal size when it connects and whenever it changes. `backendId` is
 * the hub backend the size belongs to, for a hub's size policy (`hub.resize`): the tab's own
 * chardev (`web0#2`) while a hub takes every tab as a backend of its own, else the web chardev.
 */
export type ResizeListener = (cols: number, rows: number, backendId: string) => void;

/** Whoever takes the tabs as chardevs of their own (a hub; see ClientSource). */
export type TabListener = (tab: Chardev, info: ClientInfo) => void;

/** One connected tab: whether it may type, and its chardev once it is handed to a hub. */
interface TabState {
  readonly role: "rw" | "ro";
  chardev: WebTabChardev | null;
}

export interface WebRefusals {
  /** Requests and upgrades without a valid secret (401), or from a foreign origin or host (403). */
  readonly requests: number;
  /** Upgrades refused because `max-clients` tabs were connected (503). */
  readonly tooManyClients: number;
  /** TCP connections closed at once because another local user made them. */
  readonly otherUsers: number;
  /** TLS handshakes that failed (with `verify-peer=on`: a client without a valid certificate). */
  readonly tlsHandshakes: number;
  /** Bytes typed in view-only tabs, discarded. */
  readonly readOnlyInputBytes: number;
  /** Resizes asked by view-only tabs, ignored. */
  readonly readOnlyResizes: number;
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
 * open tab is a client of the chardev. The page and the socket ask for a secret: open `url`
 * (it carries the secret) to type, `viewUrl` to watch.
 *
 * @example A browser terminal behind a hub
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create();
 * const web = (await reg.add("web,id=web0,port=0")) as WebChardev;
 * await reg.add("hub,id=hub0,chardevs.0=web0");
 * console.log(`open ${web.url}`); // e.g. http://127.0.0.1:41235/?token=3q2-7w...
 * console.log(`watch ${web.viewUrl}`); // the view-only address
 * web.onResize((cols, rows) => console.log(`a tab is ${cols}x${rows}`));
 * ```
 */
export class WebChardev extends Chardev {
  readonly kind = "web";
  /** Every connected tab, whether it may type and its chardev when a hub holds it apart. */
  readonly #tabs = new Map<WebSocketPeer, TabState>();
  readonly #resizeListeners = new Set<ResizeListener>();
  /** The hub that takes each tab as a backend of its own; null: the tabs are fanned out to here. */
  #tabListener: TabListener | null = null;
  /** Numbers the tabs' chardev ids (`web0#1`, `web0#2`, ...), never reused. */
  #tabsHandedOut = 0;
  #server: WebServer | null = null;
  #baseUrl = "";
  #inputPaused = false;
  #destroyed = false;
  #terminalSize: TerminalSize | null = null;
  #refusals = { requests: 0, tooManyClients: 0, otherUsers: 0, tlsHandshakes: 0, readOnlyInputBytes: 0, readOnlyResizes: 0 };
  /** Lets go of the TLS credentials object, so `object-del` may remove it once we are gone. */
  readonly #releaseTlsCreds: (() => void) | null;

  private constructor(
    id: string,
    context: ChardevContext,
    /** The address the server listens on. */
    readonly host: string,
    /** Bytes of output a tab may have queued before it is disconnected. */
    readonly queueLimit: number,
    /** Tabs served at once. */
    readonly maxClients: number,
    /** The secret of typing tabs, and of view-only tabs; both null with `auth=none`. */
    readonly secrets: { readonly rw: string; readonly ro: string } | null,
    /** Whether other local users' loopback connections are served. */
    readonly access: PeerAccess,
    /** The credentials it serves HTTPS with, or null for plain HTTP. */
    readonly tlsCreds: TlsCredsX509 | null,
    replay?: HubReplay,
  ) {
    super(id, context);
    this.#releaseTlsCreds = tlsCreds?.hold() ?? null;
    // QEMU's hub takes at most 4 backends and knows no listeners: under qemuCompat the tabs
    // stay one backend, fanned out to here. One tab at most needs no hub row per tab either.
    if (!context.qemuCompat && maxClients > 1) this.onClient = (listener) => this.#handTabsTo(listener);
    this.defaultReplay = replay;
  }

  /** Tabs of a hub without a ring stay here, each with its queue limit (ClientSource). */
  readonly fansOutItself = true;

  /** `replay=`: what a new tab is replayed when the hub's `replay.N` for this chardev says nothing. */
  readonly defaultReplay: HubReplay | undefined;

  /**
   * Present outside qemuCompat with `max-clients` above 1 (ClientSource): calls `listener` with
   * every tab, those already connected first, as a chardev of its own (id `ID#N`, N counting
   * from 1) and who it is (its address, its uid where the kernel tells, `mode: "ro"` for a
   * view-only tab). A hub that holds this chardev subscribes; from then on this chardev moves
   * no bytes and never opens. The returned function stops the calls and closes those tabs.
   * One listener at a time.
   */
  readonly onClient?: (listener: TabListener) => () => void;

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
    const maxClients = options.maxClients ?? DEFAULT_MAX_CLIENTS;
    if (host === "") throw new ChardevError("INVALID_VALUE", "web: host must not be empty");
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ChardevError("INVALID_VALUE", "web: port must be between 0 and 65535");
    if (!Number.isSafeInteger(queueLimit) || queueLimit <= 0) throw new ChardevError("INVALID_VALUE", "web: queue-limit must be greater than zero");
    checkSize("web", "queue-limit", queueLimit, MAX_CLIENT_BUFFER_BYTES, 1);
    if (!Number.isSafeInteger(maxClients) || maxClients < MIN_CLIENTS || maxClients > MAX_CLIENTS) {
      throw new ChardevError("INVALID_VALUE", `web: max-clients must be between ${MIN_CLIENTS} and ${MAX_CLIENTS}`);
    }
    const auth = options.auth ?? "token";
    if (auth === "none" && (options.token !== undefined || options.roToken !== undefined)) {
      throw new ChardevError("INVALID_PARAMETER", "web: auth=none takes no token");
    }
    const secrets =
      auth === "none"
        ? null
        : {
            rw: options.token === undefined ? generateSecret() : checkSecret("token", options.token),
            ro: options.roToken === undefined ? generateSecret() : checkSecret("ro-token", options.roToken),
          };
    if (secrets && secretsEqual(secrets.rw, secrets.ro)) throw new ChardevError("INVALID_VALUE", "web: 'token' and 'ro-token' must differ");

    const tlsCreds = options.tlsCreds === undefined ? null : tlsCredsFor(context, options.tlsCreds, "server");
    const chardev = new WebChardev(id, context, host, queueLimit, maxClients, secrets, options.access ?? "user", tlsCreds, options.replay);
    // The page's policy needs the bound port, which port=0 only tells after listening.
    let origins: (request: WebRequestInfo) => boolean = () => false;
    const resources = await pageResources();
    const scheme = tlsCreds ? "https" : "http";
    try {
      chardev.#server = await web.listen({
        host,
        port,
        resources,
        headers: PAGE_HEADERS,
        socketPath: SOCKET_PATH,
        socketProtocols: [TERMINAL_PROTOCOL],
        maxFrameBytes: MAX_INPUT_FRAME_BYTES,
        maxConnections: maxClients + EXTRA_CONNECTIONS,
        tls: tlsCreds?.tls,
        onTlsFailure: (peer, why) => {
          chardev.#refusals.tlsHandshakes++;
          context.warn(`web: ${id}: refused ${peer}: TLS handshake failed: ${why}`);
        },
        acceptConnection: (local, remote) => chardev.#acceptConnection(local, remote),
        check: (request) => chardev.#check(request, origins(request)),
        connect: (peer, role) => chardev.#connect(peer, role),
      });
    } catch (error) {
      chardev.#releaseTlsCreds?.();
      throw new ChardevError("OPEN_FAILED", `web: Failed to listen on ${urlHost(host)}:${port}: ${strerror(error)}`);
    }
    origins = requestPolicy(host, chardev.#server.port);
    // A wildcard address is not one a browser can open; this machine can always use loopback.
    const browsable = isWildcard(host) ? (host === "::" ? "::1" : "127.0.0.1") : host;
    chardev.#baseUrl = `${scheme}://${urlHost(browsable)}:${chardev.#server.port}/`;
    if (!secrets) context.warn(`web: ${id}: auth=none: anyone who can reach ${chardev.#baseUrl} can type into this console`);
    const plain = plainNetworkListenerWarning("web", id, { host, port: chardev.port }, tlsCreds !== null);
    if (plain) context.warn(plain);
    return chardev;
  }

  /** The address to open for a tab that types: the page with its secret, e.g. `http://127.0.0.1:8080/?token=...`. */
  get url(): string {
    return this.secrets ? `${this.#baseUrl}?token=${encodeURIComponent(this.secrets.rw)}` : this.#baseUrl;
  }

  /** The address of a view-only tab (it cannot type or resize); `url` with `auth=none`. */
  get viewUrl(): string {
    return this.secrets ? `${this.#baseUrl}?token=${encodeURIComponent(this.secrets.ro)}` : this.#baseUrl;
  }

  /** The page's address without a secret, e.g. `http://127.0.0.1:8080/` (loopback when listening on a wildcard). */
  get baseUrl(): string {
    return this.#baseUrl;
  }

  /** The port the server listens on (the one picked when `port=0`). */
  get port(): number {
    return this.#server?.port ?? 0;
  }

  /** `web:` and the page's address without its secret, as `query-chardev` shows it. */
  override get filename(): string {
    return `web:${this.#baseUrl}`;
  }

  /** Tabs connected now. */
  get clientCount(): number {
    return this.#tabs.size;
  }

  /** True while a hub takes every tab as a backend of its own (`onClient`). */
  get handsOutTabs(): boolean {
    return this.#tabListener !== null;
  }

  /** Held by a hub that takes its tabs, too (`chardev-remove` refuses: QEMU's `Chardev 'ID' is busy`). */
  override isBusy(): boolean {
    return super.isBusy() || this.#tabListener !== null;
  }

  /** A hub that takes the tabs holds it already: QEMU's text for a chardev with a holder. */
  override attachUser(user: ChardevUser): void {
    if (this.#tabListener) throw new ChardevError("IN_USE", `chardev '${this.id}' is already in use`);
    super.attachUser(user);
  }

  /** What was refused so far. */
  get refusals(): WebRefusals {
    return { ...this.#refusals };
  }

  /**
   * The terminal size a typing tab reported last (when it connected or resized), or null
   * before any did. With several tabs of different sizes the latest report wins.
   */
  get terminalSize(): TerminalSize | null {
    return this.#terminalSize;
  }

  /**
   * Calls `listener(cols, rows, backendId)` whenever a typing tab reports its terminal size (on
   * connecting and on every resize); returns a function that stops the calls. View-only tabs
   * never resize. For a backend that owns a pty (`spawn`), this is where the window size
   * comes from; with a hub's size policy, pass it on as `hub.resize(backendId, cols, rows)`.
   */
  onResize(listener: ResizeListener): () => void {
    this.#resizeListeners.add(listener);
    return () => this.#resizeListeners.delete(listener);
  }

  protected writeOut(data: Uint8Array): number {
    if (data.length === 0 || this.#tabs.size === 0 || this.#tabListener) return data.length;
    // One copy for every tab: `data` may be a view of core memory, valid only during this call.
    const copy = data.slice();
    let dropped = false;
    for (const peer of this.#tabs.keys()) {
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
    for (const [peer, tab] of this.#tabs) if (!tab.chardev) peer.resume();
  }

  #pauseInput(): void {
    if (this.#inputPaused) return;
    this.#inputPaused = true;
    for (const [peer, tab] of this.#tabs) if (!tab.chardev) peer.pause();
  }

  /**
   * Another local user can reach 127.0.0.1 too: only connections our own user made are served,
   * where the runtime can tell (Linux). A remote peer is the secret's (and TLS's) business.
   */
  #acceptConnection(local: TcpEndpoint, remote: TcpEndpoint): boolean {
    const refusal = loopbackPeerRefusal(this.context.runtime, "web", this.id, this.access, local, remote);
    if (!refusal) return true;
    this.#refusals.otherUsers++;
    this.context.warn(refusal);
    return false;
  }

  /** Origin and Host first (they stay with auth=none), then the secret, then room for a tab. */
  #check(request: WebRequestInfo, sameOrigin: boolean): WebVerdict {
    if (!sameOrigin) {
      this.#refusals.requests++;
      return { admit: false, status: 403, text: "Forbidden: this page answers only its own address and origin" };
    }
    let role: "rw" | "ro" = "rw";
    let headers: Record<string, string> | undefined;
    if (this.secrets) {
      const name = cookieName(this.port);
      const presented = presentedSecret(request, name);
      const secret = presented && presented.secret.length <= MAX_SECRET_LENGTH ? presented.secret : null;
      if (secret !== null && secretsEqual(secret, this.secrets.rw)) role = "rw";
      else if (secret !== null && secretsEqual(secret, this.secrets.ro)) role = "ro";
      else {
        this.#refusals.requests++;
        return {
          admit: false,
          status: 401,
          headers: { "WWW-Authenticate": 'Bearer realm="chardev-hub"' },
          text: "Unauthorized: open the address chardev-hub printed (it ends in ?token=...)",
        };
      }
      if (presented!.via === "query" && request.kind === "page") headers = { "Set-Cookie": sessionCookie(name, secret, this.tlsCreds !== null) };
    }
    if (request.kind === "socket" && this.#tabs.size >= this.maxClients) {
      this.#refusals.tooManyClients++;
      return { admit: false, status: 503, text: `Service Unavailable: ${this.maxClients} tabs are connected (max-clients=${this.maxClients})` };
    }
    return { admit: true, role, headers };
  }

  #connect(peer: WebSocketPeer, role: "rw" | "ro"): WebSocketHandlers {
    const ignore: WebSocketHandlers = { message() {}, close() {} };
    if (this.#destroyed) {
      peer.close(WebCloseCode.GOING_AWAY, "chardev removed");
      return ignore;
    }
    // Upgrades admitted together may pass the check before any of them is counted here.
    if (this.#tabs.size >= this.maxClients) {
      this.#refusals.tooManyClients++;
      peer.close(WebCloseCode.TRY_AGAIN_LATER, `${this.maxClients} tabs are connected (max-clients=${this.maxClients})`);
      return ignore;
    }
    const tab: TabState = { role, chardev: null };
    this.#tabs.set(peer, tab);
    // The page hears its mode before any output, a hub's replay included.
    if (peer.protocol === TERMINAL_PROTOCOL) {
      const hello: HelloMessage = { type: "hello", readOnly: role === "ro" };
      peer.sendText(JSON.stringify(hello));
    }
    if (this.#tabListener) this.#handOver(peer, tab, this.#tabListener);
    else if (this.#inputPaused) peer.pause();
    this.#reportOpenState();
    return {
      message: (frame) => this.#receive(peer, frame),
      close: () => {
        if (!this.#tabs.delete(peer)) return;
        tab.chardev?.peerClosed();
        this.#reportOpenState();
      },
    };
  }

  /** Subscribes the hub that takes every tab apart (see `onClient`). */
  #handTabsTo(listener: TabListener): () => void {
    // One holder at a time: a frontend that holds it gets the tabs' input, a hub would take it away.
    if (this.#tabListener || this.user) throw new ChardevError("IN_USE", `chardev '${this.id}' is already in use`);
    this.#tabListener = listener;
    for (const [peer, tab] of [...this.#tabs]) if (!tab.chardev) this.#handOver(peer, tab, listener);
    // The tabs are the hub's backends now: this chardev is not open any more.
    this.#reportOpenState();
    return () => {
      if (this.#tabListener !== listener) return;
      this.#tabListener = null;
      for (const [peer, tab] of [...this.#tabs]) {
        if (tab.chardev) this.#drop(peer, WebCloseCode.GOING_AWAY, "detached from the hub");
      }
    };
  }

  /** Makes `tab` a chardev of its own and gives it to `listener`; one it cannot take is closed. */
  #handOver(peer: WebSocketPeer, tab: TabState, listener: TabListener): void {
    const chardev = new WebTabChardev(`${this.id}#${++this.#tabsHandedOut}`, this.context, peer, this.queueLimit);
    tab.chardev = chardev;
    // Fanned out to before, this tab may have been paused with the others.
    peer.resume();
    const uid = this.context.runtime.peers?.tcpPeerUid(peer.local, peer.remote) ?? null;
    const info: ClientInfo = {
      peer: tabPeerAddress(peer),
      since: Date.now(),
      ...(uid === null ? {} : { uid }),
      ...(tab.role === "ro" ? { mode: "ro" as const } : {}),
    };
    try {
      listener(chardev, info);
    } catch (error) {
      const why = (error instanceof Error ? error.message : String(error)).slice(0, 120);
      this.context.warn(`web: ${this.id}: could not attach tab ${info.peer}: ${why}`);
      // The why is for the operator; a close reason must also stay within 123 bytes.
      this.#drop(peer, WebCloseCode.TRY_AGAIN_LATER, "the hub could not take this tab");
    }
  }

  #receive(peer: WebSocketPeer, frame: Uint8Array | string): void {
    const tab = this.#tabs.get(peer);
    // A dropped tab's frames that were already on their way are not input any more.
    if (tab === undefined) return;
    const role = tab.role;
    if (typeof frame === "string") {
      if (peer.protocol === TERMINAL_PROTOCOL) return this.#control(frame, tab);
      frame = new TextEncoder().encode(frame);
    }
    if (role === "ro") this.#refusals.readOnlyInputBytes += frame.length;
    // A tab of its own goes to its hub row even when view-only: the hub discards it (mode ro)
    // and counts it there, where the operator looks.
    if (tab.chardev) return tab.chardev.input(frame);
    if (role === "ro") return;
    if (frame.length > 0 && !this.deliverInput(frame)) this.#pauseInput();
  }

  /** A control frame of the page; anything that is not one we know is ignored. */
  #control(text: string, tab: TabState): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (!isResize(message)) return;
    if (tab.role === "ro") {
      this.#refusals.readOnlyResizes++;
      return;
    }
    this.#terminalSize = { cols: message.cols, rows: message.rows };
    const backendId = tab.chardev?.id ?? this.id;
    for (const listener of this.#resizeListeners) listener(message.cols, message.rows, backendId);
  }

  /** A hub evicted us: every tab is told why with close code 4001 (EVICTED). */
  override evicted(reason: string): void {
    for (const [peer, tab] of [...this.#tabs]) if (!tab.chardev) this.#drop(peer, WebCloseCode.EVICTED, `evicted by the hub: ${reason}`);
    this.#reportOpenState();
  }

  #drop(peer: WebSocketPeer, code: number, reason: string): void {
    const tab = this.#tabs.get(peer);
    this.#tabs.delete(peer);
    // Its socket must be read again, or its answer to our close frame would never arrive.
    peer.resume();
    peer.close(code, reason);
    tab?.chardev?.peerClosed();
  }

  /** OPENED when the first fanned-out tab is here, CLOSED when the last has gone, each once. */
  #reportOpenState(): void {
    if (this.#destroyed) return;
    const open = !this.#tabListener && this.#tabs.size > 0;
    if (open !== this.beOpen) this.emitEvent(open ? ChrEvent.OPENED : ChrEvent.CLOSED);
  }

  override async destroy(): Promise<void> {
    this.#destroyed = true;
    this.#tabListener = null;
    for (const peer of [...this.#tabs.keys()]) this.#drop(peer, WebCloseCode.GOING_AWAY, "chardev removed");
    this.#resizeListeners.clear();
    await this.#server?.close();
    this.#server = null;
    this.#releaseTlsCreds?.();
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

/**
 * `-chardev web,id=ID[,host=ADDR][,port=PORT][,queue-limit=SIZE][,auth=token|none]
 * [,token=SECRET|token-file=PATH][,ro-token=SECRET|ro-token-file=PATH][,max-clients=N][,access=user|any]
 * [,tls-creds=ID][,replay=BYTES|screen]`.
 */
export const webDriver = defineDriver({
  type: "web",
  options: webOptions,
  open: (id, data, context) => WebChardev.open(id, context, webChardevOptionsFromData(data, context)),
});
