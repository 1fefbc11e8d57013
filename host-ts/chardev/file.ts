// `file`: output to a file (truncated, or appended with `append=on`), optional input read from
// `input-path`. Writes are blocking, as QEMU's. A file it creates is 0600 unless `mode=` says
// otherwise (QEMU creates 0666 less the umask: a console log is nobody else's business).

import { ChardevError } from "../errors.ts";
import type { OptionSchema } from "../option_schema.ts";
import { defineDriver } from "./_chardev.ts";
import { openOrThrow } from "./_fd.ts";
import { FdChardev } from "./_fd_chardev.ts";

/** A `file` chardev: output to a file (blocking writes), input from `input-path` if given. */
export class FileChardev extends FdChardev {
  readonly kind = "file";

  /**
   * Back after a hard error took it out of a hub (a full disk): the line
   * `[-- N bytes lost: ENOSPC --]` first, so a reader of the file knows where the hole is.
   */
  override resumeAfterLoss(lost: number, errno: string): boolean {
    return this.writeLossNotes(lost, errno);
  }
}

/** `file`'s options (QEMU's ChardevFile, plus `mode`). */
export const fileOptions: OptionSchema = [
  { key: "input-path", member: "in", type: "string", help: "read input from this file" },
  { key: "path", member: "out", type: "string", required: true, missing: "chardev: file: no filename given", help: "write output to this file (created 0600)" },
  { key: "append", type: "bool", default: "off", help: "append to the file instead of truncating it" },
  { key: "mode", type: "string", default: "0600", help: "permissions of a file it creates (octal, less the umask); an existing file keeps its own" },
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
    let outFd: number;
    try {
      outFd = openOrThrow(context.runtime, out, data.append ? "append" : "write", createMode);
    } catch (error) {
      if (inFd !== null) context.runtime.closeFd(inFd);
      throw error;
    }
    return new FileChardev(id, context, out, outFd, inFd);
  },
});
