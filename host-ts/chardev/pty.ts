// `pty`: a pseudo-terminal pair with nothing spawned on it (QEMU's char-pty). We keep the
// master; whoever opens the slave (`/dev/pts/N`, or the `path=` symlink to it) is the peer.
// As in QEMU the peer is seen by polling the master, POLLHUP meaning nobody has the slave
// open: OPENED when one arrives, CLOSED when it leaves (patch 1/4 of the hub series), so a
// hub skips the pty while nobody is on it.

import { ChardevError } from "../errors.ts";
import { strerror } from "../errno.ts";
import { ChrEvent } from "../events.ts";
import type { PtyPair, PtyPrimitives } from "../runtime/types.ts";
import { type ChardevContext, defineDriver, runtimePart } from "./_chardev.ts";
import type { OptionSchema } from "../option_schema.ts";
import { type TerminalFd, TerminalFdChardev } from "./_terminal_fd.ts";

/**
 * A `pty` chardev: the master side of a pty pair.
 *
 * @example A pty behind a hub, for a terminal program to attach to
 * ```ts
 * import { ChardevRegistry } from "chardev-hub";
 * const reg = await ChardevRegistry.create();
 * const pty = (await reg.add("pty,id=pty0,path=/tmp/console")) as PtyChardev;
 * await reg.add("ringbuf,id=log0,size=65536");
 * await reg.add("hub,id=hub0,chardevs.0=pty0,chardevs.1=log0");
 * console.log(pty.slavePath, pty.filename); // "/dev/pts/3" "pty:/dev/pts/3"
 * // in a shell: socat - /tmp/console,raw,echo=0
 * ```
 */
export class PtyChardev extends TerminalFdChardev {
  readonly kind = "pty";
  /** The slave's device path (`/dev/pts/N`): what a peer opens. QMP's `chardev-add` returns it as `pty`. */
  readonly slavePath: string;
  /** The `path=` symlink to the slave, removed with the chardev. */
  readonly linkPath: string | undefined;
  readonly #pty: PtyPrimitives;
  readonly #fd: number;
  protected readonly io: TerminalFd;
  #destroyed = false;

  constructor(id: string, context: ChardevContext, pty: PtyPrimitives, pair: PtyPair, linkPath?: string) {
    super(id, context);
    this.#pty = pty;
    this.#fd = pair.fd;
    this.slavePath = pair.slavePath;
    this.linkPath = linkPath;
    // A hang-up is no peer, not the end: OPENED when one arrives, CLOSED when it leaves.
    this.io = this.openTerminal(pty, pair.fd, {
      input: (data) => this.deliverInput(data),
      peer: {
        arrived: () => this.emitEvent(ChrEvent.OPENED),
        left: () => this.emitEvent(ChrEvent.CLOSED),
      },
    });
  }

  /** QEMU's `query-chardev` filename: `pty:/dev/pts/N`. */
  override get filename(): string {
    return `pty:${this.slavePath}`;
  }

  /** Whether a peer has the slave open, as of the last poll. */
  get connected(): boolean {
    return this.io.peerPresent;
  }

  /**
   * With a peer: non-blocking writes until all is taken or the pty is full (bytes taken, or
   * -EAGAIN when none were). Without one, as in QEMU, the bytes are reported written and
   * dropped, unless a peer arrived since the last poll: QEMU checks first, and so do we.
   */
  protected override writeOut(data: Uint8Array): number {
    if (!this.io.peerPresent) {
      const state = this.#pty.poll(this.#fd);
      if (!state.hangup && state.writable) this.io.write(data);
      return data.length;
    }
    return this.io.write(data);
  }

  /** Stops polling and closes the master; a connected peer is reported gone (QEMU's finalize). */
  override async destroy(): Promise<void> {
    if (!this.#destroyed) {
      this.#destroyed = true;
      const hadPeer = this.io.peerPresent;
      this.io.stop();
      if (hadPeer) this.emitEvent(ChrEvent.CLOSED);
      this.#pty.close(this.#fd);
      // Only a link that still leads to our slave: another chardev-hub may own the path now.
      const link = this.linkPath === undefined ? undefined : this.#pty.inspectLink(this.linkPath);
      if (link?.kind === "link" && link.target === this.slavePath) this.#pty.unlink(this.linkPath!);
    }
    await super.destroy();
  }
}

/**
 * Makes `linkPath` a symlink to `slavePath`, replacing a stale link. QEMU refuses any link that
 * exists (EEXIST), so a run killed with SIGKILL would block the next one; but a link still in
 * use must not be taken from its chardev-hub. A /dev/pts/N exists only while some master holds
 * it, and a freed number is handed out again, so the rule is: a link is live when it leads to
 * a terminal that is neither the one we were just given nor newer than the link; a live link
 * is refused with "Address already in use", as a live socket path is. A dangling link, or one
 * to a terminal made after it, is stale and replaced. Anything else there (a file, a
 * directory, a link to one) is left alone and symlink(2) reports "File exists", as in QEMU.
 */
function linkToSlave(pty: PtyPrimitives, slavePath: string, linkPath: string): void {
  const existing = pty.inspectLink(linkPath);
  if (existing.kind === "link" && existing.leadsTo === "terminal") {
    const stale = existing.target === slavePath || existing.targetNewerThanLink;
    if (!stale) {
      throw new ChardevError(
        "OPEN_FAILED",
        `Failed to create PTY symlink: Address already in use ('${linkPath}' leads to ${existing.target}, a terminal in use)`,
      );
    }
  }
  if (existing.kind === "link" && existing.leadsTo !== "other") pty.unlink(linkPath);
  try {
    pty.symlink(slavePath, linkPath);
  } catch (error) {
    throw new ChardevError("OPEN_FAILED", `Failed to create PTY symlink: ${strerror(error)}`);
  }
}

/** `pty`'s options (QEMU's ChardevPty). */
export const ptyOptions: OptionSchema = [
  { key: "path", type: "string", help: "a symlink to the new pty's slave; a link to a live terminal is refused, a dangling one replaced" },
];

/**
 * `-chardev pty,id=ID[,path=LINK]`, QMP `{ type: "pty", data: { path? } }`.
 * With `path`, LINK becomes a symlink to the slave; a stale link there is replaced, a live
 * one or any other file refused (see `linkToSlave`).
 */
export const ptyDriver = defineDriver({
  type: "pty",
  options: ptyOptions,
  open(id, data, context) {
    const pty = runtimePart(context, "pty", (runtime) => `chardev: pty: this runtime (${runtime}) has no ptys`);
    let pair: PtyPair;
    try {
      pair = pty.openpt();
    } catch (error) {
      if (error instanceof ChardevError) throw error;
      throw new ChardevError("OPEN_FAILED", `Failed to create PTY: ${strerror(error)}`);
    }
    const linkPath = data.path as string | undefined;
    if (linkPath !== undefined) {
      try {
        linkToSlave(pty, pair.slavePath, linkPath);
      } catch (error) {
        pty.close(pair.fd);
        throw error;
      }
    }
    return new PtyChardev(id, context, pty, pair, linkPath);
  },
});
