# workerd config for the log fan-out Worker: `npx workerd serve examples/edge-log-fanout/worker.capnp`
# (from the repository root, after `npm install`, which builds dist/). It listens on
# 127.0.0.1:8787 and sends to the two receivers of the README (ports 9001 and 9002 on this
# machine). Change SINKS to point elsewhere.

using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .logFanout),
    # Outbound fetches: public addresses and this machine (workerd's default is public only).
    (name = "outbound", network = (allow = ["public", "local"])),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:8787", http = (), service = "main") ],
);

const logFanout :Workerd.Worker = (
  modules = [
    (name = "examples/edge-log-fanout/worker.js", esModule = embed "worker.js"),
    (name = "dist/edge.js", esModule = embed "../../dist/edge.js"),
    (name = "dist/core.wasm", wasm = embed "../../dist/core.wasm"),
  ],
  bindings = [
    (name = "SINKS", text = "[{\"name\":\"archive\",\"url\":\"http://127.0.0.1:9001/\",\"policy\":\"block\"},{\"name\":\"search\",\"url\":\"http://127.0.0.1:9002/\",\"policy\":\"drop\",\"batchMs\":500}]"),
    (name = "RING", text = "1048576"),
  ],
  compatibilityDate = "2025-06-01",
  globalOutbound = "outbound",
);
