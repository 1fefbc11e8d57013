// A module Worker for workerd (config: worker.capnp): POST a body, and it goes through a hub
// to 3 webstream sinks; the answer is JSON of what each sink got.
//
// workerd, like Cloudflare, refuses to compile WASM from bytes at run time, so the bytes that
// dist/edge.js embeds reach it as a WASM module from the config (dist/core.wasm, the file the
// build embedded) and the compiled module is handed to the registry.

import coreModule from "../../dist/core.wasm";
import { fanOut } from "./fanout.js";

export default {
  async fetch(request) {
    if (request.method !== "POST" || !request.body) return new Response("POST a body\n", { status: 405 });
    try {
      const report = await fanOut(request.body, { wasmModule: coreModule });
      return Response.json({ runtime: "workerd", ...report });
    } catch (error) {
      return new Response(`${error?.stack ?? error}\n`, { status: 500 });
    }
  },
};
