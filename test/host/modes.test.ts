// Host mode as an operator starts it: stdio transport (logs never on the RPC
// stream), the bun-compiled binary with the same flags, a restart that
// continues the audit chain, kernel.yaml's log.file, and clear errors for
// bad flags and config.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { RpcClient } from "../../cli/client.ts";
import { cleanup, startKernel } from "./harness.ts";

const ROOT = resolve(import.meta.dir, "../..");
const tmp = mkdtempSync(join(tmpdir(), "aaos-modes-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function dirs(name: string) {
  const d = join(tmp, name);
  mkdirSync(join(d, "config", "manifests"), { recursive: true });
  return { config: join(d, "config"), data: join(d, "data") };
}

async function runStdio(cmd: string[], input: string): Promise<{ stdout: string; stderr: string; code: number }> {
  const { config, data } = dirs(`stdio-${Math.random().toString(16).slice(2)}`);
  const p = Bun.spawn([...cmd, "--config", config, "--data", data, "--listen", "stdio", "--log-level", "debug"], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  const stderr = new Response(p.stderr).text();
  p.stdin.write(input);
  await p.stdin.flush();
  // stopped once the reply is out (not after a fixed wait: a loaded machine boots slower)
  let stdout = "";
  const reader = p.stdout.getReader();
  const decoder = new TextDecoder();
  const deadline = setTimeout(() => p.kill("SIGKILL"), 20_000);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    stdout += decoder.decode(value, { stream: true });
    if (/"id":1\b/.test(stdout) && stdout.endsWith("\n")) {
      p.kill("SIGTERM");
      break;
    }
  }
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    stdout += decoder.decode(value, { stream: true });
  }
  clearTimeout(deadline);
  return { stdout, stderr: await stderr, code: await p.exited };
}

describe("stdio transport", () => {
  test("only JSON-RPC on stdout; logs on stderr", async () => {
    const r = await runStdio(
      [process.execPath, join(ROOT, "kernel/main.ts")],
      '{"jsonrpc":"2.0","id":1,"method":"system.ping"}\n',
    );
    const lines = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ method: "system.ready" });
    expect(lines[1]).toMatchObject({ id: 1, result: { pong: true } });
    expect(lines).toHaveLength(2);
    expect(r.stderr).toContain("aaos kernel ready");
    expect(r.code).toBe(0);
  });
});

