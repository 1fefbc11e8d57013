// The package as users import it: `import { ChardevRegistry } from "chardev-hub"` through the
// package's `exports` (dist/mod.js, built by `npm install`'s prepare step).

import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "./_harness.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

describe("the chardev-hub package", () => {
  it("Node imports ChardevRegistry and Hub by the package name and fans out through a hub", () => {
    const script = `
      import { ChardevRegistry, Hub } from "chardev-hub";
      const reg = await ChardevRegistry.create({ qemuCompat: true });
      await reg.add("ringbuf,id=a,size=16");
      await reg.add("ringbuf,id=b,size=16");
      await reg.add("hub,id=hub0,chardevs.0=a,chardevs.1=b");
      const fe = reg.attach("hub0", { canRead: () => 0, read() {}, event() {} });
      const taken = fe.write(new TextEncoder().encode("via-exports"));
      console.log(JSON.stringify({ taken, a: reg.ringbufRead("a", 16), b: reg.ringbufRead("b", 16), hub: typeof Hub }));
      fe.detach();
      await reg.close();`;
    const out = execFileSync("node", ["--input-type=module", "-e", script], { cwd: root }).toString().trim();
    expect(JSON.parse(out)).toEqual({ taken: 11, a: "via-exports", b: "via-exports", hub: "function" });
  });
});
