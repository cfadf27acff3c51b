// Raw mode for a tty (cfmakeraw semantics) through glibc's termios calls.
// A serial console in canonical mode echoes what it receives and cuts a line
// at 4095 bytes; the RPC line needs neither. Used by the kernel's tty
// transport (the appliance's console) and by aaosctl --tty.
import { check, libc } from "./libc.ts";

/** glibc's struct termios is 60 bytes; a little slack costs nothing */
const TERMIOS_SIZE = 64;
const TCSANOW = 0;
const TCIOFLUSH = 2;
// offsets in glibc's struct termios (x86_64)
const C_IFLAG = 0;
const C_CFLAG = 8;
const VMIN = 6;
const VTIME = 5;
const C_CC = 17;
const CLOCAL = 0o4000;
const CREAD = 0o200;
const IXON = 0o2000;
const IXOFF = 0o10000;
const CRTSCTS = 0o20000000000;

/** Linux speed_t codes (asm-generic/termbits.h) */
const BAUD: Record<number, number> = {
  0: 0o0,
  50: 0o1,
  75: 0o2,
  110: 0o3,
  134: 0o4,
  150: 0o5,
  200: 0o6,
  300: 0o7,
  600: 0o10,
  1200: 0o11,
  1800: 0o12,
  2400: 0o13,
  4800: 0o14,
  9600: 0o15,
  19200: 0o16,
  38400: 0o17,
  57600: 0o10001,
  115200: 0o10002,
  230400: 0o10003,
  460800: 0o10004,
  500000: 0o10005,
  576000: 0o10006,
  921600: 0o10007,
  1000000: 0o10010,
  1152000: 0o10011,
  1500000: 0o10012,
  2000000: 0o10013,
  2500000: 0o10014,
  3000000: 0o10015,
  3500000: 0o10016,
  4000000: 0o10017,
};

export function baudCode(baud: number): number {
  const code = BAUD[baud];
  if (code === undefined) throw new Error(`unsupported baud rate ${baud} (one of ${Object.keys(BAUD).join(", ")})`);
  return code;
}

/**
 * Put the tty on fd into raw mode: no echo, no line editing, no signals, no
 * CR/NL translation, 8 bits, reads return as soon as a byte is there. With
 * baud, also set the line speed. Throws SysError when fd is not a tty.
 */
export function setRawMode(fd: number, baud?: number): void {
  const c = libc();
  const t = new Uint8Array(TERMIOS_SIZE);
  check("tcgetattr", c.tcgetattr(fd, t));
  c.cfmakeraw(t);
  const dv = new DataView(t.buffer);
  // keep the line open without modem control, receiver on, no flow control
  dv.setUint32(C_CFLAG, (dv.getUint32(C_CFLAG, true) | CLOCAL | CREAD) & (~CRTSCTS >>> 0), true);
  dv.setUint32(C_IFLAG, dv.getUint32(C_IFLAG, true) & ~(IXON | IXOFF), true);
  t[C_CC + VMIN] = 1;
  t[C_CC + VTIME] = 0;
  if (baud !== undefined) {
    const code = baudCode(baud);
    check("cfsetispeed", c.cfsetispeed(t, code));
    check("cfsetospeed", c.cfsetospeed(t, code));
  }
  check("tcsetattr", c.tcsetattr(fd, TCSANOW, t));
  // whatever arrived while the line was cooked (echoes, half lines) is stale
  c.tcflush(fd, TCIOFLUSH);
}

/** Read back the flags that matter, for tests: {echo, canonical, isig}. */
export function getLocalModes(fd: number): { echo: boolean; canonical: boolean; isig: boolean } {
  const t = new Uint8Array(TERMIOS_SIZE);
  check("tcgetattr", libc().tcgetattr(fd, t));
  const lflag = new DataView(t.buffer).getUint32(12, true);
  return { echo: (lflag & 0o10) !== 0, canonical: (lflag & 0o2) !== 0, isig: (lflag & 0o1) !== 0 };
}

export function isTty(fd: number): boolean {
  return libc().isatty(fd) === 1;
}
