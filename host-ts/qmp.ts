// QMP, the QEMU Machine Protocol, as the frontend of a chardev: exactly how QEMU runs
// `-qmp unix:PATH,server=on,wait=off` (a socket chardev with the monitor attached as its
// frontend). Anything a chardev carries can carry QMP: a socket, a FIFO pair, a ringbuf
// driven by `backendWrite`, a hub that also logs the conversation.
//
// This module only gathers the public names; the protocol lives in qmp/ (json_streamer.ts,
// encoder.ts, args.ts, monitor.ts, address.ts, commands_chardev.ts) and each backend kind's own
// commands beside it (chardev/ringbuf_qmp.ts, chardev/hub_qmp.ts).

export { QmpJsonStreamer, type QmpInput } from "./qmp/json_streamer.ts";
export { encodeQmpJson } from "./qmp/encoder.ts";
export type { QmpErrorClass } from "./qmp/args.ts";
export { QmpMonitor, type QmpMonitorOptions } from "./qmp/monitor.ts";
export { qmpChardevSpec, startQmp } from "./qmp/address.ts";
