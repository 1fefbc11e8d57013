// Liveness as a property (fast-check): a ring hub with random blocking readers, some stalled, a
// writer waiting on the hub's watch. After any removal (hub-detach, close) of a random reader,
// once the remaining readers drain, the writer's watch fires and its writes go through: every
// remaining reader ends up with the whole stream. (The byte-level ring rules are
// ring_core.property.test.ts's, against the model in _ring_model.ts.)

import fc from "fast-check";
import { describe, expect, it } from "./_harness.ts";
import { ChardevRegistry } from "../host-ts/mod.ts";
import { FeHandler } from "./_fe_handler.ts";
import { SwitchChardev, switchDriver } from "./_switch_chardev.ts";

const RUNS = 60;

describe("broadcast ring liveness", () => {
  it("after any removal, if the remaining blocking readers drain, the writer's watch fires and its writes succeed", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          readers: fc.integer({ min: 2, max: 5 }),
          stalledMask: fc.integer({ min: 1, max: 31 }),
          removed: fc.nat(4),
          how: fc.constantFrom("detach", "close"),
          ringLog2: fc.integer({ min: 6, max: 12 }),
          length: fc.integer({ min: 1, max: 20_000 }),
        }),
        async ({ readers, stalledMask, removed, how, ringLog2, length }) => {
          const reg = await ChardevRegistry.create({ qemuCompat: false });
          try {
            reg.registerDriver(switchDriver);
            const backends: SwitchChardev[] = [];
            for (let i = 0; i < readers; i++) {
              const chardev = (await reg.add(`switch,id=r${i}`)) as SwitchChardev;
              chardev.open();
              chardev.stalled = ((stalledMask >> i) & 1) === 1;
              backends.push(chardev);
            }
            const ids = backends.map((_, i) => `chardevs.${i}=r${i}`).join(",");
            await reg.add(`hub,id=hub0,ring=${1 << ringLog2},${ids}`);
            const fe = reg.attach("hub0", new FeHandler());
            const stream = Uint8Array.from({ length: length + (1 << ringLog2) }, (_, i) => 0x61 + (i % 26));
            let sent = 0;
            let fired = 0;
            const pump = (): void => {
              while (sent < stream.length) {
                const taken = fe.write(stream.subarray(sent));
                if (taken > 0) {
                  sent += taken;
                  continue;
                }
                expect(fe.lastError).toBe("EAGAIN");
                expect(fe.addWatch(() => (fired++, pump()))).not.toBe(0);
                return;
              }
            };
            pump();
            await new Promise((resolve) => setTimeout(resolve, 0));
            const gone = removed % readers;
            if (how === "detach") reg.hubDetach("hub0", `r${gone}`);
            else backends[gone]!.close();
            for (const [i, chardev] of backends.entries()) if (i !== gone) chardev.resume();
            for (let turn = 0; turn < 1000 && sent < stream.length; turn++) await new Promise((resolve) => setTimeout(resolve, 0));
            expect(sent).toBe(stream.length);
            reg.hub("hub0").flush();
            for (const [i, chardev] of backends.entries()) if (i !== gone) expect(chardev.bytes).toBe(stream.length);
            if (stalledMask & ((1 << readers) - 1)) expect(fired).toBeGreaterThan(0);
          } finally {
            await reg.close();
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});
