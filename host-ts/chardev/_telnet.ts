// Telnet for the `socket` chardev's `telnet=on` and `tn3270=on` servers (QEMU's char-socket):
// the negotiation a server sends on each connect, and the input parser that takes telnet
// commands out of what the client types. Pure: no I/O, so a property test can drive it.

/** Telnet's "interpret as command" byte (RFC 854). */
export const IAC = 0xff;
const SE = 0xf0; // end of subnegotiation
const BREAK = 0xf3;
const SB = 0xfa; // start of subnegotiation
const WILL = 0xfb;
const DONT = 0xfe;
const EOR = 0xef; // end of record (RFC 885), tn3270's record mark

/**
 * What a `telnet=on` server sends on each connect, as QEMU does (tcp_chr_telnet_init): IAC WILL
 * ECHO, IAC WILL SUPPRESS-GO-AHEAD, IAC WILL BINARY, IAC DO BINARY. The client then leaves echo
 * to the far end (the shell's pty echoes once), sends each key at once, and sends CR as typed
 * (binary), so a line is neither echoed twice nor ended twice.
 */
export const TELNET_NEGOTIATION: Uint8Array = Uint8Array.of(
  IAC, WILL, 0x01,
  IAC, WILL, 0x03,
  IAC, WILL, 0x00,
  IAC, 0xfd, 0x00,
);

/**
 * What a `tn3270=on` server sends on each connect (QEMU, after RFC 1576): IAC DO EOR, IAC WILL
 * EOR, IAC DO BINARY, IAC WILL BINARY, IAC DO TERMINAL-TYPE, IAC SB TERMINAL-TYPE SEND IAC SE.
 */
export const TN3270_NEGOTIATION: Uint8Array = Uint8Array.of(
  IAC, 0xfd, 0x19,
  IAC, WILL, 0x19,
  IAC, 0xfd, 0x00,
  IAC, WILL, 0x00,
  IAC, 0xfd, 0x18,
  IAC, SB, 0x18,
  0x01, IAC, SE,
);

/** A BREAK the client asked for (IAC BREAK, telnet's `send brk`), in its place among the data. */
export const TELNET_BREAK = "break" as const;

/** One piece of parsed input: bytes for the holder, or a BREAK between them. */
export type TelnetInput = Uint8Array | typeof TELNET_BREAK;

const enum State {
  Data,
  /** After IAC. */
  Command,
  /** After IAC WILL/WONT/DO/DONT: the option byte comes next. */
  Option,
  /** Inside IAC SB ... IAC SE. */
  Subnegotiation,
  /** After IAC inside a subnegotiation. */
  SubnegotiationCommand,
}

/**
 * Takes telnet commands out of a client's input, as a state machine that keeps its place when a
 * command is split across reads.
 *
 * - IAC IAC is one data byte 0xFF; IAC BREAK becomes a BREAK (QEMU sends CHR_EVENT_BREAK).
 * - IAC WILL/WONT/DO/DONT OPTION (3 bytes) and the other 2-byte commands are dropped, and so is
 *   a whole subnegotiation, IAC SB ... IAC SE. QEMU drops exactly 3 bytes for every command but
 *   IAC IAC and IAC BREAK, so after a 2-byte command (IAC NOP, IAC AYT) it eats a typed byte, and
 *   a subnegotiation's payload reaches the guest; we follow RFC 854 instead.
 * - With tn3270 (QEMU's is_tn3270), IAC EOR, IAC SB and IAC SE pass through as the two bytes,
 *   as the guest's 3270 stack needs its record marks, and the subnegotiation's payload with them.
 *
 * @example A line typed with a BREAK after it, the command split across two reads
 * ```ts
 * const parser = new TelnetInputParser(false);
 * parser.feed(Uint8Array.of(0x6c, 0x73, 0x0d, 0xff)); // [Uint8Array [0x6c, 0x73, 0x0d]]
 * parser.feed(Uint8Array.of(0xf3)); // ["break"]
 * ```
 */
export class TelnetInputParser {
  #state = State.Data;

  /** @param tn3270 keep the 3270 record marks in the data, as QEMU's tn3270 mode does */
  constructor(readonly tn3270: boolean) {}

  /** The data and BREAKs in `chunk`, in order; empty pieces are left out. `chunk` is not kept. */
  feed(chunk: Uint8Array): TelnetInput[] {
    const pieces: TelnetInput[] = [];
    // Data is copied into `out` (never longer than `chunk`); a BREAK cuts it.
    let out = new Uint8Array(chunk.length);
    let length = 0;
    const cut = () => {
      if (length === 0) return;
      pieces.push(out.subarray(0, length));
      out = out.subarray(length);
      length = 0;
    };
    for (const byte of chunk) {
      switch (this.#state) {
        case State.Data:
          if (byte === IAC) this.#state = State.Command;
          else out[length++] = byte;
          break;
        case State.Command:
          this.#state = State.Data;
          if (byte === IAC) {
            out[length++] = IAC;
          } else if (byte === BREAK) {
            cut();
            pieces.push(TELNET_BREAK);
          } else if (byte >= WILL && byte <= DONT) {
            this.#state = State.Option;
          } else if (this.tn3270 && (byte === EOR || byte === SB || byte === SE)) {
            // `out` has room: these two bytes stand for the two just read.
            out[length++] = IAC;
            out[length++] = byte;
          } else if (byte === SB) {
            this.#state = State.Subnegotiation;
          }
          // Any other command (NOP, IP, AYT, GA, a stray SE, ...) is two bytes and dropped
          // (QEMU too leaves IP and NOP for later, "TODO").
          break;
        case State.Option:
          this.#state = State.Data;
          break;
        case State.Subnegotiation:
          if (byte === IAC) this.#state = State.SubnegotiationCommand;
          break;
        case State.SubnegotiationCommand:
          // IAC SE ends it; IAC IAC is a 0xFF of its payload, dropped with the rest.
          this.#state = byte === SE ? State.Data : State.Subnegotiation;
          break;
      }
    }
    cut();
    return pieces;
  }
}
