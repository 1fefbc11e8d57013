// Run by tests/edge.test.ts as `deno run tests/edge/deno_noperm.ts` with no permission flags:
// the edge bundle must load, compile its embedded WASM and fan a body out through a hub to 3
// webstream sinks without asking for anything. Prints one line of JSON for the test to check.

import { ChardevError, ChardevRegistry } from "../../dist/edge.js";
import { EDGE_BODY, fanOut, streamOf, testChunks } from "./fanout.js";

const deno = (globalThis as unknown as {
  Deno: { permissions: { querySync(descriptor: { name: string }): { state: string } } };
}).Deno;

/** What the edge registry says to a file backend: it has no files. */
async function fileBackendError(): Promise<string> {
  const reg = await ChardevRegistry.create();
  try {
    await reg.add("file,id=f0,path=/tmp/chardev-hub-edge-must-not-exist");
    return "opened";
  } catch (error) {
    return error instanceof ChardevError ? error.code : String(error);
  } finally {
    await reg.close();
  }
}

const report = await fanOut(streamOf(testChunks(EDGE_BODY.seed, EDGE_BODY.sizes)));
const permissions = Object.fromEntries(
  ["read", "write", "net", "env", "run", "ffi", "sys"].map((name) => [name, deno.permissions.querySync({ name }).state]),
);
console.log(JSON.stringify({ runtime: "deno", permissions, fileBackend: await fileBackendError(), ...report }));
