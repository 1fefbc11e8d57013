// The `web` chardev's page: one xterm.js terminal joined to the chardev by a WebSocket.
// Output arrives as binary frames and is written to the terminal; what the user types goes
// back as binary frames; the terminal's size goes as a JSON control frame. scripts/build.mjs
// bundles this file, xterm.js and the CSS into the page the chardev serves: nothing is fetched
// from anywhere else.

import { FitAddon } from "@xterm/addon-fit";
import { Terminal } from "@xterm/xterm";
import "@xterm/xterm/css/xterm.css";
import "./page.css";
import { SOCKET_PATH, TERMINAL_PROTOCOL, type ControlMessage, type HelloMessage } from "../host-ts/chardev/_web_protocol.ts";

// The secret came in the address (`?token=`); the server answered with a cookie that holds
// it, so it leaves the address bar, the history and any bookmark made from here on.
if (new URLSearchParams(location.search).has("token")) history.replaceState(null, "", location.pathname + location.hash);

const terminal = new Terminal({ cursorBlink: true, scrollback: 10_000 });
const fit = new FitAddon();
terminal.loadAddon(fit);
const container = document.getElementById("terminal")!;
terminal.open(container);
fit.fit();
new ResizeObserver(() => fit.fit()).observe(container);
terminal.focus();

const encoder = new TextEncoder();
let socket: WebSocket | null = null;
/** The server said this tab may only watch: its keys and size are ignored, so none are sent. */
let readOnly = false;
/** Typed before the socket finished connecting; sent once it is open rather than lost. */
let typedWhileConnecting: Uint8Array[] = [];

/** The socket's URL relative to the page, so the page works behind a proxy that adds a prefix. */
function socketUrl(): string {
  const url = new URL(SOCKET_PATH, location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

function sendInput(bytes: Uint8Array): void {
  if (readOnly && socket) return;
  if (!socket) {
    // Disconnected: the key that was pressed asks for a new connection, it is not input.
    connect();
    return;
  }
  if (socket.readyState === WebSocket.CONNECTING) typedWhileConnecting.push(bytes);
  else if (socket.readyState === WebSocket.OPEN) socket.send(bytes);
}

function sendControl(message: ControlMessage): void {
  if (!readOnly && socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

/** The server's hello: show whether this tab may type, in the title and on the page. */
function greet(hello: HelloMessage): void {
  readOnly = hello.readOnly;
  terminal.options.disableStdin = readOnly;
  document.title = readOnly ? "chardev-hub (view only)" : "chardev-hub";
  document.body.dataset.mode = readOnly ? "ro" : "rw";
  const badge = document.getElementById("mode");
  if (badge) badge.textContent = readOnly ? "view only" : "";
  if (!readOnly) {
    sendControl({ type: "resize", cols: terminal.cols, rows: terminal.rows });
    for (const bytes of typedWhileConnecting) socket?.send(bytes);
  }
  typedWhileConnecting = [];
}

function control(text: string): void {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return;
  }
  if ((message as { type?: unknown } | null)?.type === "hello") greet(message as HelloMessage);
}

function showDisconnected(reason: string): void {
  // The reason comes from the server; control characters in it must not drive the terminal.
  const printable = reason.replace(/[\x00-\x1f\x7f-\x9f]/g, "");
  terminal.write(`\r\n\x1b[1;31m[disconnected${printable ? `: ${printable}` : ""}; press a key to reconnect]\x1b[0m\r\n`);
}

function connect(): void {
  const ws = new WebSocket(socketUrl(), TERMINAL_PROTOCOL);
  ws.binaryType = "arraybuffer";
  socket = ws;
  // The size and what was typed while connecting go once the server's hello tells whether
  // this tab may type at all.
  ws.onopen = () => {
    document.title = "chardev-hub";
  };
  ws.onmessage = (event: MessageEvent<ArrayBuffer | string>) => {
    if (typeof event.data === "string") control(event.data);
    else terminal.write(new Uint8Array(event.data));
  };
  ws.onclose = (event) => {
    if (socket !== ws) return;
    socket = null;
    typedWhileConnecting = [];
    document.title = "chardev-hub (disconnected)";
    showDisconnected(event.reason);
  };
}

terminal.onData((text) => sendInput(encoder.encode(text)));
// Some mouse reports are raw bytes in a string, one character per byte.
terminal.onBinary((binary) => sendInput(Uint8Array.from(binary, (ch) => ch.charCodeAt(0) & 0xff)));
terminal.onResize(({ cols, rows }) => sendControl({ type: "resize", cols, rows }));

connect();
