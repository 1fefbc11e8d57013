// The log fan-out as a module Worker for workerd (config: log_fanout_worker.capnp). workerd
// refuses to compile WASM at run time, so the core comes in as a module the config embeds.

import coreModule from "../../dist/core.wasm";
import { logFanoutApp } from "./log_fanout_app.js";

export default logFanoutApp(coreModule);
