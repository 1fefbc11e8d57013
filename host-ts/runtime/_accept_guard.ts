// A full fd table at accept(2), for the runtimes whose node:net does not survive it. Node's
// libuv gives up a reserved fd, accepts and closes what waits, and takes the reserve back, so
// a Node listener neither spins nor stops. Deno 2.9's listener stops accepting for good after
// one EMFILE, and Bun 1.4's retries at once, spinning a core for as long as it lasts; neither
// emits an event. So while a listener is open we check that one more fd can be had; while none
// can, the listener is closed (no spinning), and once one can it listens again on the same
// address (a listener Deno gave up on comes back).

import * as fs from "node:fs";
import type { HostNet, NetListener } from "./types.ts";

/** How often an open listener checks that one more fd can be had (an open and a close). */
const FD_CHECK_MS = 250;
/** Longest wait between attempts to listen again when the address is taken meanwhile. */
const MAX_RELISTEN_BACKOFF_MS = 8_000;

/** Whether the process could open one more file now: false at EMFILE or ENFILE. */
function fdAvailable(): boolean {
  try {
    fs.closeSync(fs.openSync("/dev/null", "r"));
    return true;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return code !== "EMFILE" && code !== "ENFILE";
  }
}

/**
 * `inner` with listeners that step aside while the fd table is full and come back after.
 * While one is closed, clients get ECONNREFUSED (TCP) or ENOENT (UNIX: its file goes with it),
 * as they would from a process that is not there; connections already accepted stay. A TCP
 * port or UNIX path taken by someone else meanwhile is tried again with a growing delay.
 *
 * @example Deno's runtime
 * ```ts
 * import type { HostRuntime } from "./types.ts";
 * import { nodeRuntime } from "./node.ts";
 * const denoRuntime: HostRuntime = { ...nodeRuntime, net: guardAccept(nodeRuntime.net!) };
 * ```
 */
export function guardAccept(inner: HostNet): HostNet {
  return {
    ...inner,
    async listen(address, onConnection, options) {
      // An inherited socket (fd=, systemd) cannot be made again once closed: it cannot step aside.
      if (address.transport === "fd") return inner.listen(address, onConnection, options);
      let current: NetListener | null = await inner.listen(address, onConnection, options);
      // The same port again, when port 0 picked one.
      const bound = current.address;
      let closed = false;
      let relistening = false;
      let backoffMs = FD_CHECK_MS;
      let nextAttempt = 0;
      const check = () => {
        if (closed || relistening) return;
        const free = fdAvailable();
        if (!free && current) {
          current.close();
          current = null;
        } else if (free && !current && Date.now() >= nextAttempt) {
          relistening = true;
          inner.listen(bound, onConnection, options).then(
            (listener) => {
              relistening = false;
              backoffMs = FD_CHECK_MS;
              if (closed) listener.close();
              else current = listener;
            },
            () => {
              relistening = false;
              nextAttempt = Date.now() + backoffMs;
              backoffMs = Math.min(backoffMs * 2, MAX_RELISTEN_BACKOFF_MS);
            },
          );
        }
      };
      const timer = setInterval(check, FD_CHECK_MS);
      return {
        address: bound,
        close() {
          closed = true;
          clearInterval(timer);
          current?.close();
          current = null;
        },
      };
    },
  };
}
