// IPv4 interface configuration for PID 1 (init/network.ts) without `ip`:
// SIOCSIFFLAGS / SIOCSIFADDR / SIOCSIFNETMASK / SIOCADDRT through ioctl(2),
// and a small UDP socket (SO_BINDTODEVICE, broadcast) for the DHCP client.
import { ptr } from "bun:ffi";
import { check, cstr, errno, libc, SysError } from "./libc.ts";

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_BROADCAST = 6;
const SO_BINDTODEVICE = 25;
const SIOCGIFFLAGS = 0x8913;
const SIOCSIFFLAGS = 0x8914;
const SIOCSIFADDR = 0x8916;
const SIOCSIFNETMASK = 0x891c;
const SIOCADDRT = 0x890b;
const IFF_UP = 0x1;
const RTF_UP = 0x1;
const RTF_GATEWAY = 0x2;
const POLLIN = 1;
const EAGAIN = 11;
const EEXIST = 17;

export function parseIPv4(text: string): Uint8Array {
  const parts = text.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255))
    throw new Error(`not an IPv4 address: "${text}"`);
  return Uint8Array.from(parts);
}

export function formatIPv4(b: Uint8Array): string {
  return Array.from(b.subarray(0, 4)).join(".");
}

export function prefixToMask(prefix: number): Uint8Array {
  const m = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return Uint8Array.from([m >>> 24, (m >>> 16) & 255, (m >>> 8) & 255, m & 255]);
}

/** struct sockaddr_in, 16 bytes */
function sockaddrIn(addr: Uint8Array, port = 0): Uint8Array {
  const s = new Uint8Array(16);
  s[0] = AF_INET;
  s[2] = port >> 8;
  s[3] = port & 255;
  s.set(addr, 4);
  return s;
}

/** struct ifreq, 40 bytes: name[16] then the union */
function ifreq(name: string): Uint8Array {
  const r = new Uint8Array(40);
  const n = Buffer.from(name);
  if (n.length > 15) throw new Error(`interface name too long: ${name}`);
  r.set(n, 0);
  return r;
}

function withInetSocket<T>(f: (fd: number) => T): T {
  const c = libc();
  const fd = check("socket", c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  try {
    return f(fd);
  } finally {
    c.close(fd);
  }
}

export function setInterfaceUp(name: string, up = true): void {
  withInetSocket((fd) => {
    const c = libc();
    const r = ifreq(name);
    check("ioctl(SIOCGIFFLAGS)", c.ioctl(fd, BigInt(SIOCGIFFLAGS), r), name);
    const dv = new DataView(r.buffer);
    const flags = dv.getUint16(16, true);
    dv.setUint16(16, up ? flags | IFF_UP : flags & ~IFF_UP, true);
    check("ioctl(SIOCSIFFLAGS)", c.ioctl(fd, BigInt(SIOCSIFFLAGS), r), name);
  });
}

export function setInterfaceAddress(name: string, address: string, prefix: number): void {
  withInetSocket((fd) => {
    const c = libc();
    const r = ifreq(name);
    r.set(sockaddrIn(parseIPv4(address)), 16);
    check("ioctl(SIOCSIFADDR)", c.ioctl(fd, BigInt(SIOCSIFADDR), r), `${name} ${address}`);
    const m = ifreq(name);
    m.set(sockaddrIn(prefixToMask(prefix)), 16);
    check("ioctl(SIOCSIFNETMASK)", c.ioctl(fd, BigInt(SIOCSIFNETMASK), m), `${name} /${prefix}`);
  });
}

/** Default route via gateway (an existing identical route is fine). */
export function addDefaultRoute(gateway: string, dev?: string): void {
  withInetSocket((fd) => {
    const c = libc();
    // struct rtentry (x86_64): pad1@0, dst@8, gateway@24, genmask@40, flags@56 (u16), ... dev@88 (char*)
    const rt = new Uint8Array(120);
    rt.set(sockaddrIn(new Uint8Array(4)), 8);
    rt.set(sockaddrIn(parseIPv4(gateway)), 24);
    rt.set(sockaddrIn(new Uint8Array(4)), 40);
    new DataView(rt.buffer).setUint16(56, RTF_UP | RTF_GATEWAY, true);
    const devName = dev ? cstr(dev) : null;
    if (devName) new DataView(rt.buffer).setBigUint64(88, BigInt(ptr(devName)), true);
    const rc = c.ioctl(fd, BigInt(SIOCADDRT), rt);
    if (rc < 0 && errno() !== EEXIST) throw new SysError("ioctl(SIOCADDRT)", errno(), `default via ${gateway}`);
    void devName; // kept alive until here
  });
}

/** Remove the interface's IPv4 address (a DHCP lease expired). */
export function clearInterfaceAddress(name: string): void {
  withInetSocket((fd) => {
    const r = ifreq(name);
    r.set(sockaddrIn(new Uint8Array(4)), 16);
    check("ioctl(SIOCSIFADDR)", libc().ioctl(fd, BigInt(SIOCSIFADDR), r), `${name} 0.0.0.0`);
  });
}

/** A non-blocking UDP socket bound to 0.0.0.0:port (on one interface if device is given), broadcast allowed. */
export class UdpSocket {
  readonly fd: number;
  constructor(port: number, device?: string) {
    const c = libc();
    this.fd = check("socket", c.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    try {
      const one = new Int32Array([1]);
      check("setsockopt(SO_REUSEADDR)", c.setsockopt(this.fd, SOL_SOCKET, SO_REUSEADDR, one, 4));
      check("setsockopt(SO_BROADCAST)", c.setsockopt(this.fd, SOL_SOCKET, SO_BROADCAST, one, 4));
      if (device) {
        const dev = cstr(device);
        check(
          "setsockopt(SO_BINDTODEVICE)",
          c.setsockopt(this.fd, SOL_SOCKET, SO_BINDTODEVICE, dev, dev.length),
          device,
        );
      }
      check("bind", c.bind(this.fd, sockaddrIn(new Uint8Array(4), port), 16), `0.0.0.0:${port}`);
    } catch (e) {
      c.close(this.fd);
      throw e;
    }
  }

  send(data: Uint8Array, address: string, port: number): void {
    check(
      "sendto",
      libc().sendto(this.fd, data, BigInt(data.length), 0, sockaddrIn(parseIPv4(address), port), 16),
      `${address}:${port}`,
    );
  }

  /** One datagram if one is waiting, else null (never blocks). */
  receive(max = 2048): Uint8Array | null {
    const buf = new Uint8Array(max);
    const n = Number(libc().recvfrom(this.fd, buf, BigInt(max), 0, null, null));
    if (n < 0) {
      const e = errno();
      if (e === EAGAIN) return null;
      throw new SysError("recvfrom", e);
    }
    return buf.subarray(0, n);
  }

  /** poll(2) for readability, at most timeoutMs (0: just look). */
  readable(timeoutMs = 0): boolean {
    const pfd = new Uint8Array(8);
    const dv = new DataView(pfd.buffer);
    dv.setInt32(0, this.fd, true);
    dv.setInt16(4, POLLIN, true);
    return libc().poll(pfd, 1n, timeoutMs) > 0;
  }

  close(): void {
    libc().close(this.fd);
  }
}
