// systemd socket activation (sd_listen_fds(3)): the sockets a service manager opened for us,
// by name. Shared code: it reads the environment through the runtime, never `process`.

import type { ProcessPrimitives } from "./runtime/types.ts";

/** The first fd systemd passes (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;
/** More passed fds than this is taken as a malformed environment, not a real request. */
const MAX_LISTEN_FDS = 1024;

/**
 * The sockets passed to this process, by name (`LISTEN_FDNAMES`, or "unknown" when absent, as
 * systemd names them). Empty unless `LISTEN_PID` is our pid and `LISTEN_FDS` a count: the
 * variables may be left over for another process (a parent that did not unset them).
 *
 * @example Started as `systemd-socket-activate -l 127.0.0.1:4444 --fdname=console ...`
 * ```ts
 * const env = new Map([["LISTEN_PID", "42"], ["LISTEN_FDS", "1"], ["LISTEN_FDNAMES", "console"]]);
 * activatedSockets((name) => env.get(name), 42); // Map { "console" => [3] }
 * ```
 */
export function activatedSockets(env: (name: string) => string | undefined, pid: number | undefined): Map<string, number[]> {
  const sockets = new Map<string, number[]>();
  const listenPid = env("LISTEN_PID");
  const count = env("LISTEN_FDS");
  if (pid === undefined || listenPid === undefined || count === undefined) return sockets;
  if (!/^\d+$/.test(listenPid) || Number(listenPid) !== pid) return sockets;
  if (!/^\d+$/.test(count) || Number(count) > MAX_LISTEN_FDS) return sockets;
  const names = (env("LISTEN_FDNAMES") ?? "").split(":");
  for (let i = 0; i < Number(count); i++) {
    const name = names[i] || "unknown";
    sockets.set(name, [...(sockets.get(name) ?? []), LISTEN_FDS_START + i]);
  }
  return sockets;
}

/**
 * A lookup that hands each passed socket out once (a chardev removed and added again must not
 * adopt an fd number that was closed and reused since), for ChardevContext.activatedSocket.
 */
export function activatedSocketLookup(host: ProcessPrimitives | undefined): (id: string) => number | undefined {
  // One set per process, read once, shared by every registry: an fd is handed out once in all.
  if (passed === null && host) passed = activatedSockets((name) => host.env(name), host.pid);
  return (id) => passed?.get(id)?.shift();
}

let passed: Map<string, number[]> | null = null;
