# workerd config for tests/edge.test.ts: one module Worker (worker.js) importing the edge bundle.
# The test picks the port: workerd serve worker.capnp --socket-addr http=127.0.0.1:PORT
# Module names are paths from the repository root, so relative imports resolve as on disk.

using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "main", worker = .fanoutWorker) ],
  sockets = [ (name = "http", address = "127.0.0.1:8787", http = (), service = "main") ],
);

const fanoutWorker :Workerd.Worker = (
  modules = [
    (name = "tests/edge/worker.js", esModule = embed "worker.js"),
    (name = "tests/edge/fanout.js", esModule = embed "fanout.js"),
    (name = "dist/edge.js", esModule = embed "../../dist/edge.js"),
    # The same bytes dist/edge.js embeds (the test checks), given as a module: workerd compiles
    # it at startup since it refuses to compile WASM at run time.
    (name = "dist/core.wasm", wasm = embed "../../dist/core.wasm"),
  ],
  compatibilityDate = "2025-06-01",
);
