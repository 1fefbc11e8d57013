// `file`: output to a file (truncated, or appended with `append=on`; always written O_APPEND),
// optional input read from `input-path`. Writes are blocking, as QEMU's. A file it creates is
// 0600 unless `mode=` says otherwise (QEMU creates 0666 less the umask: a console log is nobody
// else's business). It is a log as operators need one (_log_file.ts: stamps, rotation, reopen)
// and, with `log-events=on`, tells what happened on the hubs it is a backend of.

import { ChardevError } from "../errors.ts";
import type { OptionSchema } from "../option_schema.ts";
import { type ChardevContext, defineDriver } from "./_chardev.ts";
import { openOrThrow } from "./_fd.ts";
import { FdChardev } from "./_fd_chardev.ts";
import { LogFile, logSettingsFrom } from "./_log_file.ts";
import { type HubChardev, type HubEvent, onEveryHubEvent } from "./hub.ts";

const encoder = new TextEncoder();

/** A `file` chardev: output to a file (blocking writes), input from `input-path` if given. */
export class FileChardev extends FdChardev {
  readonly kind = "file";
  readonly #file: LogFile;
  /** With `log-events=on`: stops listening to the hubs. */
  #stopEvents: (() => void) | null = null;
  /** Who each backend is, as its attach line named it (its detach line names it the same). */
  readonly #who = new Map<string, string>();
  /** Open and close lines waiting for the end of this turn, by backend. */
  readonly #deferred = new Map<string, { line: string }>();

  constructor(id: string, context: ChardevContext, path: string, file: LogFile, inFd: number | null, logEvents: boolean) {
    super(id, context, path, file, inFd);
    this.#file = file;
    if (logEvents) this.#stopEvents = onEveryHubEvent((hub, event) => this.#hubEvent(hub, event));
  }

  /** Its own file too: after `mv` the next bytes go to a new file at `path`. */
  override reopenLogs(): void {
    super.reopenLogs();
    this.#file.reopen();
  }

  /**
   * `log-events=on`: an event of a hub this file is a backend of becomes a line in it, written
   * when it happens (a `drop` or `evict` file that lags writes it ahead of output still owed to it).
   */
  #hubEvent(hub: HubChardev, event: HubEvent): void {
    if (!hub.children.includes(this)) return;
    const own = event.backend === this.id;
    if (own && event.type !== "gap") return; // its own attach, open, ...: it is writing, that says it
    let who = this.#who.get(event.backend);
    let mode = "rw";
    if (who === undefined || event.type === "attach") {
      // The hub's row says who a connection is (its peer's uid) and how it is attached.
      const row = hub.stats().find((stats) => stats.id === event.backend) as { uid?: unknown; mode?: unknown } | undefined;
      who = typeof row?.uid === "number" ? `uid ${row.uid}` : event.backend;
      if (row?.mode === "ro") mode = "ro";
      if (event.type === "attach") this.#who.set(event.backend, who);
    }
    if (event.type === "attach" || event.type === "detach") {
      // An open while attaching, a close while detaching: the attach or detach line says it.
      this.#deferred.delete(event.backend);
      if (event.type === "detach") this.#who.delete(event.backend);
    }
    const line = eventLine(event, own, who, mode);
    if (!line) return;
    if (event.type !== "open" && event.type !== "close") return this.#note(line);
    // A backend's own connect or disconnect (a single-client socket's peer): written after
    // this turn unless an attach or detach of it came in the same turn.
    const deferred = { line };
    this.#deferred.set(event.backend, deferred);
    queueMicrotask(() => {
      if (this.#deferred.get(event.backend) !== deferred) return;
      this.#deferred.delete(event.backend);
      if (this.#stopEvents) this.#note(line);
    });
  }

  /** Writes `[-- ... --]` on a line of its own (after a line the output left open). */
  #note(text: string): void {
    const line = `${this.#file.midLine ? "\r\n" : ""}[-- ${text} --]\r\n`;
    // A note that does not fit on a full disk is not retried: the output's own loss note counts what matters.
    this.#file.take(encoder.encode(line));
  }

