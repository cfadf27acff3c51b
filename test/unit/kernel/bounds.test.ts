// Every per-agent structure is bounded as the process table is: after many
// spawn/stop cycles the tables hold at most the stopped agents the process
// table keeps (1000), not one entry per agent ever spawned.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { AuditLog } from "../../../kernel/audit/index.ts";
import { KernelConfigSchema } from "../../../kernel/config.ts";
import { Kernel } from "../../../kernel/kernel.ts";
import { createInference, type Inference } from "../../../kernel/llm/index.ts";
import { InferenceConfigSchema } from "../../../kernel/llm/config.ts";

const root = mkdtempSync(join(tmpdir(), "aaos-bounds-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

test("1,500 spawn/stop cycles leave at most 1,000 agents in the process, token and scheduler tables", async () => {
  const audit = await AuditLog.open(join(root, "data", "audit"), { durability: "none", registerEnvSecrets: false });
  const log = pino({ level: "silent" });
  let inference!: Inference;
  const kernel = new Kernel({
    config: KernelConfigSchema.parse({}),
    configDir: join(root, "config"),
    dataDir: join(root, "data"),
    audit,
    log,
    inference: (services) =>
      (inference = createInference(InferenceConfigSchema.parse({}), {
        services,
        audit: (e) => services.audit(e),
        registerSecret: () => {},
        log,
        env: {},
        configDir: join(root, "config"),
      })),
  });
  const manifest = "name: cycle\nmodel: claude-haiku-4-5-20251001\ncapabilities: [echo]\n";
  const ids: string[] = [];
  for (let i = 0; i < 1500; i++) {
    const { agent_id } = await kernel.spawn({ manifest });
    ids.push(agent_id);
    await kernel.stop(agent_id);
  }
  expect(kernel.tableSizes()).toEqual({ agents: 1000, tokenAgents: 1000 });
  // the oldest are forgotten everywhere; the newest are still visible to status
  expect(() => kernel.status(ids[0]!)).toThrow(/no such agent/);
  expect(kernel.status(ids.at(-1)!).state).toBe("stopped");
  expect(inference.usage(ids[0]!)).toBeUndefined();
  expect(inference.usage(ids.at(-1)!)).toEqual({ input_tokens: 0, output_tokens: 0 });
  await audit.close();
});