describe("the compiled binary", () => {
  test("bun build --compile, then the same flags work", async () => {
    const bin = join(tmp, "aaos-kernel");
    const build = Bun.spawnSync(
      [process.execPath, "build", "--compile", join(ROOT, "kernel/main.ts"), "--outfile", bin],
      { stdout: "pipe", stderr: "pipe" },
    );
    expect(build.exitCode, build.stderr.toString()).toBe(0);
    const v = Bun.spawnSync([bin, "--version"]);
    expect(v.stdout.toString().trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const k = await startKernel({ command: [bin], manifests: { e: "name: e\nmodel: m\ncapabilities: [echo]\n" } });
    try {
      const s = await k.client.call("agent.spawn", { name: "e" });
      expect(
        (await k.client.call("tool.invoke", { agent_id: s.agent_id, tool: "echo", input: { message: "compiled" } }))
          .output.message,
      ).toBe("compiled");
    } finally {
      await k.stop();
      cleanup(k);
    }
  }, 120_000);
});

describe("restart", () => {
  test("the audit sequence and chain continue across a restart", async () => {
    const k1 = await startKernel({ manifests: { e: "name: e\nmodel: m\ncapabilities: [echo]\n" } });
    const s = await k1.client.call("agent.spawn", { name: "e" });
    await k1.client.call("tool.invoke", { agent_id: s.agent_id, tool: "echo", input: { message: "before" } });
    const head1 = (await k1.client.call("system.info")).audit_head;
    await k1.stop();
    const k2 = await startKernel({ dir: k1.dir });
    try {
      const after = await k2.client.call("audit.query", { since_seq: head1.seq, limit: 10 });
      expect(after.events[0].seq).toBe(head1.seq);
      const next = after.events.find((e: any) => e.kind === "system.boot");
      expect(next.seq).toBeGreaterThan(head1.seq);
      const v = await k2.client.call("audit.verify");
      expect(v.ok).toBe(true);
      expect(v.events).toBeGreaterThan(head1.seq);
    } finally {
      await k2.stop();
      cleanup(k2);
    }
  });
});

describe("kernel.yaml log.file", () => {
  const main = [process.execPath, join(ROOT, "kernel/main.ts")];
  test("is the log file when --log-file is absent (relative: to the data directory), and kernel-private", async () => {
    const { config, data } = dirs("logfile");
    const shared = join(tmp, "logfile", "shared");
    mkdirSync(shared, { recursive: true });
    writeFileSync(join(shared, "notes.txt"), "notes");
    const run = async (file: string) => {
      writeFileSync(join(config, "kernel.yaml"), `log:\n  file: ${file}\n`);
      writeFileSync(
        join(config, "manifests", "reader.yaml"),
        `name: reader\nmodel: m\ncapabilities:\n  - "file_read: ${shared}/*"\n`,
      );
      const sock = join(tmp, `logfile-${Math.random().toString(16).slice(2)}.sock`);
      const p = Bun.spawn([...main, "--config", config, "--data", data, "--listen", `unix:${sock}`], {
        stdout: "pipe",
        stderr: "pipe",
      });
      for (const deadline = Date.now() + 20_000; !existsSync(sock) && Date.now() < deadline;) await Bun.sleep(20);
      let client: RpcClient | null = null;
      for (let i = 0; !client && i < 100; i++)
        client = await RpcClient.unix(sock).catch(() => Bun.sleep(20).then(() => null));
      // served: the kernel is past its boot and handles SIGTERM
      await client!.waitFor("system.ready", 5000);
      return { p, client: client!, stderr: () => new Response(p.stderr).text() };
    };

    // absolute, beside files an agent may read: the agent cannot read or list it
    const k = await run(join(shared, "kernel.log"));
    try {
      const { agent_id } = await k.client.call("agent.spawn", { name: "reader" });
      const denied = await k.client
        .call("tool.invoke", { agent_id, tool: "file_read", input: { path: join(shared, "kernel.log") } })
        .catch((e) => e);
      expect(denied.code).toBe(-32001);
      expect(denied.message).toContain("the kernel's log file");
      const listed = await k.client.call("tool.invoke", { agent_id, tool: "file_list", input: { path: shared } });
      expect(listed.output.entries.map((e: any) => e.name)).toEqual(["notes.txt"]);
    } finally {
      k.client.close();
      k.p.kill("SIGTERM");
      await k.p.exited;
    }
    expect(await k.stderr()).not.toContain("aaos kernel ready");
    expect(readFileSync(join(shared, "kernel.log"), "utf8")).toContain("aaos kernel ready");

    // relative: beneath the data directory
    const k2 = await run("logs/mine.log");
    k2.client.close();
    k2.p.kill("SIGTERM");
    await k2.p.exited;
    expect(readFileSync(join(data, "logs", "mine.log"), "utf8")).toContain("aaos kernel ready");
  }, 30_000);
});

describe("bad invocations", () => {
  const main = [process.execPath, join(ROOT, "kernel/main.ts")];
  test("missing flags: usage on stderr, exit 2", () => {
    const r = Bun.spawnSync([...main, "--config", "/nonexistent"], { stderr: "pipe" });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.toString()).toContain("missing --data, --listen");
  });
  test("a bad --listen is refused", () => {
    const r = Bun.spawnSync([...main, "--config", tmp, "--data", tmp, "--listen", "tcp:1234"], { stderr: "pipe" });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.toString()).toContain("unix:PATH");
  });
  test("an invalid kernel.yaml names the field, line and column", () => {
    const { config, data } = dirs("badcfg");
    writeFileSync(join(config, "kernel.yaml"), "limits:\n  max_agnets: 3\n");
    const r = Bun.spawnSync([...main, "--config", config, "--data", data, "--listen", `unix:${join(tmp, "x.sock")}`], {
      stderr: "pipe",
    });
    expect(r.exitCode).toBe(1);
    expect(r.stderr.toString()).toContain("limits.max_agnets: unknown field (line 2, column 3)");
    expect(existsSync(join(tmp, "x.sock"))).toBe(false);
  });
});