  /**
   * Back after a hard error took it out of a hub (a full disk): the line
   * `[-- N bytes lost: ENOSPC --]` first, so a reader of the file knows where the hole is.
   */
  override resumeAfterLoss(lost: number, errno: string): boolean {
    return this.writeLossNotes(lost, errno);
  }

  override async destroy(): Promise<void> {
    this.#stopEvents?.();
    this.#stopEvents = null;
    await super.destroy();
  }
}

/**
 * The text of a hub event's line, or null for one not worth a line. A backend's open and close
 * are `connected` and `disconnected` (a single-client socket's peer came or went), but not when
 * they come with its attach or detach (the caller drops those).
 */
function eventLine(event: HubEvent, own: boolean, who: string, mode: string): string | null {
  switch (event.type) {
    case "attach":
      return `${who} attached ${mode}`;
    case "detach":
      return `${who} detached`;
    case "open":
      return `${who} connected`;
    case "close":
      return `${who} disconnected`;
    case "gap":
      // Its own gap is a hole in this file; another's is news about that backend.
      return own ? `gap: ${event.bytes} bytes dropped` : `${who}: gap: ${event.bytes} bytes dropped`;
    case "evict": {
      // The hub says `stalled for more than 5000 ms`; the detach line just before says who.
      const stalled = /(\d+) ms/.exec(event.reason);
      return stalled ? `evicted: stalled ${stalled[1]} ms` : `evicted: ${event.reason}`;
    }
    case "error":
      return `${who} failed: ${event.errno}`;
    case "break":
      return `${who} sent a break`;
    default:
      return null;
  }
}

/** `file`'s options (QEMU's ChardevFile, plus `mode`). */
export const fileOptions: OptionSchema = [
  { key: "input-path", member: "in", type: "string", help: "read input from this file" },
  { key: "path", member: "out", type: "string", required: true, missing: "chardev: file: no filename given", help: "write output to this file (created 0600)" },
  { key: "append", type: "bool", default: "off", help: "append to the file instead of truncating it" },
  { key: "mode", type: "string", default: "0600", help: "permissions of a file it creates (octal, less the umask); an existing file keeps its own" },
  { key: "log-events", type: "bool", default: "off", help: "as a hub backend, write what happens on the hub as lines: `[-- uid 1001 attached ro --]`, `[-- c1 detached --]`, `[-- evicted: stalled 5000 ms --]`, `[-- c1: gap: 512 bytes dropped --]`, `[-- c1 failed: EPIPE --]`" },
];

/**
 * `mode=` as octal permission bits (`0640`, `600`): owner, group and others only, since a
 * setuid or sticky bit on a log makes no sense. Throws INVALID_VALUE for anything else.
 */
function parseFileMode(text: string): number {
  if (!/^0?[0-7]{3}$/.test(text)) {
    throw new ChardevError("INVALID_VALUE", "Parameter 'mode' expects octal permissions such as 0600 or 0640");
  }
  return parseInt(text, 8);
}

/**
 * `-chardev file,id=ID,path=FILE[,append=on][,input-path=FILE][,mode=0640]`, QMP
 * `{ type: "file", data: { out, in?, append?, mode? } }` (`mode` is ours, an octal string as
 * on the command line). `mode` is open(2)'s: the umask still applies, and a file that exists
 * already keeps its permissions.
 */
export const fileDriver = defineDriver({
  type: "file",
  options: fileOptions,
  open(id, data, context) {
    // `out` is required by the schema (QMP's check, `-chardev`'s "no filename given").
    const out = data.out as string;
    // Checked before anything is opened, so a bad mode leaves nothing behind.
    const createMode = data.mode === undefined ? undefined : parseFileMode(data.mode as string);
    const inPath = data.in as string | undefined;
    const inFd = inPath ? openOrThrow(context.runtime, inPath, "read") : null;
    let file: LogFile;
    try {
      // `timestamp`, `logfilemax` and `rotate` (every chardev's log options) apply to the file too.
      file = new LogFile(context.runtime, { path: out, append: data.append === true, createMode, warn: (line) => context.warn(`chardev '${id}': ${line}`), ...logSettingsFrom(data) });
    } catch (error) {
      if (inFd !== null) context.runtime.closeFd(inFd);
      throw error;
    }
    return new FileChardev(id, context, out, file, inFd, data["log-events"] === true);
  },
});
