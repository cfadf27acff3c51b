// make run / make run-uefi: boot the appliance in QEMU and hand the operator
// its serial JSON-RPC console.
//
//   bun qemu/run.ts [--uefi] [--image out/aaos.img] [--kernel out/bzImage] [--rpc ttyS0|hvc0]
//                   [--socket out/serial.sock] [--no-console] [--guestfwd HOSTPORT]
//                   [--web-port 8080] [--run-dir out/run] [--disk virtio|ahci|nvme]
//
// It boots a run-only copy of --image, --run-dir/aaos.img (qemu/rundisk.ts):
// the image stays as built; the copy keeps its data partition between runs
// until the image is rebuilt, and gets the image's AAOS-CFG afresh at every
// start, with the host's ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL or
// OPENAI_BASE_URL / OPENAI_API_KEY / OPENAI_MODEL added.
//
// The RPC line is the unix socket out/serial.sock. When aaosctl's console is
// available and stdin is a terminal, it is started on that socket; otherwise
// talk to it with `aaosctl --serial out/serial.sock …` or
// `socat - UNIX-CONNECT:out/serial.sock` (one JSON-RPC request per line).
// Leaving the console (Ctrl-D, exit) powers the machine off cleanly; Ctrl-]
// detaches and leaves it running (re-attach: aaosctl --serial out/serial.sock console).
//
// The dashboard (kernel.yaml web.listen, guest port 8080) is forwarded from
// the host's 127.0.0.1:--web-port (default 8080; 0 for none) by QEMU's user
// network: open http://127.0.0.1:8080/ and log in with a token that
// `aaosctl dashboard-token` prints.
import { createServer } from "node:net";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { attachConsole } from "./attach.ts";
import { qemuArgs, ROOT } from "./harness.ts";
import { prepareRunDisk } from "./rundisk.ts";

const { values: v } = parseArgs({
  options: {
    uefi: { type: "boolean" },
    image: { type: "string", default: join(ROOT, "out/aaos.img") },
    kernel: { type: "string" },
    rpc: { type: "string", default: "ttyS0" },
    socket: { type: "string", default: join(ROOT, "out/serial.sock") },
    "no-console": { type: "boolean" },
    guestfwd: { type: "string" },
    memory: { type: "string", default: "1024" },
    "web-port": { type: "string", default: "8080" },
    "run-dir": { type: "string", default: join(ROOT, "out/run") },
    // the disk's controller: virtio-blk, SATA (q35's AHCI) or NVMe, as other machines have it
    disk: { type: "string", default: "virtio" },
  },
});

/** the guest port the image's kernel.yaml gives web.listen */
const GUEST_WEB_PORT = 8080;
const webPort = Number(v["web-port"]);
if (!Number.isInteger(webPort) || webPort < 0 || webPort > 65535) {
  console.error(`aaos: --web-port ${v["web-port"]}: expected a TCP port (0: no dashboard forward)`);
  process.exit(2);
}
// QEMU refuses to start when a hostfwd port is taken: say so plainly first
if (webPort > 0) {
  const err = await new Promise<Error | null>((res) => {
    const s = createServer();
    s.once("error", (e) => res(e));
    s.listen(webPort, "127.0.0.1", () => s.close(() => res(null)));
  });
  if (err) {
    console.error(`aaos: host port 127.0.0.1:${webPort} is taken (${(err as NodeJS.ErrnoException).code}):`);
    console.error(`aaos: pick another with  make run WEB_PORT=8081  (or --web-port 0 for no dashboard forward)`);
    process.exit(1);
  }
}

