// Live configuration through the socket: manifest.put / manifest.delete
// layered over <config>/manifests, config.get / config.apply of kernel.yaml,
// secret.set of a provider key, each against a real host-mode kernel.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { startMessagesServer, type MessagesServer } from "../fixtures/messages-server.ts";
import { cleanup, rpcError, startKernel, type RunningKernel } from "./harness.ts";

setDefaultTimeout(30_000);

const MODEL = "claude-haiku-4-5-20251001";
const manifest = (name: string, prompt = "You help.") => `name: ${name}\nmodel: ${MODEL}\nsystem_prompt: ${prompt}\n`;

const kernels: RunningKernel[] = [];
afterAll(async () => {
  for (const k of kernels) await k.stop();
  for (const d of new Set(kernels.map((k) => k.dir))) cleanup({ dir: d } as RunningKernel);
});

async function start(opts: Parameters<typeof startKernel>[0] = {}) {
  const k = await startKernel(opts);
  kernels.push(k);
  return k;
}

async function auditOf(k: RunningKernel, kind: string) {
  const r = await k.client.call<{ events: any[] }>("audit.query", { kind, limit: 1000 });
  return r.events;
}

describe("manifest.put / manifest.delete", () => {
  test("put, list, spawn by name, override, delete; a bad manifest positioned and nothing written; kept over a restart", async () => {
    const k = await start({ manifests: { base: manifest("base", "From the config partition.") } });
    const dataDir = join(k.dataDir, "state", "manifests");

    // a new name
    const put = await k.client.call<any>("manifest.put", { name: "helper", yaml: manifest("helper") });
    expect(put).toMatchObject({
      name: "helper",
      source: "data",
      overrides: false,
      file: "state/manifests/helper.yaml",
    });
    expect(put.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(readFileSync(join(dataDir, "helper.yaml"), "utf8")).toBe(manifest("helper"));
    expect(readdirSync(dataDir).filter((f) => f.endsWith(".tmp"))).toEqual([]);

    let list = (await k.client.call<any>("manifest.list", {})).manifests;
    expect(list).toEqual([
      { name: "base", file: "base.yaml", source: "config", valid: true },
      { name: "helper", file: "helper.yaml", source: "data", valid: true },
    ]);
    const sp = await k.client.call<any>("agent.spawn", { name: "helper" });
    expect(sp.name).toBe("helper");
    const spawnRec = (await auditOf(k, "agent.spawn")).find((e) => e.agent_id === sp.agent_id);
    expect(spawnRec.source).toBe("state/manifests/helper.yaml");

    // a manifest may name a put one among the agents it may spawn (knownAgents sees the layering)
    await k.client.call("manifest.put", {
      name: "parent",
      yaml: `name: parent\nmodel: ${MODEL}\nspawn_child: [helper]\n`,
    });

    // override a config manifest
    const over = await k.client.call<any>("manifest.put", {
      name: "base",
      yaml: manifest("base", "From the data disk."),
    });
    expect(over.overrides).toBe(true);
    list = (await k.client.call<any>("manifest.list", {})).manifests;
    expect(list.find((m: any) => m.name === "base")).toEqual({
      name: "base",
      file: "base.yaml",
      source: "data",
      overrides: true,
      valid: true,
    });
    const b = await k.client.call<any>("agent.spawn", { name: "base" });
    const bRec = (await auditOf(k, "agent.spawn")).find((e) => e.agent_id === b.agent_id);
    expect(bRec.source).toBe("state/manifests/base.yaml");

    // a bad manifest: -32005 with its position, nothing written
    const before = readdirSync(dataDir).sort();
    const bad = await rpcError(
      k.client.call("manifest.put", {
        name: "broken",
        yaml: `name: broken\nmodel: ${MODEL}\ncapabilities:\n  - "fs_read: /etc"\n`,
      }),
      -32005,
    );
    expect(bad.data).toMatchObject({ line: 4, column: 5, path: "capabilities[0]" });
    // a name that differs from the one it is put as
    const misnamed = await rpcError(k.client.call("manifest.put", { name: "other", yaml: manifest("helper") }), -32005);
    expect(misnamed.data).toMatchObject({ line: 1, path: "name" });
    // an unknown tool, checked as spawn checks it
    await rpcError(
      k.client.call("manifest.put", {
        name: "tooly",
        yaml: `name: tooly\nmodel: ${MODEL}\ncapabilities: [nosuchtool]\n`,
      }),
      -32005,
    );
    await rpcError(k.client.call("manifest.put", { name: "Bad Name", yaml: manifest("x") }), -32602);
    expect(readdirSync(dataDir).sort()).toEqual(before);
    expect((await auditOf(k, "manifest.put")).map((e) => e.name)).toEqual(["helper", "parent", "base"]);

    // delete the data layer: the config manifest shows again
    const del = await k.client.call<any>("manifest.delete", { name: "base" });
    expect(del).toEqual({ name: "base", deleted: true, source: "config" });
    list = (await k.client.call<any>("manifest.list", {})).manifests;
    expect(list.find((m: any) => m.name === "base")).toEqual({
      name: "base",
      file: "base.yaml",
      source: "config",
      valid: true,
    });
    // a name only in the config partition is refused, and stays
    const refused = await rpcError(k.client.call("manifest.delete", { name: "base" }), -32602);
    expect(refused.message).toContain("only in the config partition");
    expect(existsSync(join(k.configDir, "manifests", "base.yaml"))).toBe(true);
    await rpcError(k.client.call("manifest.delete", { name: "nothing" }), -32602);
    const delRecs = await auditOf(k, "manifest.delete");
    expect(delRecs.length).toBe(1);
    expect(delRecs[0]).toMatchObject({ name: "base", config_remains: true });
    expect(delRecs[0].sha256).toMatch(/^[0-9a-f]{64}$/);

    // the data-disk manifests survive a restart
    await k.stop();
    const k2 = await start({ dir: k.dir });
    list = (await k2.client.call<any>("manifest.list", {})).manifests;
    expect(list.map((m: any) => [m.name, m.source])).toEqual([
      ["base", "config"],
      ["helper", "data"],
      ["parent", "data"],
    ]);
    expect((await k2.client.call<any>("agent.spawn", { name: "helper" })).name).toBe("helper");
  });

  test("autostart sees a put manifest at the next boot; agents cannot reach the data layer", async () => {
    const k = await start({
      manifests: {
        reader: `name: reader\nmodel: ${MODEL}\ncapabilities:\n  - "file_read: /*"\n  - "file_write: /*"\n`,
      },
    });
    await k.client.call("manifest.put", {
      name: "starter",
      yaml: `name: starter\nmodel: ${MODEL}\nlifecycle: persistent\nautostart: true\n`,
    });
    const r = await k.client.call<any>("agent.spawn", { name: "reader" });
    const path = join(k.dataDir, "state", "manifests", "starter.yaml");
    const e = await rpcError(
      k.client.call("tool.invoke", { agent_id: r.agent_id, tool: "file_read", input: { path } }),
      -32001,
    );
    expect(e.message).toContain("kernel-private");
    await k.stop();
    const k2 = await start({ dir: k.dir });
    const agents = (await k2.client.call<any>("agent.list", {})).agents;
    expect(agents.map((a: any) => a.name)).toContain("starter");
  });
});

describe("config.get / config.apply", () => {
  test("get shows the file or the defaults; apply validates with a position, reports live and at-reboot sections", async () => {
    const k = await start();
    const path = join(k.configDir, "kernel.yaml");
    const d = await k.client.call<any>("config.get", {});
    expect(d.source).toBe("defaults");
    expect(d.path).toBe(path);
    expect(d.yaml).toContain("max_agents: 4096");
    expect(d.yaml).toContain("timeout: 10m");

    // a bad file: -32602 with line and column, nothing written
    const bad = await rpcError(k.client.call("config.apply", { yaml: "limits:\n  max_agents: lots\n" }), -32602);
    expect(bad.data).toMatchObject({ line: 2, column: 15, path: "limits.max_agents" });
    expect(existsSync(path)).toBe(false);
    await rpcError(k.client.call("config.apply", { yaml: "limits: [\n" }), -32602);
    expect(existsSync(path)).toBe(false);

    const text = "limits:\n  max_agents: 1\napproval:\n  timeout: 2s\nrpc:\n  max_in_flight: 64\n";
    const r = await k.client.call<any>("config.apply", { yaml: text });
    expect(r.applied).toEqual(["approval", "limits"]);
    expect(r.at_reboot).toEqual(["rpc"]);
    expect(r.path).toBe(path);
    expect(readFileSync(path, "utf8")).toBe(text);
    const g = await k.client.call<any>("config.get", {});
    expect(g).toEqual({ yaml: text, source: "kernel.yaml", path });
    const rec = (await auditOf(k, "config.apply"))[0];
    expect(rec).toMatchObject({ applied: ["approval", "limits"], at_reboot: ["rpc"], sha256: r.sha256 });

    // limits applied live: a second agent is refused
    await k.client.call("agent.spawn", { manifest: manifest("one") });
    const full = await rpcError(k.client.call("agent.spawn", { manifest: manifest("two") }), -32008);
    expect(full.message).toContain("limits.max_agents");

    // applying the same text again: nothing to apply; rpc still waits for the reboot
    expect(await k.client.call<any>("config.apply", { yaml: text })).toMatchObject({ applied: [], at_reboot: ["rpc"] });
    // a log level is live; a log file only at reboot
    expect((await k.client.call<any>("config.apply", { yaml: text + "log:\n  level: warn\n" })).applied).toEqual([
      "log",
    ]);
    expect(
      (await k.client.call<any>("config.apply", { yaml: text + "log:\n  level: warn\n  file: k.log\n" })).at_reboot,
    ).toEqual(["log", "rpc"]);
  });
});

test("config.apply: a new approval.timeout holds for the next approval, without a reboot", async () => {
  const k = await start({
    manifests: { asker: `name: asker\nmodel: ${MODEL}\ncapabilities: [echo]\napproval_required: [echo]\n` },
  });
  const r = await k.client.call<any>("config.apply", { yaml: "approval:\n  timeout: 1s\n" });
  expect(r.applied).toEqual(["approval"]);
  const a = await k.client.call<any>("agent.spawn", { name: "asker" });
  const t0 = Date.now();
  await rpcError(
    k.client.call("tool.invoke", { agent_id: a.agent_id, tool: "echo", input: { message: "hi" } }),
    -32003,
  );
  expect(Date.now() - t0).toBeLessThan(5000);
  expect((await auditOf(k, "approval.timeout")).length).toBe(1);
});

describe("secret.set", () => {
  let llm: MessagesServer;
  afterAll(async () => {
    await llm?.stop();
  });

  test("a provider key set live makes agent.run work without a reboot; the key is never shown", async () => {
    const KEY = "sk-ant-live-config-secret-0123456789";
    llm = await startMessagesServer({ apiKey: KEY });
    const k = await start({
      env: { ANTHROPIC_BASE_URL: llm.url },
      kernelYaml: "inference:\n  providers:\n    anthropic:\n      api_key_file: secrets/anthropic_api_key\n",
    });
    const a = await k.client.call<any>("agent.spawn", { manifest: manifest("talker") });
    await rpcError(k.client.call("agent.run", { agent_id: a.agent_id, message: "hello" }), -32006);

    await rpcError(k.client.call("secret.set", { name: "../escape", value: KEY }), -32602);
    await rpcError(k.client.call("secret.set", { name: "..", value: KEY }), -32602);
    const set = await k.client.call<any>("secret.set", { name: "anthropic_api_key", value: KEY });
    expect(set).toEqual({ name: "anthropic_api_key", bytes: KEY.length, file: "secrets/anthropic_api_key" });
    const file = join(k.configDir, "secrets", "anthropic_api_key");
    expect(readFileSync(file, "utf8")).toBe(KEY);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    llm.script([{ text: "Hi there.", usage: { input_tokens: 10, output_tokens: 3 } }]);
    const run = await k.client.call<any>("agent.run", { agent_id: a.agent_id, message: "hello" });
    expect(run.response).toBe("Hi there.");
    expect(llm.requests.at(-1)?.headers?.["x-api-key"] ?? KEY).toBe(KEY);

    // an agent cannot read it
    const reader = await k.client.call<any>("agent.spawn", {
      manifest: `name: reader\nmodel: ${MODEL}\ncapabilities:\n  - "file_read: /*"\n`,
    });
    await rpcError(
      k.client.call("tool.invoke", { agent_id: reader.agent_id, tool: "file_read", input: { path: file } }),
      -32001,
    );
    const rec = (await auditOf(k, "secret.set"))[0];
    expect(rec).toMatchObject({ name: "anthropic_api_key", bytes: KEY.length });
    expect(rec.sha256).toBeUndefined();

    // no reply, log line or audit record carries the key
    const replies = JSON.stringify([
      await k.client.call("config.get", {}),
      await k.client.call("manifest.list", {}),
      await k.client.call("system.info", {}),
      await k.client.call("audit.query", { limit: 1000 }),
    ]);
    expect(replies).not.toContain(KEY);
    await k.stop();
    expect(k.logText()).not.toContain(KEY);
    const auditDir = join(k.dataDir, "audit");
    for (const f of readdirSync(auditDir, { recursive: true }) as string[]) {
      const p = join(auditDir, f);
      if (statSync(p).isFile()) expect(readFileSync(p, "utf8")).not.toContain(KEY);
    }
  });
});
