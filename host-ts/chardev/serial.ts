// `serial` (alias `tty`): a host terminal device such as /dev/ttyUSB0 or /dev/ttyS0 (QEMU's
// char-serial). Opened non-blocking and never as our controlling terminal, put in raw mode at
// `speed`, then read and written like any terminal: a full output queue answers EAGAIN and
// a watch waits for room. OPENED when opened; CLOSED if the device goes away (unplugged, or
// the far end of a pty closed).

import { ChardevError } from "../errors.ts";
import { strerror } from "../errno.ts";
import { ChrEvent } from "../events.ts";
import type { OptionSchema } from "../option_schema.ts";
import type { PtyPrimitives } from "../runtime/types.ts";
import { type ChardevContext, defineDriver } from "./_chardev.ts";
import { type TerminalFd, TerminalFdChardev } from "./_terminal_fd.ts";
import { quoteInput } from "../limits.ts";

/** `serial`'s options (QEMU's ChardevHostdev, plus `speed`). */
export const serialOptions: OptionSchema = [
  { key: "path", member: "device", type: "string", required: true, missing: "chardev: serial/tty: no device path given", help: "the tty, e.g. /dev/ttyUSB0 (set raw, non-blocking)" },
  { key: "speed", type: "integer", unit: "bit/s", default: "left as it is", help: "line speed in bit/s, one termios can set (50 ... 4000000)" },
];

/** The line speeds termios can express (POSIX's, then Linux's extensions), in bits per second. */
export const SERIAL_SPEEDS: readonly number[] = [
  50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 500000,
  576000, 921600, 1000000, 1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000,
];

/**
 * A host tty.
 *
 * @example A USB serial console shared by a socket and a log
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create();
 * await reg.add("serial,id=ttyS0,path=/dev/ttyUSB0,speed=115200");
 * await reg.add("socket,id=s0,path=/tmp/console.sock,server=on,wait=off");
 * await reg.add("file,id=log,path=/tmp/console.log");
 * await reg.add("hub,id=hub0,chardevs.0=s0,chardevs.1=log");
 * // chardev-hub -chardev ... -frontend ttyS0,chardev=hub0 does the same from a shell
 * ```
 */
export class SerialChardev extends TerminalFdChardev {
  readonly kind = "serial";
  readonly #pty: PtyPrimitives;
  readonly #fd: number;
  protected readonly io: TerminalFd;
  #closed = false;

  private constructor(
    id: string,
    context: ChardevContext,
    /** The device's path. */
    readonly path: string,
    /** The line speed set when opening, or null when the device's own was kept. */
    readonly speed: number | null,
    fd: number,
  ) {
    super(id, context);
    this.#pty = context.runtime.pty!;
    this.#fd = fd;
    this.io = this.openTerminal(this.#pty, fd, {
      input: (data) => this.deliverInput(data),
      ended: () => this.#release(),
    });
    this.emitEvent(ChrEvent.OPENED);
  }

  /**
   * Opens `path` and sets it up (raw, no echo, `speed`). Throws OPEN_FAILED with QEMU's
   * "Could not open" text, or stty's complaint for a file that is no terminal or a speed the
   * device refuses; nothing stays open then.
   */
  static async open(id: string, context: ChardevContext, path: string, speed: number | null): Promise<SerialChardev> {
    const { pty, process } = context.runtime;
    if (!pty || !process) throw new ChardevError("UNSUPPORTED", `chardev: serial: this runtime (${context.runtime.name}) has no terminals`);
    let fd: number;
    try {
      fd = context.runtime.openFile(path, "terminal");
    } catch (error) {
      if (error instanceof ChardevError) throw error;
      throw new ChardevError("OPEN_FAILED", `Could not open '${quoteInput(path)}': ${strerror(error)}`);
    }
    // Raw mode is what a serial console wants: every byte passes as it is, in both directions.
    // No runtime exposes termios; stty sets it on the device, which our fd shares.
    const settings = ["-F", path, "raw", "-echo", ...(speed === null ? [] : [String(speed)])];
    const result = await process.run("stty", settings);
    if (result.exit.code !== 0) {
      context.runtime.closeFd(fd);
      // stty says "stty: PATH: REASON" (some runtimes pass its full path as its name): keep REASON.
      const said = result.output.trim().split("\n")[0].replace(/^\S*stty: /, "").replace(`${path}: `, "");
      const why = said || `stty ${describeFailure(result.exit)}`;
      throw new ChardevError("OPEN_FAILED", `serial: cannot set up '${quoteInput(path)}': ${why}`);
    }
    return new SerialChardev(id, context, path, speed, fd);
  }

  /** `serial:` and the device path, as `query-chardev` shows it. */
  override get filename(): string {
    return `serial:${this.path}`;
  }

  /** The device went away: report it once and let go of the fd. */
  #release(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.io.stop();
    this.context.runtime.closeFd(this.#fd);
    this.emitEvent(ChrEvent.CLOSED);
  }

  override async destroy(): Promise<void> {
    this.#release();
    await super.destroy();
  }
}

function describeFailure(exit: { code: number | null; signal: string | null }): string {
  return exit.signal ? `killed by ${exit.signal}` : `failed with status ${exit.code}`;
}

/** `-chardev serial,id=ID,path=DEVICE[,speed=BPS]`; QMP `{ type: "serial", data: { device, speed? } }` (QEMU's ChardevHostdev, plus `speed`). */
export const serialDriver = defineDriver({
  type: "serial",
  aliases: ["tty"],
  options: serialOptions,
  open(id, data, context) {
    const path = data.device as string | undefined;
    if (path === undefined) throw new ChardevError("MISSING_PARAMETER", "Parameter 'device' is missing");
    const speed = data.speed as number | undefined;
    if (speed !== undefined && !SERIAL_SPEEDS.includes(speed)) {
      throw new ChardevError("INVALID_VALUE", `serial: speed ${speed} is not one a terminal can be set to (${SERIAL_SPEEDS.join(", ")})`);
    }
    return SerialChardev.open(id, context, path, speed ?? null);
  },
});
