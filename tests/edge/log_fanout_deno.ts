// The log fan-out served by Deno for tests/log_fanout.test.ts, run as
// `deno run --allow-net=127.0.0.1 tests/edge/log_fanout_deno.ts PORT` and nothing else: the
// edge bundle needs the network to reach its sinks and to listen, no other permission.
// Prints "listening" once it takes connections.

import { logFanoutApp } from "./log_fanout_app.js";

declare const Deno: {
  args: string[];
  serve(options: { hostname: string; port: number; onListen(): void }, handler: (request: Request) => Promise<Response>): unknown;
};

const app = logFanoutApp();
Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.args[0]), onListen: () => console.log("listening") }, (request) => app.fetch(request));
