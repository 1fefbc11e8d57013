// The base every backend stands on (host-ts/chardev/_chardev.ts): a backend hook that throws
// answers -EIO at the base, so nothing throws through the WASM core into the hub or the
// frontend; `beOpen` and `user` change only from inside the chardev.

import { afterEach, beforeEach, describe, expect, it } from "./_harness.ts";
import { ChardevRegistry, ChrEvent } from "../host-ts/mod.ts";
import { FeHandler } from "./_fe_handler.ts";
import { SwitchChardev, switchSubclassDriver as driver } from "./_switch_chardev.ts";

/** A switch whose writeOut throws (a backend bug, a runtime call failing unexpectedly) while `throwing` is set. */
class ThrowingSwitch extends SwitchChardev {
  throwing = false;
  throws = 0;
  protected override writeOut(data: Uint8Array): number {
    if (this.throwing) {
      this.throws++;
      throw new Error(`backend bug ${"x".repeat(500)}`);
    }
    return super.writeOut(data);
  }
}


let reg: ChardevRegistry;
let warnings: string[];

async function makeRegistry(qemuCompat: boolean): Promise<void> {
  warnings = [];
  reg = await ChardevRegistry.create({ qemuCompat, onWarning: (line) => warnings.push(line) });
  reg.registerDriver(driver("switch", (id, context) => new SwitchChardev(id, context)));
  reg.registerDriver(driver("throwing", (id, context) => new ThrowingSwitch(id, context)));
}

async function backend<T extends SwitchChardev>(spec: string): Promise<T> {
  const chardev = (await reg.add(spec)) as T;
  chardev.open();
  return chardev;
}

beforeEach(async () => makeRegistry(false));
afterEach(async () => {
  await reg.close();
});

/** Waits (at most 5 s: a bound, not a measurement) for `condition`. */
async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2));
}

const text = (value: string): Uint8Array => new TextEncoder().encode(value);

describe("a backend hook that throws answers -EIO at the base", () => {
  it("a throwing writeOut written directly answers -EIO (5) instead of throwing, and warns once with the message cut short", async () => {
    const bad = await backend<ThrowingSwitch>("throwing,id=bad");
    bad.throwing = true;
    expect(bad.write(text("one"))).toBe(-5);
    expect(bad.write(text("two"))).toBe(-5);
    expect(bad.throws).toBe(2);
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toMatch(/^chardev 'bad': write failed: backend bug x+\.\.\. \(answered EIO; further failures are not reported\)$/);
    expect(warnings[0].length).toBeLessThan(400);
    bad.throwing = false;
    expect(bad.write(text("three"))).toBe(5);
    expect(bad.received).toBe("three");
  });

  for (const ring of [4096, 0]) {
    const kind = ring ? "a ring hub" : "a ring=0 hub";
    it(`in ${kind}, a backend whose writeOut throws is taken out with errno EIO and the other backend gets every byte`, async () => {
      const healthy = await backend<SwitchChardev>("switch,id=a");
      const bad = await backend<ThrowingSwitch>("throwing,id=bad");
      await reg.add(`hub,id=hub0,chardevs.0=a,chardevs.1=bad,ring=${ring}`);
      const events: { type: string; backend: string; errno?: string }[] = [];
      reg.hub("hub0").onEvent((event) => events.push(event));
      const fe = reg.attach("hub0", new FeHandler());
      expect(fe.write(text("before "))).toBe(7);
      // A ring hub writes its backends from the ring on a later turn.
      await until(() => bad.received === "before ");
      bad.throwing = true;
      expect(fe.write(text("after"))).toBe(5);
      await until(() => healthy.received === "before after");
      expect(healthy.received).toBe("before after");
      expect(bad.received).toBe("before ");
      expect(bad.throws).toBeGreaterThan(0);
      expect(events.filter((event) => event.backend === "bad" && event.type !== "attach")).toEqual([
        { type: "error", backend: "bad", errno: "EIO" },
        { type: "close", backend: "bad" },
      ]);
      expect(reg.hub("hub0").stats().find((row) => row.id === "bad")!.open).toBe(false);
    });
  }

  it("with qemuCompat, a throwing writeOut reaches the frontend as a failed write with EIO", async () => {
    await reg.close();
    await makeRegistry(true);
    await backend<SwitchChardev>("switch,id=a");
    const bad = await backend<ThrowingSwitch>("throwing,id=bad");
    await reg.add("hub,id=hub0,chardevs.0=a,chardevs.1=bad");
    const fe = reg.attach("hub0", new FeHandler());
    bad.throwing = true;
    expect(fe.write(text("hello"))).toBe(-1);
    expect(fe.lastError).toBe("EIO");
  });
});

describe("beOpen and user change only from inside the chardev", () => {
  it("user is set by attaching a frontend and cannot be assigned from outside", async () => {
    const chardev = await backend<SwitchChardev>("switch,id=a");
    expect(chardev.user).toBe(null);
    const handler = new FeHandler();
    const fe = reg.attach("a", handler);
    expect(chardev.user).not.toBe(null);
    expect(() => {
      (chardev as unknown as { user: unknown }).user = null;
    }).toThrow(TypeError);
    expect(chardev.user).not.toBe(null);
    fe.detach();
    expect(chardev.user).toBe(null);
  });

  it("beOpen follows the backend's OPENED and CLOSED events", async () => {
    const chardev = await backend<SwitchChardev>("switch,id=a");
    expect(chardev.beOpen).toBe(true);
    chardev.close();
    expect(chardev.beOpen).toBe(false);
    // Checked by the type checker (tsc, deno test), never run: the setter is protected, for
    // the stacking kinds only.
    const assignFromOutside = (): void => {
      // @ts-expect-error: beOpen's setter is protected
      chardev.beOpen = true;
    };
    void assignFromOutside;
    expect(chardev.beOpen).toBe(false);
    chardev.emitEvent(ChrEvent.OPENED);
    expect(chardev.beOpen).toBe(true);
  });
});
