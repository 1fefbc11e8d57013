// The ringbuf's own QMP commands, ringbuf-write and ringbuf-read, beside the backend as QEMU
// keeps them in chardev/char-ringbuf.c. The monitor (qmp/monitor.ts) puts them in its table.

import type { ChardevRegistry, RingbufFormat } from "../registry.ts";
import { checkArguments, isDataFormat, isInteger, isString, type QmpCommand } from "../qmp/args.ts";

/** ringbuf-write and ringbuf-read on the ringbuf chardevs of `reg`, with QEMU's arguments. */
export function ringbufCommands(reg: ChardevRegistry): [string, QmpCommand][] {
  return [
    [
      "ringbuf-write",
      (args) => {
        checkArguments(args, { device: { check: isString }, data: { check: isString }, format: { check: isDataFormat, optional: true } });
        reg.ringbufWrite(args.device as string, args.data as string, args.format as RingbufFormat | undefined);
      },
    ],
    [
      "ringbuf-read",
      (args) => {
        checkArguments(args, { device: { check: isString }, size: { check: isInteger }, format: { check: isDataFormat, optional: true } });
        return reg.ringbufRead(args.device as string, args.size as number, args.format as RingbufFormat | undefined);
      },
    ],
  ];
}
