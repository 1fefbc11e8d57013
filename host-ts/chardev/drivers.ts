// Every built-in backend kind, one file each.

import type { ChardevDriver } from "./_chardev.ts";
import { asciicastDriver } from "./asciicast.ts";
import { fileDriver } from "./file.ts";
import { hubDriver } from "./hub.ts";
import { httpDriver } from "./http.ts";
import { muxDriver } from "./mux.ts";
import { natsDriver } from "./nats.ts";
import { nullDriver } from "./null.ts";
import { pipeDriver } from "./pipe.ts";
import { ptyDriver } from "./pty.ts";
import { ringbufDriver } from "./ringbuf.ts";
import { serialDriver } from "./serial.ts";
import { socketDriver } from "./socket.ts";
import { spawnDriver } from "./spawn.ts";
import { stdioDriver } from "./stdio.ts";
import { udpDriver } from "./udp.ts";
import { webDriver } from "./web.ts";
import { webStreamDriver } from "./webstream.ts";

export const BUILTIN_DRIVERS: readonly ChardevDriver[] = [hubDriver, ringbufDriver, nullDriver, fileDriver, pipeDriver, muxDriver, stdioDriver, ptyDriver, socketDriver, webDriver, webStreamDriver, spawnDriver, serialDriver, udpDriver, natsDriver, asciicastDriver, httpDriver];
