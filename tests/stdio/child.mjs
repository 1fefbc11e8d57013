// A program whose terminal is a stdio chardev behind a hub (with a ringbuf beside it): it
// answers every input chunk; when its stdin ends it reports what the hub's frontend saw.
import { ChardevRegistry, ChrEvent } from "../../dist/mod.js";

const encoder = new TextEncoder();
const reg = await ChardevRegistry.create();
await reg.add(`stdio,id=term,signal=${process.argv[2] ?? "on"}`);
await reg.add("ringbuf,id=rb,size=1024");
await reg.add("hub,id=hub0,chardevs.0=term,chardevs.1=rb");
const events = [];
const fe = reg.attach("hub0", {
  canRead: () => 4096,
  read(data) {
    fe.write(encoder.encode(`got:${JSON.stringify(new TextDecoder().decode(data))}\n`));
  },
  // OPENED arrives during attach (QEMU tells a frontend at once), before `fe` is assigned.
  event: (ev) => events.push(ev),
});
if (events.includes(ChrEvent.OPENED)) fe.write(encoder.encode("opened\n"));

// stdin's end closes the stdio backend; the process then runs out of work.
process.once("beforeExit", async () => {
  const closedSeen = events.includes(ChrEvent.CLOSED);
  process.stderr.write(`frontend saw CLOSED: ${closedSeen}; ringbuf has ${JSON.stringify(reg.ringbufRead("rb", 1024))}\n`);
  fe.detach();
  await reg.close();
});
