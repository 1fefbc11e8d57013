// The WASM core's ABI version (core-as/index.ts abiVersion, host-ts/core.ts CORE_ABI_VERSION):
// the embedded core.wasm matches the host, and a core.wasm with another version is refused at
// load with a clear error instead of failing later on a wrong offset or a missing export.

import { describe, expect, it } from "./_harness.ts";
import { CORE_ABI_VERSION, Core } from "../host-ts/core.ts";

/**
 * A hand-assembled WASM module whose only export is `abiVersion() -> 999`: what a stale or
 * foreign core.wasm looks like to the loader's check.
 */
const FOREIGN_CORE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, // type section: () -> i32
  0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
  0x07, 0x0e, 0x01, 0x0a, ...new TextEncoder().encode("abiVersion"), 0x00, 0x00, // export it
  0x0a, 0x07, 0x01, 0x05, 0x00, 0x41, 0xe7, 0x07, 0x0b, // code: i32.const 999; end
]);

/** The error `promise` rejects with, or undefined when it fulfils. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return error;
  }
}

describe("core ABI version", () => {
  it("the embedded core.wasm reports the ABI version the host expects", async () => {
    const core = await Core.load();
    expect(core.abiVersion).toBe(CORE_ABI_VERSION);
  });

  it("a core.wasm with another ABI version is refused at load, naming both versions", async () => {
    const module = await WebAssembly.compile(FOREIGN_CORE as BufferSource);
    const error = await rejection(Core.load(module));
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe(`chardev-hub: core.wasm ABI 999, host expects ${CORE_ABI_VERSION}`);
  });
});
