// QEMU's legacy chardev specs (`-serial tcp::4444,server,nowait`) mapped as QEMU's
// qemu_chr_parse_compat maps them, and QEMU's deprecated boolean shorthand in `-chardev`
// strings with QEMU 7.2's warning lines (read off `qemu-system-x86_64 -chardev
// socket,id=c0,path=/tmp/x.sock,server,nowait` and `...,telnet,...,nodelay`).

import { describe, expect, it } from "./_harness.ts";
import { parseLegacySpec, serialSpecFailure } from "../host-ts/legacy_spec.ts";
import { parseChardevOptions } from "../host-ts/options.ts";
import { ChardevError } from "../host-ts/errors.ts";

/** The options a spec maps to, as `key=value` entries in a plain object, backend included. */
function mapped(spec: string, label = "serial0"): Record<string, string> {
  const result = parseLegacySpec(label, spec);
  if (result.kind !== "new") throw new Error(`${spec} names an existing chardev`);
  return { backend: result.options.backend, id: result.options.id, ...Object.fromEntries(result.options.options) };
}

function failure(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof ChardevError) return error.message;
    throw error;
  }
  throw new Error("no error");
}

describe("legacy chardev specs (qemu_chr_parse_compat)", () => {
  const table: [string, Record<string, string>][] = [
    ["null", { backend: "null", id: "serial0" }],
    ["pty", { backend: "pty", id: "serial0" }],
    ["stdio", { backend: "stdio", id: "serial0" }],
    ["vc", { backend: "web", id: "serial0" }],
    ["vc:640x480", { backend: "web", id: "serial0", width: "640", height: "480" }],
    ["vc:80Cx24C", { backend: "web", id: "serial0", cols: "80", rows: "24" }],
    ["file:console.log", { backend: "file", id: "serial0", path: "console.log" }],
    // QEMU takes everything after `file:` as the path, commas too.
    ["file:/tmp/a,append=on", { backend: "file", id: "serial0", path: "/tmp/a,append=on" }],
    ["pipe:/tmp/fifo", { backend: "pipe", id: "serial0", path: "/tmp/fifo" }],
    ["pty:/tmp/link", { backend: "pty", id: "serial0", path: "/tmp/link" }],
    ["tcp::4444", { backend: "socket", id: "serial0", host: "", port: "4444" }],
    ["tcp:127.0.0.1:4444,server,nowait", { backend: "socket", id: "serial0", host: "127.0.0.1", port: "4444", server: "on", wait: "off" }],
    ["tcp:localhost:4444,nodelay", { backend: "socket", id: "serial0", host: "localhost", port: "4444", delay: "off" }],
    ["telnet::4444,server,nowait", { backend: "socket", id: "serial0", host: "", port: "4444", server: "on", wait: "off", telnet: "on" }],
    ["tn3270::4444,server", { backend: "socket", id: "serial0", host: "", port: "4444", server: "on", tn3270: "on" }],
    ["websocket:127.0.0.1:5000,server=on,wait=off", { backend: "socket", id: "serial0", host: "127.0.0.1", port: "5000", server: "on", wait: "off", websocket: "on" }],
    // An `id=` among the options is ignored by QEMU: the chardev keeps its label.
    ["tcp::4444,id=other", { backend: "socket", id: "serial0", host: "", port: "4444" }],
    ["unix:/tmp/console.sock,server,nowait", { backend: "socket", id: "serial0", path: "/tmp/console.sock", server: "on", wait: "off" }],
    ["unix:path=/tmp/console.sock", { backend: "socket", id: "serial0", path: "/tmp/console.sock" }],
    ["unix:/tmp/a,,b.sock", { backend: "socket", id: "serial0", path: "/tmp/a,b.sock" }],
    ["unix:/tmp/u.sock,noserver", { backend: "socket", id: "serial0", path: "/tmp/u.sock", server: "off" }],
    ["udp::4555", { backend: "udp", id: "serial0", host: "", port: "4555" }],
    ["udp:127.0.0.1:4555@:4556", { backend: "udp", id: "serial0", host: "127.0.0.1", port: "4555", localaddr: "", localport: "4556" }],
    ["udp:127.0.0.1:4555@127.0.0.1:4556", { backend: "udp", id: "serial0", host: "127.0.0.1", port: "4555", localaddr: "127.0.0.1", localport: "4556" }],
    ["mon:stdio", { backend: "stdio", id: "serial0", mux: "on", signal: "off" }],
    ["mon:tcp::4444,server,nowait", { backend: "socket", id: "serial0", host: "", port: "4444", server: "on", wait: "off", mux: "on" }],
    ["/dev/ttyS0", { backend: "serial", id: "serial0", path: "/dev/ttyS0" }],
    ["/dev/parport0", { backend: "parallel", id: "serial0", path: "/dev/parport0" }],
  ];
  for (const [spec, expected] of table) {
    it(`maps '${spec}' as QEMU does`, () => {
      expect(mapped(spec)).toEqual(expected);
    });
  }

  it("gives the spec back as a -chardev string, written in full, that parses to the same options without a warning", () => {
    const result = parseLegacySpec("serial1", "telnet::4444,server,nowait");
    if (result.kind !== "new") throw new Error("expected a new chardev");
    expect(result.spec).toBe("socket,host=,port=4444,server=on,wait=off,telnet=on,id=serial1");
    const warnings: string[] = [];
    expect(parseChardevOptions(result.spec, true, (line) => warnings.push(line))).toEqual(result.options);
    expect(warnings).toEqual([]);
  });

  it("writes a path with commas back with ,, so that it parses to the same path", () => {
    const result = parseLegacySpec("serial0", "file:/tmp/a,b.log");
    if (result.kind !== "new") throw new Error("expected a new chardev");
    expect(result.spec).toBe("file,path=/tmp/a,,b.log,id=serial0");
    expect(parseChardevOptions(result.spec).options.get("path")).toBe("/tmp/a,b.log");
  });

  it("names an existing chardev for chardev:ID", () => {
    expect(parseLegacySpec("serial0", "chardev:console")).toEqual({ kind: "existing", id: "console" });
  });

  it("refuses an unknown driver with QEMU's text", () => {
    expect(failure(() => parseLegacySpec("serial0", "bogus"))).toBe("'bogus' is not a valid char driver");
    expect(failure(() => parseLegacySpec("serial0", "mon:bogus"))).toBe("'bogus' is not a valid char driver");
  });

  it("refuses an unknown option after the address with QEMU's text, reading noX as X=off", () => {
    expect(failure(() => parseLegacySpec("serial0", "tcp::4455,bogus=1"))).toBe("Invalid parameter 'bogus'");
    expect(failure(() => parseLegacySpec("serial0", "unix:/tmp/u.sock,server,nowait,nonsense"))).toBe("Invalid parameter 'nsense'");
  });

  it("refuses mon: where the caller does not permit it, with QEMU's text", () => {
    expect(failure(() => parseLegacySpec("serial0", "mon:stdio", { permitMuxMon: false }))).toBe("mon: isn't supported in this context");
  });

  for (const spec of ["tcp:", "tcp:abc", "telnet:host:", "udp:", "udp::4555@", "udp::4555@host", "vc:80x"]) {
    it(`refuses the malformed address '${spec}' naming the form it expects`, () => {
      expect(failure(() => parseLegacySpec("serial0", spec))).toMatch(/^chardev: '.*' is not of the form /);
    });
  }

  it("cuts a long spec short in its messages", () => {
    const long = `x${"y".repeat(10_000)}`;
    expect(failure(() => parseLegacySpec("serial0", long)).length).toBeLessThan(400);
    expect(serialSpecFailure(long).length).toBeLessThan(400);
  });

  it("says QEMU's -serial failure line", () => {
    expect(serialSpecFailure("tcp:")).toBe("could not connect serial device to character backend 'tcp:'");
  });
});

