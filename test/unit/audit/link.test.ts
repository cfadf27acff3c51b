// append(event, link): a record that names an earlier one by seq before
// that one is durable (tool.result's call_seq for an effect-none tool).
import { expect, test } from "bun:test";
import { AuditLog, type AuditIO } from "../../../kernel/audit/index.ts";
import { nodeIO } from "../../../kernel/audit/segments.ts";
import { tempDirsPerTest } from "./temp-dirs.ts";

const dir = tempDirsPerTest();

test("a linked record gets the seq of the record it names, sealed in the same group commit", async () => {
  let syncs = 0; // of segments: HEAD is fsync'd
  const io: Partial<AuditIO> = { fdatasync: (fd) => (syncs++, nodeIO.fdatasync(fd)) };
  const log = await AuditLog.open(dir(), { registerEnvSecrets: false, io });
  await log.append({ kind: "test.first" });
  syncs = 0;
  const call = log.append({ kind: "test.call" });
  const result = log.append({ kind: "test.result", ok: true }, { field: "call_seq", to: call });
  const [c, r] = await Promise.all([call, result]);
  expect(syncs).toBe(1);
  expect(r.seq).toBe(c.seq + 1);
  const { events } = await log.query({ since_seq: c.seq });
  expect(events[1]).toMatchObject({ kind: "test.result", call_seq: c.seq, ok: true });
  expect((await log.verify()).ok).toBe(true);
  await log.close();
});

test("a record linked to one that was durable already gets its seq", async () => {
  const log = await AuditLog.open(dir(), { registerEnvSecrets: false });
  const call = log.append({ kind: "test.call" });
  const { seq } = await call;
  await log.append({ kind: "test.noise" });
  const r = await log.append({ kind: "test.result" }, { field: "call_seq", to: call });
  expect((await log.query({ since_seq: r.seq })).events[0]).toMatchObject({ call_seq: seq });
  await log.close();
});

test("a record linked to one that was not written is not written either, and gets its error", async () => {
  let failing = true;
  const io: Partial<AuditIO> = {
    write: (fd, buf, off, len, pos) =>
      failing
        ? Promise.reject(Object.assign(new Error("ENOSPC"), { code: "ENOSPC" }))
        : nodeIO.write(fd, buf, off, len, pos),
  };
  const log = await AuditLog.open(dir(), { registerEnvSecrets: false, io });
  const call = log.append({ kind: "test.call" });
  const err = await call.catch((e) => e);
  expect(err.message).toMatch(/audit log cannot be written: ENOSPC/);
  failing = false;
  const linked = log.append({ kind: "test.result" }, { field: "call_seq", to: call });
  expect(await linked.catch((e) => e)).toBe(err);
  const other = await log.append({ kind: "test.other" });
  expect((await log.query({})).events.map((e) => e.kind)).toEqual(["test.other"]);
  expect(other.seq).toBe(1);
  await log.close();
});

test("a link to a promise the log did not return is refused", async () => {
  const log = await AuditLog.open(dir(), { registerEnvSecrets: false });
  const bogus = Promise.resolve({ seq: 1, hash: "x" });
  await expect(log.append({ kind: "test.result" }, { field: "call_seq", to: bogus })).rejects.toMatchObject({
    code: -32602,
  });
  await log.close();
});
