// The QMP commands on chardevs and objects, as QEMU's chardev/char.c and qom/object_interfaces.c
// answer them: chardev-add, chardev-remove, chardev-change, query-chardev,
// query-chardev-backends, chardev-reopen-logs (ours: reopen logs by path, as SIGHUP does), chardev-send-break, object-add and object-del (TLS credentials). The
// ringbuf and hub commands live beside their backends (chardev/ringbuf_qmp.ts,
// chardev/hub_qmp.ts); the monitor (./monitor.ts) puts them all in one table.

import type { Chardev } from "../chardev/_chardev.ts";
import { ChardevError } from "../errors.ts";
import { ChrEvent } from "../events.ts";
import type { ChardevAddArgs, ChardevRegistry } from "../registry.ts";
import type { ObjectAddArgs } from "../tls_creds.ts";
import { checkArguments, genericError, isOneOf, isString, isStruct, type QmpArguments, type QmpCommand } from "./args.ts";

/**
 * Errors of QAPI's argument checks, and a taken id, reach the client as they are; QEMU prefixes
 * every other `chardev-add` failure (those of opening the backend) with the chardev's id.
 */
const QAPI_CHECK_TEXT = /^(Parameter '[^']*' (is missing|is unexpected|does not accept value )|Invalid parameter type for ')/;

function addFailure(id: unknown, error: unknown): unknown {
  if (!(error instanceof ChardevError) || error.code === "DUPLICATE_ID" || QAPI_CHECK_TEXT.test(error.message)) return error;
  return genericError(`Failed to add chardev '${String(id)}': ${error.message}`);
}

/** `chardev-add`'s return: the slave path of a pty (QEMU's filename is `pty:PATH`), else `{}`. */
function chardevReturn(chardev: Chardev): { pty?: string } {
  return chardev.kind === "pty" && chardev.filename.startsWith("pty:") ? { pty: chardev.filename.slice(4) } : {};
}

/** chardev-add, chardev-remove, chardev-change, query-chardev and query-chardev-backends. */
export function chardevCommands(reg: ChardevRegistry): [string, QmpCommand][] {
  return [
    [
      "chardev-add",
      async (args) => {
        // The registry checks `id` and `backend` with QAPI's texts.
        try {
          return chardevReturn(await reg.add(args as unknown as ChardevAddArgs));
        } catch (error) {
          throw addFailure(args.id, error);
        }
      },
    ],
    [
      "chardev-remove",
      async (args) => {
        checkArguments(args, { id: { check: isString } });
        await reg.remove(args.id as string);
      },
    ],
    ["chardev-change", (args) => chardevChange(reg, args)],
    [
      "query-chardev",
      (args) => {
        checkArguments(args, {});
        return reg.query().map(({ label, filename, frontendOpen }) => ({ label, filename, "frontend-open": frontendOpen }));
      },
    ],
    [
      "query-chardev-backends",
      (args) => {
        checkArguments(args, {});
        return reg.registeredKinds().map((name) => ({ name }));
      },
    ],
    [
      // Ours (QEMU has none): what SIGHUP does, for logrotate's postrotate or a script.
      "chardev-reopen-logs",
      (args) => {
        checkArguments(args, { id: { check: isString, optional: true } });
        const failures = reg.reopenLogs(args.id as string | undefined);
        if (failures.length > 0) throw genericError(failures.join("; "));
        return {};
      },
    ],
  ];
}

/** chardev-send-break: a BREAK event to the chardev's frontend. */
export function chardevEventCommands(reg: ChardevRegistry): [string, QmpCommand][] {
  return [
    [
      "chardev-send-break",
      (args) => {
        checkArguments(args, { id: { check: isString } });
        reg.get(args.id as string).emitEvent(ChrEvent.BREAK);
      },
    ],
  ];
}

/** object-add and object-del (TLS credentials, `tls-creds-x509`). */
export function objectCommands(reg: ChardevRegistry): [string, QmpCommand][] {
  return [
    [
      "object-add",
      async (args) => {
        // The registry checks `qom-type`, `id` and the type's properties with QAPI's texts.
        await reg.addObject(args as ObjectAddArgs);
      },
    ],
    [
      "object-del",
      (args) => {
        checkArguments(args, { id: { check: isString } });
        reg.removeObject(args.id as string);
      },
    ],
  ];
}

/**
 * QEMU's qmp_chardev_change, for what our frontends allow: a chardev nobody holds is replaced
 * (the old one goes, the new one is added in its place; as in QEMU the old one is gone even if
 * adding the new one fails). A held chardev is refused with QEMU's text (our frontends cannot
 * move to a new chardev); a hub or mux is refused as in QEMU.
 */
async function chardevChange(reg: ChardevRegistry, args: QmpArguments): Promise<unknown> {
  checkArguments(args, { id: { check: isString }, backend: { check: isStruct } });
  const id = args.id as string;
  const backend = args.backend as QmpArguments;
  // QAPI checks the new backend's shape before the command runs, so a typo never costs the
  // old chardev. The members of its `data` are checked by `add` (in QEMU, by the open that
  // follows the removal).
  checkArguments(backend, {
    type: { check: isOneOf(...reg.registeredKinds()) },
    data: { check: isStruct, optional: true },
  }, "backend.");
  const chardev = reg.find(id);
  if (!chardev) throw genericError(`Chardev '${id}' does not exist`);
  if (chardev.kind === "hub" || chardev.kind === "mux") throw genericError("For mux or hub device hotswap is not supported yet");
  if (chardev.isBusy()) throw genericError("Chardev user does not support chardev hotswap");
  await reg.remove(id);
  try {
    return chardevReturn(await reg.add({ id, backend } as unknown as ChardevAddArgs));
  } catch (error) {
    throw addFailure(id, error);
  }
}
