// setRawMode on a real pty: echo, canonical mode and signals off, long lines intact.
import { expect, test } from "bun:test";
import { closeSync, openSync, readSync, writeSync, constants as fsc } from "node:fs";
import { getLocalModes, isTty, setRawMode, baudCode } from "../../../kernel/sys/termios.ts";
import { libc } from "../../../kernel/sys/libc.ts";

const TIOCSPTLCK = 0x40045431;
const TIOCGPTN = 0x80045430;

function openPty(): { master: number; slave: number } {
  const master = openSync("/dev/ptmx", fsc.O_RDWR | fsc.O_NOCTTY);
  const unlock = new Int32Array([0]);
  expect(libc().ioctl(master, BigInt(TIOCSPTLCK), unlock)).toBe(0);
  const n = new Int32Array(1);
  expect(libc().ioctl(master, BigInt(TIOCGPTN), n)).toBe(0);
  const slave = openSync(`/dev/pts/${n[0]}`, fsc.O_RDWR | fsc.O_NOCTTY);
  return { master, slave };
}

test("a fresh pty is cooked; setRawMode makes it raw", () => {
  const { master, slave } = openPty();
  try {
    expect(isTty(slave)).toBe(true);
    expect(getLocalModes(slave)).toEqual({ echo: true, canonical: true, isig: true });
    setRawMode(slave, 115200);
    expect(getLocalModes(slave)).toEqual({ echo: false, canonical: false, isig: false });
  } finally {
    closeSync(slave);
    closeSync(master);
  }
});

test("a raw tty passes a line longer than 4095 bytes, without echo", () => {
  const { master, slave } = openPty();
  try {
    setRawMode(slave);
    const line = Buffer.from("x".repeat(10_000) + "\n");
    let written = 0;
    let got = 0;
    const buf = Buffer.alloc(65536);
    while (written < line.length) {
      written += writeSync(master, line, written, Math.min(2048, line.length - written));
      got += readSync(slave, buf, 0, buf.length, null);
    }
    while (got < line.length) got += readSync(slave, buf, 0, buf.length, null);
    expect(got).toBe(line.length);
  } finally {
    closeSync(slave);
    closeSync(master);
  }
});

test("not a tty: setRawMode throws a SysError naming the call", () => {
  const fd = openSync("/dev/null", fsc.O_RDWR);
  try {
    expect(() => setRawMode(fd)).toThrow(/tcgetattr/);
  } finally {
    closeSync(fd);
  }
});

test("baud rates map to Linux speed codes", () => {
  expect(baudCode(115200)).toBe(0o10002);
  expect(baudCode(9600)).toBe(0o15);
  expect(() => baudCode(12345)).toThrow(/unsupported baud/);
});
