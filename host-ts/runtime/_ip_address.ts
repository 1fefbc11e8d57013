// Numeric IP addresses as runtimes report them ("127.0.0.1", "::1", "::ffff:127.0.0.1"), read
// into bytes. Pure: both the runtime files (which look sockets up in /proc) and the chardevs
// (which decide who may connect) use it, so it imports nothing.

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function ipv4Bytes(text: string): Uint8Array | null {
  const match = IPV4.exec(text);
  if (!match) return null;
  const parts = match.slice(1).map(Number);
  return parts.every((part) => part <= 255) ? Uint8Array.from(parts) : null;
}

/** The 16 bytes of an IPv6 address in any RFC 4291 text form (`::`, an IPv4 tail); null if it is none. */
function ipv6Bytes(text: string): Uint8Array | null {
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groupsOf = (half: string): number[] | null => {
    if (half === "") return [];
    const groups: number[] = [];
    const parts = half.split(":");
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      if (i === parts.length - 1 && part.includes(".")) {
        const v4 = ipv4Bytes(part);
        if (!v4) return null;
        groups.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(part)) {
        groups.push(parseInt(part, 16));
      } else {
        return null;
      }
    }
    return groups;
  };
  const head = groupsOf(halves[0]);
  const tail = halves.length === 2 ? groupsOf(halves[1]) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  groups.forEach((group, i) => {
    bytes[2 * i] = group >> 8;
    bytes[2 * i + 1] = group & 0xff;
  });
  return bytes;
}

/**
 * A numeric address as 4 bytes (IPv4, also for an IPv4-mapped IPv6 address such as
 * `::ffff:127.0.0.1`, which is how a dual-stack listener sees an IPv4 peer) or 16 bytes
 * (IPv6); null for anything else (a name, a zone index, garbage).
 *
 * @example Mapped IPv4, IPv6 and a name
 * ```ts
 * ipAddressBytes("::ffff:127.0.0.1"); // Uint8Array [127, 0, 0, 1]
 * ipAddressBytes("::1")?.length;      // 16
 * ipAddressBytes("localhost");        // null
 * ```
 */
export function ipAddressBytes(host: string): Uint8Array | null {
  const v4 = ipv4Bytes(host);
  if (v4) return v4;
  const v6 = ipv6Bytes(host);
  if (!v6) return null;
  const mapped = v6.subarray(0, 10).every((byte) => byte === 0) && v6[10] === 0xff && v6[11] === 0xff;
  return mapped ? v6.slice(12) : v6;
}

/**
 * Whether `host` is a loopback address: 127.0.0.0/8, `::1`, or 127.x.y.z mapped into IPv6.
 * Only this machine can connect from one.
 *
 * @example The whole of 127/8 and ::1 are loopback; the wildcard is not
 * ```ts
 * isLoopbackAddress("127.0.0.53");       // true
 * isLoopbackAddress("::ffff:127.0.0.1"); // true
 * isLoopbackAddress("0.0.0.0");          // false: every interface
 * ```
 */
export function isLoopbackAddress(host: string): boolean {
  const bytes = ipAddressBytes(host);
  if (!bytes) return false;
  if (bytes.length === 4) return bytes[0] === 127;
  return bytes.subarray(0, 15).every((byte) => byte === 0) && bytes[15] === 1;
}
