// Every built-in backend kind, one file each.

import type { ChardevDriver } from "./_chardev.ts";
import { fileDriver } from "./file.ts";
import { hubDriver } from "./hub.ts";
import { muxDriver } from "./mux.ts";
import { nullDriver } from "./null.ts";
import { pipeDriver } from "./pipe.ts";
import { ringbufDriver } from "./ringbuf.ts";
import { stdioDriver } from "./stdio.ts";

export const BUILTIN_DRIVERS: readonly ChardevDriver[] = [hubDriver, ringbufDriver, nullDriver, fileDriver, pipeDriver, muxDriver, stdioDriver];
