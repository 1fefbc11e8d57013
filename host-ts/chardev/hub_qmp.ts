// The hub's own QMP commands, beside the backend: hub-attach and hub-detach (QEMU has no
// hot-plug for hubs, so these are ours), query-hub, the hub's per-backend counters, and
// hub-history, its output by offset (keep-head and the ring). The monitor (qmp/monitor.ts) puts
// them in its table.

import type { ChardevRegistry } from "../registry.ts";
import { checkArguments, isDataFormat, isInteger, isOneOf, isString, type MemberCheck, QapiArgumentError, type QmpCommand } from "../qmp/args.ts";
import { isScreenReplay } from "./_hub_screen_contract.ts";
import { checkHubBackendOptions, type HubBackendOptions, type HubEvent, MAX_HISTORY_READ_BYTES } from "./hub.ts";

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

/** hub-history's `from`: a stream offset, 0 or more. */
const isOffset: MemberCheck = (value, name) => {
  isInteger(value, name);
  if ((value as number) < 0 || !Number.isSafeInteger(value)) throw new QapiArgumentError("value", `Parameter '${name}' expects a non-negative integer`);
};

/** hub-history's `size`: 1 to MAX_HISTORY_READ_BYTES, so that one answer stays bounded. */
const isHistorySize: MemberCheck = (value, name) => {
  isInteger(value, name);
  if ((value as number) < 1 || (value as number) > MAX_HISTORY_READ_BYTES) {
    throw new QapiArgumentError("value", `Parameter '${name}' expects a value between 1 and ${MAX_HISTORY_READ_BYTES}`);
  }
};

function encodeBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/** hub-attach, hub-detach, query-hub and hub-history on the hubs of `reg`. */
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
            // A sink's own counters (an `http` sink's bytes, requests, retries, gaps, status).
            ...(row.sink === undefined ? {} : { sink: row.sink }),
          })),
        };
      },
    ],
    [
      // The hub's output by absolute offset (0: its first byte). `format` as ringbuf-read's, but
      // base64 by default: history is read by byte offset, and utf8 would not keep every byte.
      "hub-history",
      (args) => {
        checkArguments(args, {
          id: { check: isString },
          from: { check: isOffset },
          size: { check: isHistorySize },
          format: { check: isDataFormat, optional: true },
        });
        const history = reg.hub(args.id as string).history(args.from as number, args.size as number);
        return {
          from: history.from,
          to: history.to,
          size: history.data.length,
          data: args.format === "utf8" ? new TextDecoder().decode(history.data) : encodeBase64(history.data),
          gone: history.gone,
          written: history.written,
        };
      },
    ],
  ];
}
