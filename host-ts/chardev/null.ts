// `null`: swallows output, never produces input, and never reports itself open (QEMU), so a
// hub skips it.

import { Chardev, type ChardevContext, type ChardevDriver } from "./_chardev.ts";

export class NullChardev extends Chardev {
  readonly kind = "null";
  protected writeOut(data: Uint8Array): number {
    return data.length;
  }
}

export const nullDriver: ChardevDriver = {
  type: "null",
  options: [],
  fields: {},
  fromOptions: () => ({}),
  open: (id: string, _data, context: ChardevContext) => new NullChardev(id, context),
};
