// chardev-hub: QEMU's hub chardev and friends for Node, Deno and Bun. Re-exports only.

export { type ChardevAddArgs, type ChardevInfo, type RegistryOptions, type RingbufFormat } from "./registry.ts";
export { ChardevRegistry } from "./runtime/detect.ts";
export { Frontend, type FrontendHandlers } from "./frontend.ts";
export { ChrEvent } from "./events.ts";
export { ChardevError, type ChardevErrorCode } from "./errors.ts";
export { Chardev, type ChardevDriver, type ChardevContext, type ChardevUser } from "./chardev/_chardev.ts";
export { Hub } from "./runtime/detect.ts";
export { type HubBackendHandle, type HubCreateOptions } from "./hub.ts";
export { HubChardev, type HubBackendOptions, type HubBackendStats, type HubEvent, type HubOptions } from "./chardev/hub.ts";
export { RingbufChardev } from "./chardev/ringbuf.ts";
export { SocketChardev } from "./chardev/socket.ts";
export { PtyChardev } from "./chardev/pty.ts";
export { SpawnChardev } from "./chardev/spawn.ts";
export { SerialChardev } from "./chardev/serial.ts";
export { WebChardev, type TerminalSize } from "./chardev/web.ts";
export { parseChardevOptions } from "./options.ts";
export { QmpMonitor, startQmp, qmpChardevSpec, encodeQmpJson, QmpJsonStreamer, type QmpMonitorOptions, type QmpInput, type QmpErrorClass } from "./qmp.ts";
export { Core } from "./core.ts";
