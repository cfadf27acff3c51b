// End to end on the real image, under QEMU (TCG): boot, system.ready on the
// serial line, an agent from AAOS-CFG runs against the local Messages API
// server (reached only through QEMU's guestfwd), its file_write waits for
// approval given over the serial line, the file lands on AAOS-DATA, the audit
// chain verifies; reboot; everything is still there and the sequence goes
// on; poweroff and QEMU exits by itself. `make test-e2e` builds the image first.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startMessagesServer, type MessagesServer } from "../fixtures/messages-server.ts";
import { bootVM, type VM } from "../../qemu/harness.ts";
import { checkDataFs, cleanupDisks, imageArtifacts, makeDisk, readDataFile } from "../../qemu/disk.ts";

const API_KEY = "sk-ant-e2e-not-a-real-key";
const MODEL = "claude-haiku-4-5-20251001";

const config = {
  "kernel.yaml": `network:
  mode: dhcp
inference:
  providers:
    anthropic:
      base_url: http://10.0.2.100:8080
      api_key_file: secrets/anthropic_api_key
`,
  "secrets/anthropic_api_key": API_KEY + "\n",
  "manifests/writer.yaml": `name: writer
model: ${MODEL}
system_prompt: "You write files for the operator."
capabilities:
  - "file_write: /data/files/*"
  - "file_read: /data/files/*"
approval_required:
  - file_write
`,
};

let server: MessagesServer;
let vm: VM | null = null;
let disk: string;

beforeAll(async () => {
  const a = imageArtifacts();
  if (a.missing.length) throw new Error(`missing ${a.missing.join(", ")}: run make image (make test-e2e does)`);
  server = await startMessagesServer({ port: 0, hostname: "127.0.0.1", apiKey: API_KEY });
  disk = makeDisk(config);
});

afterAll(async () => {
  vm?.kill();
  await server?.stop();
  cleanupDisks();
});

function writeStep(tag: string, path: string, content: string) {
  server.script([
    { match: { contains: tag }, content: [{ type: "tool_use", name: "file_write", input: { path, content } }] },
    { match: { contains: "tool_result" }, text: `Wrote ${path}.` },
  ]);
}

/** run the writer on message, approve its file_write over the serial line, return the run result */
async function runWithApproval(vm: VM, agentId: string, message: string) {
  const run = vm.call("agent.run", { agent_id: agentId, message }, 300_000);
  let approval: any = null;
  for (let i = 0; i < 600 && !approval; i++) {
    const { approvals } = await vm.call("approval.list", {});
    approval = approvals.find((a: any) => a.agent_id === agentId);
    if (!approval) await Bun.sleep(250);
  }
  expect(approval).toBeTruthy();
  expect(approval.tool).toBe("file_write");
  expect(await vm.call("approval.respond", { id: approval.id, decision: "approve" })).toEqual({
    id: approval.id,
    decision: "approve",
  });
  return run;
}

test("boot → agent from AAOS-CFG → approved file_write on /data → reboot → still there → poweroff", async () => {
  vm = await bootVM({
    image: disk,
    kernel: imageArtifacts().bzImage,
    guestfwd: [{ guestAddr: "10.0.2.100", guestPort: 8080, hostPort: server.port }],
  });
  const ready1 = await vm.waitForReady();
  expect(ready1.params.boot_id).toBeString();
  const info = await vm.call("system.info");
  expect(info.mode).toBe("init");
  // the boot report: both partitions found by label and mounted, /data persistent
  expect(info.boot.config).toMatchObject({ mounted: true });
  expect(info.boot.data).toMatchObject({ mounted: true, persistent: true });

  // --- first boot: spawn from the config partition, run, approve, verify
  const spawned = await vm.call("agent.spawn", { name: "writer" });
  expect(spawned.name).toBe("writer");
  writeStep("first-file", "/data/files/first.txt", "written before the reboot\n");
  const r1 = await runWithApproval(vm, spawned.agent_id, "please write the first-file");
  expect(r1.tool_calls.map((c: any) => [c.tool, c.ok])).toEqual([["file_write", true]]);
  expect(r1.response).toContain("Wrote /data/files/first.txt");
  // the model was reached through guestfwd, with the key from AAOS-CFG
  expect(server.requests.length).toBeGreaterThanOrEqual(2);
  // (the server was started with apiKey: a request without this key would have been a 401)
  expect(server.requests.map((r) => r.outcome)).toEqual(server.requests.map(() => "ok"));
  const h = server.requests[0]!.headers;
  expect(h["x-api-key"] ?? h["authorization"]?.replace(/^Bearer\s+/i, "")).toBe(API_KEY);

  const read1 = await vm.call("tool.invoke", {
    agent_id: spawned.agent_id,
    tool: "file_read",
    input: { path: "/data/files/first.txt" },
  });
  expect(JSON.stringify(read1)).toContain("written before the reboot");
  const v1 = await vm.call("audit.verify");
  expect(v1.ok).toBe(true);

  // --- reboot: same QEMU, the serial socket stays connected
  expect(await vm.call("system.shutdown", { action: "reboot" })).toEqual({ ok: true });
  const ready2 = await vm.waitForReady();
  expect(ready2.params.boot_id).not.toBe(ready1.params.boot_id);

  const v2 = await vm.call("audit.verify");
  expect(v2.ok).toBe(true);
  expect(v2.events).toBeGreaterThan(v1.events);
  const boots = await vm.call("audit.query", { kind: "system.boot", limit: 100 });
  expect(boots.events.length).toBe(2);

  const again = await vm.call("agent.spawn", { name: "writer" });
  const read2 = await vm.call("tool.invoke", {
    agent_id: again.agent_id,
    tool: "file_read",
    input: { path: "/data/files/first.txt" },
  });
  expect(JSON.stringify(read2)).toContain("written before the reboot");

  // the sequence goes on after the reboot
  writeStep("second-file", "/data/files/second.txt", "written after the reboot\n");
  const r2 = await runWithApproval(vm, again.agent_id, "please write the second-file");
  expect(r2.tool_calls.map((c: any) => [c.tool, c.ok])).toEqual([["file_write", true]]);
  expect((await vm.call("audit.verify")).ok).toBe(true);

  // --- poweroff: QEMU exits on its own
  expect(await vm.call("system.shutdown", { action: "poweroff" })).toEqual({ ok: true });
  expect(await vm.waitExit(120_000)).toBe(0);
  vm = null;

  // the host reads the data partition: both files, the audit log, a clean file system
  expect(readDataFile(disk, "files/first.txt")).toBe("written before the reboot\n");
  expect(readDataFile(disk, "files/second.txt")).toBe("written after the reboot\n");
  const fs = checkDataFs(disk);
  expect({ clean: fs.clean, needsRecovery: fs.needsRecovery, fsckOk: fs.fsckOk }).toEqual({
    clean: true,
    needsRecovery: false,
    fsckOk: true,
  });
}, 900_000);
