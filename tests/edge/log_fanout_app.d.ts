// Types of log_fanout_app.js (plain JavaScript, so workerd loads it as is).

export interface LogFanoutApp {
  fetch(request: Request, env?: unknown, ctx?: { waitUntil(promise: Promise<unknown>): void }): Promise<Response>;
}

export function logFanoutApp(wasmModule?: WebAssembly.Module): LogFanoutApp;