if (!["virtio", "ahci", "nvme"].includes(v.disk!)) {
  console.error(`aaos: --disk ${v.disk}: expected virtio, ahci or nvme`);
  process.exit(2);
}
const runDir = v["run-dir"]!;
mkdirSync(runDir, { recursive: true });
const shown = (p: string) => (relative(process.cwd(), p).startsWith("..") ? p : relative(process.cwd(), p));
let disk;
try {
  disk = prepareRunDisk({ source: v.image!, runDir, env: process.env });
} catch (e) {
  console.error(`aaos: ${(e as Error).message}`);
  process.exit(1);
}
console.error(
  `aaos: booting ${shown(disk.image)}, a run-only copy of ${shown(v.image!)}` +
    (disk.fresh ? " made just now (its data partition starts empty)" : " (its data partition kept from the last run)"),
);
for (const n of disk.notes) console.error(`aaos: ${n}`);
if (!disk.notes.length)
  console.error(
    "aaos: no model provider from the host: ANTHROPIC_API_KEY=sk-ant-… make run (or OPENAI_BASE_URL=http://127.0.0.1:8000/v1 make run)",
  );
rmSync(v.socket!, { force: true });
const consoleFile = join(runDir, "console.log");
const varsFile = join(runDir, "OVMF_VARS.fd");
if (v.uefi && !existsSync(varsFile)) await Bun.write(varsFile, Bun.file("/usr/share/OVMF/OVMF_VARS_4M.fd"));

const argv = qemuArgs(
  {
    image: disk.image,
    disk: { bus: v.disk as "virtio" | "ahci" | "nvme" },
    kernel: v.uefi ? undefined : (v.kernel ?? join(ROOT, "out/bzImage")),
    uefi: v.uefi,
    rpc: v.rpc as "ttyS0" | "hvc0",
    memoryMb: Number(v.memory),
    waitForClient: false,
    guestfwd: v.guestfwd ? [{ guestAddr: "10.0.2.100", guestPort: 8080, hostPort: Number(v.guestfwd) }] : [],
    hostfwd: webPort > 0 ? [{ hostPort: webPort, guestPort: GUEST_WEB_PORT }] : [],
  },
  { rpcSock: v.socket!, consoleFile, varsFile },
);
const accel = argv[argv.indexOf("-accel") + 1];
console.error(
  `aaos: QEMU (${v.uefi ? "UEFI/OVMF" : "-kernel"}, ${accel}${accel!.startsWith("tcg") ? "; AAOS_ACCEL=kvm to use KVM" : ""})`,
);
console.error(`aaos: JSON-RPC on ${v.socket} (guest ${v.rpc}); console log ${consoleFile}`);
if (webPort > 0)
  console.error(`aaos: dashboard: http://127.0.0.1:${webPort}/ (aaosctl dashboard-token prints the tokens)`);
const qemu = Bun.spawn(argv, { stdin: "ignore", stdout: "inherit", stderr: "inherit" });
// ended by a signal (not the terminal's Ctrl-C, which QEMU gets too): QEMU goes with us
process.on("SIGTERM", () => {
  qemu.kill("SIGTERM");
  process.exit(143);
});

const cliMain = join(ROOT, "cli/main.ts");
const interactive = !v["no-console"] && process.stdin.isTTY && existsSync(cliMain);
if (!interactive) {
  console.error(`aaos: talk to it with:  bun cli/main.ts --serial ${v.socket} console`);
  console.error(
    `aaos:               or:  socat - UNIX-CONNECT:${v.socket}   then e.g. {"jsonrpc":"2.0","id":1,"method":"system.info"}`,
  );
  if (webPort > 0) console.error(`aaos: dashboard tokens:  bun cli/main.ts --serial ${v.socket} call web.tokens`);
  console.error(`aaos: power off with system.shutdown {"action":"poweroff"} (or Ctrl-C here to kill QEMU)`);
  process.exit(await qemu.exited);
}

while (!existsSync(v.socket!)) {
  if (qemu.exitCode !== null) process.exit(qemu.exitCode);
  await Bun.sleep(50);
}
if ((await attachConsole({ socket: v.socket!, vm: qemu })) === "detached") qemu.unref();
process.exit(0);
