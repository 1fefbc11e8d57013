// chardev-hub for Web-only runtimes (Cloudflare Workers/workerd, browsers, Deno without
// permissions): the registry with the kinds that need no host (hub, ringbuf, null, mux,
// webstream) and the web runtime, which refuses files and FIFOs with UNSUPPORTED. Nothing here
// reaches a Node, Deno or Bun API; scripts/build.mjs bundles it into dist/edge.js. Re-exports only.
// The main entry (mod.ts) is this module plus what needs a host OS.
//
// Where WASM cannot be compiled at run time (workerd), hand the host `coreWasmBytes()` as a
// WASM module and pass the compiled module: `ChardevRegistry.create({ wasmModule })`.

export { ChardevRegistry, type ChardevAddArgs, type ChardevInfo, type RegistryOptions, type RingbufFormat } from "./registry.ts";
export { Frontend, type FrontendHandlers } from "./frontend.ts";
export { ChrEvent } from "./events.ts";
export { ChardevError, type ChardevErrorCode } from "./errors.ts";
export { Chardev, type ChardevDriver, type ChardevContext, type ChardevUser } from "./chardev/_chardev.ts";
export { Hub, type HubBackendHandle, type HubCreateOptions } from "./hub.ts";
export { HubChardev, type HubBackendOptions, type HubBackendStats, type HubEvent, type HubOptions } from "./chardev/hub.ts";
export { RingbufChardev } from "./chardev/ringbuf.ts";
export { NullChardev } from "./chardev/null.ts";
export { DEFAULT_WEBSTREAM_HIGH_WATER_MARK, WebStreamChardev } from "./chardev/webstream.ts";
export { GAP_HEADER, HttpChardev, type HttpSinkSettings, type HttpSinkStats } from "./chardev/http.ts";
export { parseChardevOptions } from "./options.ts";
export { Core, coreWasmBytes } from "./core.ts";
export { webRuntime } from "./runtime/web.ts";
export { logFanout, type LogFanoutContext, type LogFanoutHandler, type LogFanoutOptions, type LogFanoutSink, type LogFanoutSinkStats } from "./log_fanout.ts";
export type { HostRuntime } from "./runtime/types.ts";
