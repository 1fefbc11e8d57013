// @ts-self-types="./log_fanout_app.d.ts"
// The log fan-out as tests/log_fanout.test.ts drives it, shared by the workerd Worker
// (log_fanout_worker.js) and the Deno server (log_fanout_deno.ts). The receivers' ports are
// only known once the test runs, so the handler is made by `POST /configure` with the
// `logFanout` options as JSON (a new one replaces the old); every other request goes to it.
// Plain JavaScript so workerd loads it as is.

import { logFanout } from "../../dist/edge.js";

/** A fetch handler that makes a `logFanout` from `POST /configure` and serves it. */
export function logFanoutApp(wasmModule) {
  let handler = null;
  return {
    async fetch(request, env, ctx) {
      const { pathname } = new URL(request.url);
      if (pathname === "/configure" && request.method === "POST") {
        const previous = handler;
        handler = null;
        if (previous) await previous.close();
        try {
          handler = logFanout({ ...(await request.json()), wasmModule });
        } catch (error) {
          return Response.json({ error: String(error?.message ?? error) }, { status: 400 });
        }
        return Response.json({ configured: true });
      }
      if (!handler) return Response.json({ error: "POST /configure first" }, { status: 409 });
      return handler.fetch(request, env, ctx);
    },
  };
}
