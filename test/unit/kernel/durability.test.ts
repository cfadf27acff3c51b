// Acknowledged means durable, with the disk failing exactly when we say:
// a real Kernel over a real AuditLog whose writes fail with ENOSPC on
// demand. A change whose record cannot be written is not made.
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
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

/**
 * a kernel whose audit log reports every write of a tool.* record and every
 * fdatasync it completes, in order (each fdatasync followed by what probe() says then)
 */
async function kernelWatchingDisk(
  name: string,
  manifests: Record<string, string>,
  opts: { failWrites?: () => boolean; probe?: () => string } = {},
) {
  const dir = join(root, name);
  const events: string[] = [];
  const audit = await AuditLog.open(join(dir, "data", "audit"), {
    registerEnvSecrets: false,
    io: {
      write: async (fd, buf, off, len, pos) => {
        const text = Buffer.from(buf.subarray(off, off + len)).toString("utf8");
        if (opts.failWrites?.() && text.includes('"tool.'))
          throw Object.assign(new Error("ENOSPC"), { code: "ENOSPC" });
        const n = await nodeIO.write(fd, buf, off, len, pos);
        const kinds = [...text.matchAll(/"kind":"(tool\.[a-z]+)"/g)].map((m) => m[1]);
        if (kinds.length) events.push(`write ${kinds.join(" ")}`);
        return n;
      },
      fdatasync: async (fd) => {
        await nodeIO.fdatasync(fd);
        events.push(opts.probe ? `fdatasync, ${opts.probe()}` : "fdatasync");
      },
    },
  });
  const configDir = join(dir, "config");
  mkdirSync(join(configDir, "manifests"), { recursive: true });
  for (const [n, text] of Object.entries(manifests)) writeFileSync(join(configDir, "manifests", `${n}.yaml`), text);
  const kernel = new Kernel({
    config: KernelConfigSchema.parse({}),
    configDir,
    dataDir: join(dir, "data"),
    audit,
    log: pino({ level: "silent" }),
  });
  return { kernel, audit, events, dir };
}

test("an effect-none tool: tool.call and tool.result in one write and one fdatasync, before the reply", async () => {
  const { kernel, audit, events } = await kernelWatchingDisk("none", {
    echoer: `name: echoer\nmodel: ${MODEL}\ncapabilities: [echo]\n`,
  });
  const { agent_id } = await kernel.spawn({ name: "echoer" });
  events.length = 0;
  await kernel.invokeTool(agent_id, "echo", { message: "hi" }, { via: "rpc" });
  events.push("reply");
  expect(events).toEqual(["write tool.call tool.result", "fdatasync", "reply"]);
  const [call, result] = (await audit.query({ kind: "tool.*" })).events;
  expect(call).toMatchObject({ kind: "tool.call", tool: "echo", input: { message: "hi" } });
  expect(result).toMatchObject({ kind: "tool.result", call_seq: call!.seq, seq: call!.seq + 1, ok: true });
  expect((await audit.verify()).ok).toBe(true);
  await audit.close();
});

test("an effect tool (file_write): tool.call is durable before the file is written, tool.result after", async () => {
  const out = join(root, "written");
  mkdirSync(out);
  const file = join(out, "a.txt");
  const { kernel, audit, events } = await kernelWatchingDisk(
    "effect",
    { writer: `name: writer\nmodel: ${MODEL}\ncapabilities: ["file_write: ${out}/*"]\n` },
    { probe: () => (existsSync(file) ? "file written" : "no file") },
  );
  const { agent_id } = await kernel.spawn({ name: "writer" });
  events.length = 0;
  await kernel.invokeTool(agent_id, "file_write", { path: file, content: "x" }, { via: "rpc" });
  events.push("reply");
  expect(events).toEqual([
    "write tool.call",
    "fdatasync, no file",
    "write tool.result",
    "fdatasync, file written",
    "reply",
  ]);
  await audit.close();
});

test("an effect-none call whose records cannot be written: the caller gets the log's error", async () => {
  let failing = false;
  const { kernel, audit } = await kernelWatchingDisk(
    "none-fails",
    { echoer: `name: echoer\nmodel: ${MODEL}\ncapabilities: [echo]\n` },
    { failWrites: () => failing },
  );
  const { agent_id } = await kernel.spawn({ name: "echoer" });
  failing = true;
  await expect(kernel.invokeTool(agent_id, "echo", { message: "lost" }, { via: "rpc" })).rejects.toMatchObject({
    code: -32603,
    message: expect.stringMatching(/audit log cannot be written: ENOSPC/),
  });
  failing = false;
  await kernel.invokeTool(agent_id, "echo", { message: "kept" }, { via: "rpc" });
  const tool = (await audit.query({ kind: "tool.*" })).events;
  expect(tool.map((e) => [e.kind, (e.input as any)?.message ?? (e.output as any)?.message])).toEqual([
    ["tool.call", "kept"],
    ["tool.result", "kept"],
  ]);
  expect(tool[1]!.call_seq).toBe(tool[0]!.seq);
  expect((await audit.verify()).ok).toBe(true);
  await audit.close();
});
