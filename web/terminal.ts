// The `web` chardev's page: one xterm.js terminal joined to the chardev by a WebSocket.
// Output arrives as binary frames and is written to the terminal; what the user types goes
// back as binary frames; the terminal's size goes as a JSON control frame. scripts/build.mjs
// bundles this file, xterm.js and the CSS into the page the chardev serves: nothing is fetched
// from anywhere else.

import { FitAddon } from "@xterm/addon-fit";
import { Terminal } from "@xterm/xterm";
import "@xterm/xterm/css/xterm.css";
import "./page.css";
import { SOCKET_PATH, TERMINAL_PROTOCOL, type ControlMessage } from "../host-ts/chardev/_web_protocol.ts";

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
/** Typed before the socket finished connecting; sent once it is open rather than lost. */
let typedWhileConnecting: Uint8Array[] = [];

/** The socket's URL relative to the page, so the page works behind a proxy that adds a prefix. */
function socketUrl(): string {
  const url = new URL(SOCKET_PATH, location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

function sendInput(bytes: Uint8Array): void {
  if (!socket) {
    // Disconnected: the key that was pressed asks for a new connection, it is not input.
    connect();
    return;
  }
  if (socket.readyState === WebSocket.CONNECTING) typedWhileConnecting.push(bytes);
  else if (socket.readyState === WebSocket.OPEN) socket.send(bytes);
}

function sendControl(message: ControlMessage): void {
  if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
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
  ws.onopen = () => {
    document.title = "chardev-hub";
    sendControl({ type: "resize", cols: terminal.cols, rows: terminal.rows });
    for (const bytes of typedWhileConnecting) ws.send(bytes);
    typedWhileConnecting = [];
  };
  ws.onmessage = (event: MessageEvent<ArrayBuffer | string>) => {
    terminal.write(typeof event.data === "string" ? event.data : new Uint8Array(event.data));
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
