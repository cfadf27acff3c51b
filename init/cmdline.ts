// The kernel command line, as PID 1 reads it: aaos.rpc=NAME[,BAUD].
import { readFileSync } from "node:fs";

export interface RpcLine {
  /** "/dev/ttyS0", "/dev/hvc0", … */
  device: string;
  /** line speed for a UART; undefined for virtual consoles */
  baud?: number;
}

/** Split a command line into words, honouring double quotes as the kernel does. */
export function words(cmdline: string): string[] {
  const out: string[] = [];
  const re = /(?:[^\s"]+|"[^"]*")+/g;
  for (const m of cmdline.matchAll(re)) out.push(m[0].replace(/"/g, ""));
  return out;
}

/** Value of the last `key=` word (the bootloader's words come after the built-in ones). */
export function param(cmdline: string, key: string): string | undefined {
  let v: string | undefined;
  for (const w of words(cmdline)) if (w.startsWith(key + "=")) v = w.slice(key.length + 1);
  return v;
}

export function rpcLine(cmdline: string): RpcLine {
  const v = param(cmdline, "aaos.rpc") || "ttyS0";
  const [name, baudText] = v.split(",");
  const device = name!.startsWith("/dev/") ? name! : `/dev/${name}`;
  const baud = baudText ? Number(baudText) : /^\/dev\/tty(S|AMA|USB)\d+$/.test(device) ? 115200 : undefined;
  return { device, baud: Number.isFinite(baud) ? baud : undefined };
}

export function readCmdline(path = "/proc/cmdline"): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return "";
  }
}
