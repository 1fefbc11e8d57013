// The hub's own QMP commands, beside the backend: hub-attach and hub-detach (QEMU has no
// hot-plug for hubs, so these are ours) and query-hub, the hub's per-backend counters. The
// monitor (qmp/monitor.ts) puts them in its table.

import type { ChardevRegistry } from "../registry.ts";
import { checkArguments, isInteger, isOneOf, isString, type MemberCheck, type QmpCommand } from "../qmp/args.ts";
import { isScreenReplay } from "./_hub_screen_contract.ts";
import { checkHubBackendOptions, type HubBackendOptions, type HubEvent } from "./hub.ts";

/**
 * Our QMP events for what a hub reports (QEMU has none of these): the event's name and data.
 * A monitor sends them only to a client that asked (`hub-events`), so a QEMU client sees
 * QEMU's wire protocol unchanged.
 */
export function hubEventToQmp(hubId: string, event: HubEvent): [string, Record<string, unknown>] {
  const data: Record<string, unknown> = { hub: hubId, chardev: event.backend };
  switch (event.type) {
    case "attach":
      return ["HUB_BACKEND_ATTACHED", data];
    case "detach":
      return ["HUB_BACKEND_DETACHED", data];
    case "open":
      return ["HUB_BACKEND_OPENED", data];
    case "close":
      return ["HUB_BACKEND_CLOSED", data];
    case "break":
      return ["HUB_BACKEND_BREAK", data];
    case "gap":
      return ["HUB_BACKEND_GAP", { ...data, bytes: event.bytes }];
    case "evict":
      return ["HUB_BACKEND_EVICTED", { ...data, reason: event.reason }];
    case "error":
      return ["HUB_BACKEND_ERROR", { ...data, errno: event.errno }];
  }
}

/** Every event name `hubEventToQmp` gives, and the command-line tool's device events. */
export const OWN_QMP_EVENTS = [
  "HUB_BACKEND_ATTACHED",
  "HUB_BACKEND_DETACHED",
  "HUB_BACKEND_OPENED",
  "HUB_BACKEND_CLOSED",
  "HUB_BACKEND_BREAK",
  "HUB_BACKEND_GAP",
  "HUB_BACKEND_EVICTED",
  "HUB_BACKEND_ERROR",
  "CHARDEV_DEVICE_CLOSED",
  "CHARDEV_DEVICE_BACK",
] as const;

/** `replay`: bytes (an integer) or the screen (`"screen"`, `"screen:LINES"`). */
const isReplay: MemberCheck = (value, name) => {
  if (!isScreenReplay(value)) isInteger(value, name);
};

/** hub-attach, hub-detach and query-hub on the hubs of `reg`. */
export function hubCommands(reg: ChardevRegistry): [string, QmpCommand][] {
  return [
    [
      "hub-attach",
      (args) => {
        checkArguments(args, {
          hub: { check: isString },
          chardev: { check: isString },
          policy: { check: isOneOf("block", "drop", "evict"), optional: true },
          "lag-limit": { check: isInteger, optional: true },
          "stall-ms": { check: isInteger, optional: true },
          replay: { check: isReplay, optional: true },
          mode: { check: isOneOf("rw", "ro"), optional: true },
        });
        // stall-ms and replay within limits.ts, checked before anything is attached.
        reg.hubAttach(args.hub as string, args.chardev as string, checkHubBackendOptions(args.chardev as string, {
          policy: args.policy as HubBackendOptions["policy"],
          lagLimit: args["lag-limit"] as number | undefined,
          stallMs: args["stall-ms"] as number | undefined,
          replay: args.replay as HubBackendOptions["replay"],
          mode: args.mode as HubBackendOptions["mode"],
        }));
      },
    ],
    [
      "hub-detach",
      (args) => {
        checkArguments(args, { hub: { check: isString }, chardev: { check: isString } });
        reg.hubDetach(args.hub as string, args.chardev as string);
      },
    ],
    [
      "query-hub",
      (args) => {
        checkArguments(args, { id: { check: isString } });
        const hub = reg.hub(args.id as string);
        return {
          ring: hub.options.ring,
          evictions: hub.evictions,
          // The size policy and the size it agreed on (the device's, the screen emulator's).
          size: { policy: hub.options.size, ...hub.terminalSize },
          backends: hub.stats().map((row) => ({
            id: row.id,
            open: row.open,
            policy: row.policy,
            mode: row.mode,
            "bytes-in": row.bytesIn,
            "bytes-out": row.bytesOut,
            "bytes-dropped": row.bytesDropped,
            "input-discarded": row.inputDiscarded,
            "events-discarded": row.eventsDiscarded,
            lag: row.lag,
            stalls: row.stalls,
            // A listener's row (`max-clients`) and each of its connections' (`since`: ISO-8601, UTC).
            ...(row.clients === undefined ? {} : { clients: row.clients }),
            ...(row.listener === undefined ? {} : { listener: row.listener }),
            ...(row.peer === undefined ? {} : { peer: row.peer }),
            ...(row.uid === undefined ? {} : { uid: row.uid }),
            ...(row.since === undefined ? {} : { since: new Date(row.since).toISOString() }),
          })),
        };
      },
    ],
  ];
}
