// mount(2), umount2(2), sync(2) for PID 1 (init/boot.ts, init/shutdown.ts).
import { check, cstr, libc } from "./libc.ts";

export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_NOEXEC = 8;
export const MS_REMOUNT = 32;
export const MS_NOATIME = 1024;
export const MNT_FORCE = 1;
export const MNT_DETACH = 2;

export function mount(source: string, target: string, fstype: string, flags = 0, data?: string): void {
  const c = libc();
  check(
    "mount",
    c.mount(cstr(source), cstr(target), cstr(fstype), BigInt(flags), data === undefined ? null : cstr(data)),
    `${fstype} ${source} on ${target}`,
  );
}

export function umount(target: string, flags = 0): void {
  check("umount2", libc().umount2(cstr(target), flags), target);
}

export function sync(): void {
  libc().sync();
}
