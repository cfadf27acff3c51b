// Boot the appliance in QEMU and drive it over its serial JSON-RPC line.
// Used by test/e2e, bench/boot.ts and `make run` (qemu/run.ts).
//
//   const vm = await bootVM({ image: "out/aaos.img", kernel: "out/bzImage" });
//   await vm.waitForReady();
//   await vm.call("system.ping");
//   await vm.powerOff();            // system.shutdown poweroff, then QEMU exits by itself
//
// The RPC line is a QEMU chardev on a unix socket (server=on,wait=on: the
// guest does not start until we are connected, so nothing is lost). With
// rpc "ttyS0" it is also the kernel console; with "hvc0" (virtio-console)
// the console goes to a file and the RPC line is the fast virtual one.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connect } from "node:net";
import { RpcClient, socketStream, type Notification } from "../cli/client.ts";

export const ROOT = resolve(import.meta.dir, "..");
export const OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd";
export const OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd";

export interface GuestForward {
  /** address the guest connects to (10.0.2.0/24 user network), e.g. 10.0.2.100 */
  guestAddr: string;
  guestPort: number;
  /** host loopback port it reaches */
  hostPort: number;
}

export interface HostForward {
  /** port on the host's loopback (127.0.0.1) */
  hostPort: number;
  /** TCP port the guest listens on (its user-network address, 10.0.2.15) */
  guestPort: number;
}

export interface BootOptions {
  /** GPT disk image (out/aaos.img); attached as virtio-blk unless `disk` says otherwise */
  image?: string;
  /** how the image is attached: virtio-blk (default), SATA on q35's AHCI controller, or NVMe; and its format (default raw) */
  disk?: { bus?: "virtio" | "ahci" | "nvme"; format?: "raw" | "qcow2" | "vmdk" | "vhdx" };
  /** boot this bzImage directly (-kernel) instead of through firmware; the disk still holds the system */
  kernel?: string;
  /** -initrd (benchmarks: the same kernel with another init) */
  initrd?: string;
  /** boot the disk through OVMF (UEFI), as a real machine would */
  uefi?: boolean;
  /** words appended to the kernel's built-in command line (-kernel boots only) */
  append?: string;
  /** "tcg" (default, or $AAOS_ACCEL) or "kvm" */
  accel?: "tcg" | "kvm";
  memoryMb?: number;
  cpus?: number;
  /** TCG: one host thread per vCPU ("multi", QEMU's default) or one for all ("single"); $AAOS_TCG_THREAD */
  tcgThread?: "single" | "multi";
  /** which guest device carries JSON-RPC: the UART (default) or virtio-console */
  rpc?: "ttyS0" | "hvc0";
  guestfwd?: GuestForward[];
  /** host 127.0.0.1:hostPort → the guest's guestPort (user network hostfwd), e.g. the dashboard */
  hostfwd?: HostForward[];
  /** no network device at all */
  noNetwork?: boolean;
  extraArgs?: string[];
  /** where sockets and logs go (default: a fresh temp directory) */
  workDir?: string;
  /** keep the disk unchanged: QEMU writes to a temporary overlay (kept across guest reboots) */
  snapshot?: boolean;
  /** give the operator's terminal QEMU's stderr (make run) */
  inheritStderr?: boolean;
  /** path of the RPC socket (default: workDir/rpc.sock) */
  rpcSocket?: string;
  /** hold the guest until a client connects (default true; make run: false) */
  waitForClient?: boolean;
}

export interface VM {
  client: RpcClient;
  workDir: string;
  /** QEMU argv, for the record */
  argv: string[];
  /** wall-clock ms of QEMU's start */
  startedAt: number;
  call<T = any>(method: string, params?: unknown, timeoutMs?: number): Promise<T>;
  /** every notification received, in order */
  notifications: Notification[];
  /** the next system.ready (boot or reboot); resolves with its params and the ms since QEMU started */
  waitForReady(timeoutMs?: number): Promise<{ params: any; ms: number }>;
  /** everything the guest wrote on its console (the serial line, or the console file with hvc0) */
  consoleLog(): string;
  /** write raw bytes on the RPC line */
  sendRaw(data: string | Uint8Array): void;
  /** system.shutdown poweroff, then wait for QEMU to exit on its own */
  powerOff(timeoutMs?: number): Promise<number>;
  waitExit(timeoutMs?: number): Promise<number>;
  /** a QEMU monitor (QMP) command, e.g. qmp("send-key", {keys: [...]}) or qmp("system_powerdown") */
  qmp(command: string, args?: Record<string, unknown>): Promise<any>;
  /** end QEMU now (tests' cleanup) */
  kill(): void;
  exited: boolean;
}

