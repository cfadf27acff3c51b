// `make run` speaks to a model out of the box: qemu/run.ts (what `make run`
// runs) with the host's environment as an operator would set it, URLs on the
// host's loopback: ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL, and an
// OpenAI-compatible endpoint (OPENAI_BASE_URL, OPENAI_API_KEY, OPENAI_MODEL).
// The guest reaches the fixture server (Messages API and chat completions) at
// 10.0.2.2 (QEMU's user network) with the keys from the run-only copy's
// AAOS-CFG; out/aaos.img is byte-identical before and after. The same boot is
// the SATA one: the disk is on q35's AHCI controller (--disk ahci), and
// system.info names its partitions /dev/sdaN.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RpcClient } from "../../cli/client.ts";
import { startMessagesServer, type MessagesServer } from "../fixtures/messages-server.ts";
import { ROOT } from "../../qemu/harness.ts";
import { gptPartitions, imageArtifacts } from "../../qemu/disk.ts";
import { readFatFile } from "../../qemu/rundisk.ts";

const KEY = "sk-ant-make-run-e2e-not-a-real-key";
const sha = (f: string) => createHash("sha256").update(readFileSync(f)).digest("hex");

let server: MessagesServer;
let dir = "";
let run: ReturnType<typeof Bun.spawn> | null = null;
beforeAll(async () => {
  server = await startMessagesServer({
    port: 0,
    hostname: "127.0.0.1",
    apiKey: KEY,
    defaultText: "Hello from the host's model.",
  });
  dir = mkdtempSync(join(tmpdir(), "aaos-make-run-"));
});
afterAll(async () => {
  // run.ts ends its QEMU on SIGTERM
  if (run && run.exitCode === null) {
    run.kill("SIGTERM");
    await Promise.race([run.exited, Bun.sleep(10_000)]);
  }
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** connect to the serial socket and wait until the kernel answers (it announced system.ready before we came) */
async function connect(sock: string, timeoutMs = 300_000): Promise<RpcClient> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (run?.exitCode !== null) throw new Error(`qemu/run.ts exited (${run?.exitCode})`);
    try {
      const c = await RpcClient.unix(sock, 2000);
      try {
        await c.call("system.ping", {}, { timeoutMs: 5000 });
        return c;
      } catch {
        c.close();
      }
    } catch {}
    if (Date.now() > deadline) throw new Error(`no answer on ${sock} within ${timeoutMs} ms`);
    await Bun.sleep(500);
  }
}

