// A log fan-out as a Cloudflare module Worker (run locally with workerd: worker.capnp; deploy
// with wrangler: wrangler.toml). Its destinations come from the SINKS variable: a JSON array of
// `{ "name", "url", "policy", ... }` (see ../../docs/edge.md for every field).
//
// From another project, import the package instead of this repository's build:
//   import { logFanout } from "chardev-hub/edge";
//   import coreModule from "./node_modules/chardev-hub/dist/core.wasm";

import { logFanout } from "../../dist/edge.js";
// Workers refuse to compile WASM at run time: the core comes in as a module compiled at load.
import coreModule from "../../dist/core.wasm";

/** Made on the first request (the variables arrive with it) and kept for the isolate's life. */
let handler = null;

export default {
  fetch(request, env, ctx) {
    handler ??= logFanout({
      sinks: JSON.parse(env.SINKS),
      ring: Number(env.RING ?? 1 << 20),
      wasmModule: coreModule,
    });
    return handler.fetch(request, env, ctx);
  },
};