export function qemuArgs(
  o: BootOptions,
  paths: { rpcSock: string; consoleFile: string; varsFile: string; qmpSock?: string },
): string[] {
  const accel = o.accel ?? ((process.env.AAOS_ACCEL as "kvm" | "tcg" | undefined) || "tcg");
  // One TCG thread for all vCPUs by default: with one thread per vCPU we saw
  // the guest kernel die on a stale int3 while patching its own code at boot
  // (about 1 boot in 20); single is ~0.7 s slower to ready and never did.
  const thread = o.tcgThread ?? ((process.env.AAOS_TCG_THREAD as "single" | "multi" | undefined) || "single");
  const accelArg = accel === "tcg" && thread ? `tcg,thread=${thread}` : accel;
  const a = ["qemu-system-x86_64", "-machine", "q35", "-accel", accelArg, "-cpu", accel === "kvm" ? "host" : "max"];
  a.push("-m", String(o.memoryMb ?? 1024), "-smp", String(o.cpus ?? 2));
  a.push("-nodefaults", "-display", "none", "-monitor", "none");
  if (paths.qmpSock) a.push("-qmp", `unix:${paths.qmpSock},server=on,wait=off`);
  const rpcChar = `socket,id=rpc,path=${paths.rpcSock},server=on,wait=${o.waitForClient === false ? "off" : "on"}`;
  if ((o.rpc ?? "ttyS0") === "ttyS0") {
    a.push("-chardev", `${rpcChar},logfile=${paths.consoleFile}`, "-serial", "chardev:rpc");
  } else {
    a.push("-chardev", `file,id=con,path=${paths.consoleFile}`, "-serial", "chardev:con");
    a.push("-chardev", rpcChar, "-device", "virtio-serial-pci", "-device", "virtconsole,chardev=rpc");
  }
  if (o.uefi) {
    a.push("-drive", `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`);
    a.push("-drive", `if=pflash,format=raw,unit=1,file=${paths.varsFile}`);
  }
  if (o.kernel) a.push("-kernel", o.kernel);
  if (o.initrd) a.push("-initrd", o.initrd);
  const append = [o.append, o.rpc === "hvc0" ? "aaos.rpc=hvc0" : ""].filter(Boolean).join(" ");
  if (o.kernel && append) a.push("-append", append);
  if (o.image) {
    const drive = `file=${o.image},format=${o.disk?.format ?? "raw"},cache=unsafe${o.snapshot ? ",snapshot=on" : ""}`;
    const bus = o.disk?.bus ?? "virtio";
    if (bus === "virtio") a.push("-drive", `${drive},if=virtio`);
    else {
      a.push("-drive", `${drive},if=none,id=disk0`);
      // q35's own ICH9 AHCI controller (bus ide.0), or an NVMe controller
      a.push("-device", bus === "ahci" ? "ide-hd,drive=disk0,bus=ide.0" : "nvme,drive=disk0,serial=aaos-nvme0");
    }
  }
  if (!o.noNetwork) {
    const fwd = (o.guestfwd ?? [])
      .map((f) => `,guestfwd=tcp:${f.guestAddr}:${f.guestPort}-cmd:socat STDIO TCP:127.0.0.1:${f.hostPort}`)
      .join("");
    const hfwd = (o.hostfwd ?? []).map((f) => `,hostfwd=tcp:127.0.0.1:${f.hostPort}-:${f.guestPort}`).join("");
    a.push("-netdev", `user,id=n0${fwd}${hfwd}`, "-device", "virtio-net-pci,netdev=n0");
  }
  a.push("-device", "virtio-rng-pci");
  a.push(...(o.extraArgs ?? []));
  return a;
}