test("make run: the host's ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL reach the guest on a run-only copy; an agent answers", async () => {
  const a = imageArtifacts();
  if (a.missing.length) throw new Error(`missing ${a.missing.join(", ")}: run make image`);
  const before = sha(a.image);
  const sock = join(dir, "serial.sock");
  const runDir = join(dir, "run");
  const t0 = Date.now();
  run = Bun.spawn(
    [process.execPath, join(ROOT, "qemu/run.ts"), "--image", a.image, "--kernel", a.bzImage, "--disk", "ahci"].concat([
      "--no-console",
      "--web-port",
      "0",
      "--socket",
      sock,
      "--run-dir",
      runDir,
    ]),
    {
      // an OpenAI-compatible endpoint as well: the same fixture server serves /v1/chat/completions
      env: {
        ...process.env,
        ANTHROPIC_API_KEY: KEY,
        ANTHROPIC_BASE_URL: server.url,
        OPENAI_BASE_URL: `${server.url}/v1`,
        OPENAI_API_KEY: KEY,
        OPENAI_MODEL: "fixture-llama",
      },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    },
  );
  let said = "";
  void (async () => {
    for await (const c of run!.stderr as ReadableStream<Uint8Array>) said += new TextDecoder().decode(c);
  })();
  const guestUrl = server.url.replace("127.0.0.1", "10.0.2.2");
  let c = await connect(sock);
  const readyMs = Date.now() - t0;

  // what run.ts told the operator: a copy, where the key and the URL went, never the key itself
  expect(said).toMatch(/booting \S+\/run\/aaos\.img, a run-only copy of \S*out\/aaos\.img made just now/);
  expect(said).toContain("model provider: Anthropic, key from the host's ANTHROPIC_API_KEY");
  expect(said).toContain(`Anthropic base URL ${guestUrl} (the host's ${server.url})`);
  expect(said).not.toContain(KEY);

  const info = await c.call<any>("system.info");
  expect(info.inference.anthropic).toEqual({
    key_source: "api_key_file",
    api_key_file: "secrets/anthropic_api_key",
    base_url: guestUrl,
  });
  expect(info.inference.openai_compatible).toEqual([
    { name: "host", base_url: `${guestUrl}/v1`, key: true, models: ["fixture-llama"] },
  ]);
  // the SATA disk: every partition found on /dev/sda
  expect(info.boot.config.device).toMatch(/^\/dev\/sda\d+$/);
  expect(info.boot.data.device).toMatch(/^\/dev\/sda\d+$/);
  expect(info.boot.data).toMatchObject({ mounted: true, persistent: true });

  // the shipped assistant manifest, its model answered by the host's server with the host's key
  const r = await c.call<any>(
    "agent.spawn_and_run",
    { name: "assistant", message: "Say hello." },
    { timeoutMs: 300_000 },
  );
  expect(r.response).toBe("Hello from the host's model.");
  expect(server.requests.length).toBeGreaterThanOrEqual(1);
  expect(server.requests.map((q) => q.outcome)).toEqual(server.requests.map(() => "ok"));
  // (the server refuses any other key with a 401; SDK 1.x sends it as a Bearer token)
  const h = server.requests[0]!.headers;
  expect(h["x-api-key"] ?? h["authorization"]?.replace(/^Bearer\s+/i, "")).toBe(KEY);
  expect(server.requests.map((q) => q.route)).toEqual(server.requests.map(() => "messages"));

  // a manifest naming OPENAI_MODEL goes to the OpenAI-compatible endpoint, with OPENAI_API_KEY
  const o = await c.call<any>(
    "agent.spawn_and_run",
    { manifest: "name: local\nmodel: fixture-llama\nsystem_prompt: Be brief.\n", message: "Say hello." },
    { timeoutMs: 300_000 },
  );
  expect(o.response).toBe("Hello from the host's model.");
  const chat = server.requests.filter((q) => q.route === "chat");
  expect(chat.length).toBeGreaterThanOrEqual(1);
  expect(chat.map((q) => [q.outcome, q.body.model])).toEqual(chat.map(() => ["ok", "fixture-llama"]));
  c.close();

  // the console's greeting names the provider (the line takes one client at a time)
  const con = Bun.spawnSync([process.execPath, join(ROOT, "cli/main.ts"), "--serial", sock, "console"], {
    stdin: Buffer.from("exit\n"),
    env: { ...process.env, NO_COLOR: "1", AAOS_MAKE_RUN: "1" },
    timeout: 60_000,
  });
  expect(con.exitCode).toBe(0);
  const greeting = con.stdout.toString();
  expect(greeting).toContain(`model: Anthropic at ${guestUrl} (key: secrets/anthropic_api_key)`);
  expect(greeting).toContain(`model: OpenAI-compatible "host" at ${guestUrl}/v1`);
  expect(greeting).not.toContain("no model provider");

  c = await connect(sock);
  await c.call("system.shutdown", { action: "poweroff" }, { timeoutMs: 30_000 }).catch(() => {});
  const code = await Promise.race([run.exited, Bun.sleep(120_000).then(() => "timeout")]);
  expect(code).toBe(0);
  run = null;
  console.log(`test/e2e/make-run: AHCI, -kernel: answering in ${readyMs} ms, ${Date.now() - t0} ms to power-off`);

  // the key is on the run-only copy, and out/aaos.img is as it was built
  const copy = join(runDir, "aaos.img");
  const off = gptPartitions(copy).find((p) => p.name === "AAOS-CFG")!.firstLba * 512;
  expect(readFatFile(copy, off, "secrets/anthropic_api_key")).toBe(KEY + "\n");
  expect(readFatFile(copy, off, "secrets/openai_api_key")).toBe(KEY + "\n");
  expect(readFatFile(a.image, off, "secrets/anthropic_api_key")).toBeNull();
  expect(sha(a.image)).toBe(before);
}, 900_000);
