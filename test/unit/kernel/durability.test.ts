// Acknowledged means durable, with the disk failing exactly when we say:
// a real Kernel over a real AuditLog whose writes fail with ENOSPC on
// demand. A change whose record cannot be written is not made.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { AuditLog } from "../../../kernel/audit/index.ts";
import { nodeIO } from "../../../kernel/audit/segments.ts";
import { KernelConfigSchema } from "../../../kernel/config.ts";
import { Kernel } from "../../../kernel/kernel.ts";

const root = mkdtempSync(join(tmpdir(), "aaos-durable-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const MODEL = "claude-haiku-4-5-20251001";

async function kernelWithFailingDisk() {
  let failing = false;
  const enospc = () => Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
  const audit = await AuditLog.open(join(root, "data", "audit"), {
    registerEnvSecrets: false,
    io: {
      write: (fd, buf, off, len, pos) => (failing ? Promise.reject(enospc()) : nodeIO.write(fd, buf, off, len, pos)),
    },
  });
  const configDir = join(root, "config");
  mkdirSync(join(configDir, "manifests"), { recursive: true });
  writeFileSync(join(configDir, "manifests", "sender.yaml"), `name: sender\nmodel: ${MODEL}\nmessage_send: [inbox]\n`);
  writeFileSync(
    join(configDir, "manifests", "inbox.yaml"),
    `name: inbox\nmodel: ${MODEL}\ncapabilities: ["tool: message_read"]\n`,
  );
  const kernel = new Kernel({
    config: KernelConfigSchema.parse({}),
    configDir,
    dataDir: join(root, "data"),
    audit,
    log: pino({ level: "silent" }),
  });
  return { kernel, audit, fail: (on: boolean) => (failing = on) };
}

test("message.send that cannot be recorded is not delivered, and the slot is given back", async () => {
  const { kernel, audit, fail } = await kernelWithFailingDisk();
  const from = await kernel.spawn({ name: "sender" });
  const to = await kernel.spawn({ name: "inbox" });
  fail(true);
  await expect(kernel.sendMessage(from.agent_id, "inbox", "lost")).rejects.toThrow(
    /message\.send was not recorded in the audit log, so the message was not delivered/,
  );
  fail(false);
  expect(kernel.readMessages(to.agent_id, 10)).toEqual([]);
  await kernel.sendMessage(from.agent_id, "inbox", "kept");
  expect(kernel.readMessages(to.agent_id, 10).map((m) => m.message)).toEqual(["kept"]);
  expect((await audit.verify()).ok).toBe(true);
  await audit.close();
});
