// QEMU's `-qmp ADDRESS`: the socket chardev a QMP address stands for (`unix:PATH[,opts]`,
// `tcp:[HOST]:PORT[,opts]`, QEMU's old spellings `server` and `nowait`), and startQmp, which
// adds that chardev and attaches a monitor (./monitor.ts) to it.

import { ChardevError } from "../errors.ts";
import { quoteInput } from "../limits.ts";
import type { ChardevRegistry } from "../registry.ts";
import { monitorOwnsChardev, QmpMonitor, type QmpMonitorOptions } from "./monitor.ts";

/** Splits QEMU option text at single commas (`,,` is a literal comma), keeping the escapes. */
function splitOptions(text: string): { first: string; rest: string[] } {
  const parts: string[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== ",") continue;
    if (text[i + 1] === ",") {
      i++;
      continue;
    }
    parts.push(text.slice(start, i));
    start = i + 1;
  }
  parts.push(text.slice(start));
  return { first: parts[0].replace(/,,/g, ","), rest: parts.slice(1) };
}

const escapeOption = (value: string) => value.replace(/,/g, ",,");

/**
 * The `-chardev` string QEMU makes of a `-qmp` address: `unix:PATH[,opts]` or
 * `tcp:[HOST]:PORT[,opts]` (IPv6 hosts in brackets). Options pass through to the socket
 * chardev (`server=on`, `wait=off`, ...); the old spellings `server` and `nowait` are accepted.
 *
 * @example The chardev behind `-qmp tcp:localhost:4444,server=on,wait=off`
 * ```ts
 * qmpChardevSpec("tcp:localhost:4444,server=on,wait=off", "compat_monitor0");
 * // "socket,id=compat_monitor0,host=localhost,port=4444,server=on,wait=off"
 * ```
 */
export function qmpChardevSpec(address: string, id: string): string {
  const { first, rest } = splitOptions(address);
  const options = rest.map((option) => (option === "nowait" ? "wait=off" : option === "noserver" ? "server=off" : option));
  let addressKeys: string;
  if (first.startsWith("unix:") && first.length > 5) {
    addressKeys = `path=${escapeOption(first.slice(5))}`;
  } else if (first.startsWith("tcp:")) {
    const hostPort = first.slice(4);
    const match = /^\[([^\]]*)\]:(.*)$/.exec(hostPort) ?? /^([^:]*):(.*)$/.exec(hostPort);
    if (!match || match[2] === "") throw new ChardevError("MISSING_PARAMETER", `qmp: '${quoteInput(address)}' has no port (tcp:HOST:PORT)`);
    addressKeys = `host=${escapeOption(match[1])},port=${escapeOption(match[2])}`;
  } else {
    throw new ChardevError("INVALID_VALUE", `qmp: '${quoteInput(address)}' is not a QMP address we serve (unix:PATH or tcp:HOST:PORT)`);
  }
  return [`socket,id=${id}`, addressKeys, ...options].join(",");
}

/**
 * QEMU's `-qmp ADDRESS`: adds a socket chardev (id `compat_monitorN`, as QEMU names it) and
 * attaches a QMP monitor to it. `monitor.close()` removes the chardev again. With `wait=on`
 * (QEMU's default for a server) this resolves only once the first client has connected.
 *
 * @example QEMU's `-qmp unix:/tmp/qmp.sock,server=on,wait=off`
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create();
 * const monitor = await startQmp(reg, "unix:/tmp/qmp.sock,server=on,wait=off");
 * // $ socat - UNIX-CONNECT:/tmp/qmp.sock
 * // {"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 10}, "package": "chardev-hub"}, "capabilities": []}}
 * await monitor.close();
 * ```
 */
export async function startQmp(reg: ChardevRegistry, address: string, options: QmpMonitorOptions = {}): Promise<QmpMonitor> {
  let n = 0;
  while (reg.find(`compat_monitor${n}`)) n++;
  const id = `compat_monitor${n}`;
  await reg.add(qmpChardevSpec(address, id));
  let monitor: QmpMonitor;
  try {
    monitor = QmpMonitor.attach(reg, id, options);
  } catch (error) {
    await reg.remove(id);
    throw error;
  }
  monitorOwnsChardev(monitor);
  return monitor;
}
