// The log fan-out under Deno with the network permission only:
//
//   deno run --allow-net examples/edge-log-fanout/deno.ts --port 8080 \
//     --sink archive,block,http://127.0.0.1:9001/ --sink search,drop,http://127.0.0.1:9002/
//
// Each --sink is NAME,POLICY,URL (policy: block, drop or evict). The configuration comes from
// the arguments because reading a file or the environment would need another permission.
// From another project, import "jsr:@chardev-hub/chardev-hub/edge" or "npm:chardev-hub/edge".

import { logFanout, type LogFanoutSink } from "../../host-ts/mod_web.ts";

declare const Deno: {
  args: string[];
  exit(code: number): never;
  serve(options: { hostname: string; port: number }, handler: (request: Request) => Promise<Response>): unknown;
};

function usage(problem: string): never {
  console.error(`deno.ts: ${problem}\nusage: deno run --allow-net deno.ts [--port 8080] [--host 127.0.0.1] --sink NAME,POLICY,URL [--sink ...]`);
  Deno.exit(2);
}

let port = 8080;
let hostname = "127.0.0.1";
const sinks: LogFanoutSink[] = [];
for (let i = 0; i < Deno.args.length; i += 2) {
  const [flag, value] = [Deno.args[i], Deno.args[i + 1]];
  if (value === undefined) usage(`${flag} needs a value`);
  if (flag === "--port") port = Number(value);
  else if (flag === "--host") hostname = value;
  else if (flag === "--sink") {
    const [name, policy, ...url] = value.split(",");
    if (!["block", "drop", "evict"].includes(policy)) usage(`--sink ${value}: the policy is block, drop or evict`);
    sinks.push({ name, policy: policy as LogFanoutSink["policy"], url: url.join(",") });
  } else usage(`unknown option ${flag}`);
}
if (sinks.length === 0) usage("give at least one --sink");

const handler = logFanout({ sinks });
Deno.serve({ hostname, port }, (request) => handler.fetch(request));