export async function bootVM(o: BootOptions): Promise<VM> {
  const workDir = o.workDir ?? mkdtempSync(join(tmpdir(), "aaos-vm-"));
  mkdirSync(workDir, { recursive: true });
  const rpcSock = o.rpcSocket ?? join(workDir, "rpc.sock");
  const consoleFile = join(workDir, "console.log");
  const varsFile = join(workDir, "OVMF_VARS.fd");
  const qmpSock = join(workDir, "qmp.sock");
  rmSync(rpcSock, { force: true });
  rmSync(consoleFile, { force: true });
  if (o.uefi) copyFileSync(OVMF_VARS, varsFile);
  const argv = qemuArgs(o, { rpcSock, consoleFile, varsFile, qmpSock });
  const startedAt = Date.now();
  const proc = Bun.spawn(argv, { stdin: "ignore", stdout: "ignore", stderr: o.inheritStderr ? "inherit" : "pipe" });
  let stderrText = "";
  if (!o.inheritStderr)
    void (async () => {
      for await (const chunk of proc.stderr as ReadableStream<Uint8Array>)
        stderrText += new TextDecoder().decode(chunk);
    })();

  // connect as soon as QEMU has made the socket; the guest waits for us
  const deadline = Date.now() + 30_000;
  let sock: import("node:net").Socket | null = null;
  while (!sock) {
    if (proc.exitCode !== null) throw new Error(`qemu exited with ${proc.exitCode}: ${stderrText}\n${argv.join(" ")}`);
    if (Date.now() > deadline) {
      proc.kill();
      throw new Error(`qemu did not open ${rpcSock} within 30 s: ${stderrText}`);
    }
    if (existsSync(rpcSock)) {
      sock = await new Promise((res) => {
        const s = connect(rpcSock);
        s.once("connect", () => res(s));
        s.once("error", () => res(null));
      });
    }
    if (!sock) await Bun.sleep(20);
  }
  const raw: Buffer[] = [];
  sock.on("data", (d: Buffer) => raw.push(d));
  const client = new RpcClient(socketStream(sock));
  const notifications: Notification[] = [];
  const readyWaiters: ((n: { params: any; ms: number }) => void)[] = [];
  const readies: { params: any; ms: number }[] = [];
  client.onNotification((n) => {
    notifications.push(n);
    if (n.method === "system.ready") {
      const r = { params: n.params, ms: Date.now() - startedAt };
      const w = readyWaiters.shift();
      if (w) w(r);
      else readies.push(r);
    }
  });

  let exitCode: number | null = null;
  const exited = proc.exited.then((c) => (exitCode = c));

  const vm: VM = {
    client,
    workDir,
    argv,
    startedAt,
    notifications,
    exited: false,
    call: (method, params = {}, timeoutMs = 120_000) => client.call(method, params, { timeoutMs }),
    waitForReady(timeoutMs = 180_000) {
      const r = readies.shift();
      if (r) return Promise.resolve(r);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          const i = readyWaiters.indexOf(w);
          if (i >= 0) readyWaiters.splice(i, 1);
          reject(new Error(`no system.ready within ${timeoutMs} ms; console:\n${vm.consoleLog().slice(-3000)}`));
        }, timeoutMs);
        const w = (n: { params: any; ms: number }) => {
          clearTimeout(timer);
          resolve(n);
        };
        readyWaiters.push(w);
        exited.then(() => {
          const i = readyWaiters.indexOf(w);
          if (i < 0) return;
          readyWaiters.splice(i, 1);
          clearTimeout(timer);
          reject(
            new Error(
              `qemu exited (${exitCode}) before system.ready: ${stderrText}\nconsole:\n${vm.consoleLog().slice(-3000)}`,
            ),
          );
        });
      });
    },
    consoleLog() {
      if (existsSync(consoleFile)) return readFileSync(consoleFile, "utf8");
      return Buffer.concat(raw).toString("utf8");
    },
    sendRaw(data) {
      sock!.write(data);
    },
    async powerOff(timeoutMs = 60_000) {
      await client.call("system.shutdown", { action: "poweroff" }, { timeoutMs: 30_000 }).catch(() => {});
      return vm.waitExit(timeoutMs);
    },
    async waitExit(timeoutMs = 60_000) {
      const t = Bun.sleep(timeoutMs).then(() => "timeout" as const);
      const r = await Promise.race([exited, t]);
      if (r === "timeout") throw new Error(`qemu still running after ${timeoutMs} ms`);
      vm.exited = true;
      return r as number;
    },
    qmp: (command, args) => qmp(qmpSock, command, args),
    kill() {
      if (exitCode === null) proc.kill("SIGKILL");
      try {
        client.close();
      } catch {}
    },
  };
  void exited.then(() => (vm.exited = true));
  return vm;
}

/** One QMP command on a fresh connection: greeting, qmp_capabilities, the command, its return. */
export function qmp(path: string, command: string, args?: Record<string, unknown>): Promise<any> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let buf = "";
    let stage = 0;
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`qmp ${command}: no answer`));
    }, 10_000);
    s.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.on("data", (d) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (msg.event) continue;
        if (stage === 0 && msg.QMP) {
          stage = 1;
          s.write(JSON.stringify({ execute: "qmp_capabilities" }) + "\n");
        } else if (stage === 1 && "return" in msg) {
          stage = 2;
          s.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) }) + "\n");
        } else if (stage === 2) {
          clearTimeout(timer);
          s.end();
          if (msg.error) reject(new Error(`qmp ${command}: ${msg.error.desc}`));
          else resolve(msg.return);
        }
      }
    });
  });
}
