// bench/memory.ts's third baseline: what the kernel cannot reach ready
// without, each used once as the boot uses it: node:fs and node:crypto (the
// audit log), a unix listener, bun:sqlite (the agent store), a zod schema's
// first parse and a YAML parse (kernel.yaml), a pino logger writing to a
// file. The kernel's own code and boot come on top of this.
import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import pino from "pino";
import { parseDocument } from "yaml";
import { z } from "zod";

const dir = mkdtempSync(join(tmpdir(), "aaos-floor-"));
const db = new Database(join(dir, "state.db"));
db.run("create table if not exists t (k text primary key, v text)");
db.query("insert or replace into t values (?, ?)").run("k", createHash("sha256").update("v").digest("hex"));
const Schema = z.strictObject({
  log: z.strictObject({ level: z.enum(["debug", "info", "warn", "error"]).default("info") }).default({ level: "info" }),
  rpc: z
    .strictObject({
      max_line_bytes: z
        .number()
        .int()
        .positive()
        .default(1 << 20),
    })
    .default({ max_line_bytes: 1 << 20 }),
  tools: z.record(z.string(), z.unknown()).default({}),
});
const config = Schema.parse(parseDocument("log:\n  level: info\nrpc:\n  max_line_bytes: 1048576\n").toJS());
const log = pino({ level: config.log.level }, pino.destination({ dest: join(dir, "log"), sync: false }));
log.info({ config }, "floor ready");
writeFileSync(join(dir, "pid"), String(process.pid));
createServer().listen(join(dir, "sock"), () => console.log("ready"));
(globalThis as { keep?: unknown }).keep = [db, log];
