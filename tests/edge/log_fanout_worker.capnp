# workerd config for tests/log_fanout.test.ts: the log fan-out Worker (log_fanout_worker.js).
# The test picks the port: workerd serve log_fanout_worker.capnp --socket-addr http=127.0.0.1:PORT
# Its fetches go out through "loopback", a network that reaches this machine's addresses only
# (workerd's default outbound reaches public addresses only, and the receivers are on 127.0.0.1).

using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .logFanoutWorker),
    (name = "loopback", network = (allow = ["local"])),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:8787", http = (), service = "main") ],
);

const logFanoutWorker :Workerd.Worker = (
  modules = [
    (name = "tests/edge/log_fanout_worker.js", esModule = embed "log_fanout_worker.js"),
    (name = "tests/edge/log_fanout_app.js", esModule = embed "log_fanout_app.js"),
    (name = "dist/edge.js", esModule = embed "../../dist/edge.js"),
    (name = "dist/core.wasm", wasm = embed "../../dist/core.wasm"),
  ],
  compatibilityDate = "2025-06-01",
  globalOutbound = "loopback",
);