describe("QEMU's boolean shorthand in -chardev strings", () => {
  function parseWithWarnings(text: string): { options: Record<string, string>; warnings: string[] } {
    const warnings: string[] = [];
    const parsed = parseChardevOptions(text, true, (line) => warnings.push(line));
    return { options: Object.fromEntries(parsed.options), warnings };
  }

  it("reads socket,server,host=*,nowait,port=6666,telnet,id=c0 as QEMU does, warning as QEMU 7.2 does for each shorthand", () => {
    const { options, warnings } = parseWithWarnings("socket,server,host=*,nowait,port=6666,telnet,id=c0");
    expect(options).toEqual({ server: "on", host: "*", wait: "off", port: "6666", telnet: "on" });
    expect(warnings).toEqual([
      "warning: short-form boolean option 'server' deprecated",
      "Please use server=on instead",
      "warning: short-form boolean option 'nowait' deprecated",
      "Please use wait=off instead",
      "warning: short-form boolean option 'telnet' deprecated",
      "Please use telnet=on instead",
    ]);
  });

  it("reads nodelay as delay=off and advises nodelay=on, as QEMU does", () => {
    const { options, warnings } = parseWithWarnings("socket,id=c0,path=/tmp/x.sock,nodelay");
    expect(options).toEqual({ path: "/tmp/x.sock", delay: "off" });
    expect(warnings).toEqual(["warning: short-form boolean option 'nodelay' deprecated", "Please use nodelay=on instead"]);
  });

  it("reads a bare delay as delay=on and advises nodelay=off", () => {
    expect(parseWithWarnings("socket,id=c0,path=/tmp/x.sock,delay").warnings).toEqual([
      "warning: short-form boolean option 'delay' deprecated",
      "Please use nodelay=off instead",
    ]);
  });

  it("reads noserver as server=off", () => {
    const { options, warnings } = parseWithWarnings("socket,id=c0,path=/tmp/x.sock,noserver,wait");
    expect(options).toEqual({ path: "/tmp/x.sock", server: "off", wait: "on" });
    expect(warnings[0]).toBe("warning: short-form boolean option 'noserver' deprecated");
    expect(warnings[1]).toBe("Please use server=off instead");
    expect(warnings[3]).toBe("Please use wait=on instead");
  });

  it("refuses noX for an X QEMU does not know, naming X as QEMU does", () => {
    expect(failure(() => parseChardevOptions("socket,id=c0,nonsense", true, () => {}))).toBe("Invalid parameter 'nsense'");
  });

  it("warns nothing for options written in full", () => {
    expect(parseWithWarnings("socket,id=c0,path=/tmp/x.sock,server=on,wait=off").warnings).toEqual([]);
  });
  // The registry passes its onWarning channel to parseChardevOptions once registry.ts (helper C's)
  // hands it over; until then these lines go to the console's stderr (legacy_booleans.ts).

});
