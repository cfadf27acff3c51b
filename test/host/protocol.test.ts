// The JSON-RPC 2.0 contract over a real unix socket: framing, batches,
// notifications, spec error codes, oversize lines, garbage, many clients.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { cleanup, rpcError, startKernel, type RunningKernel } from "./harness.ts";

let k: RunningKernel;
beforeAll(async () => {
  k = await startKernel({
    manifests: { echoer: "name: echoer\nmodel: claude-haiku-4-5-20251001\ncapabilities:\n  - echo\n" },
  });
});
afterAll(async () => {
  await k.stop();
  cleanup(k);
});

/** raw socket: send bytes, collect reply lines until `count` lines arrived (ready notification excluded) */
async function raw(payload: string | Buffer, count: number, timeoutMs = 5000): Promise<any[]> {
  return new Promise((resolve, reject) => {
    const sock = connect(k.socket);
    let buf = "";
    const lines: any[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`got ${lines.length}/${count} lines: ${JSON.stringify(lines)}`));
    }, timeoutMs);
    sock.on("data", (d) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (msg.method === "system.ready") continue;
        lines.push(msg);
      }
      if (lines.length >= count) {
        clearTimeout(timer);
        sock.destroy();
        resolve(lines);
      }
    });
    sock.on("connect", () => sock.write(payload));
  });
}

describe("framing and spec errors", () => {
  test("system.ready arrives when a connection opens", async () => {
    expect(k.ready.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(k.ready.boot_id).toMatch(/^[0-9a-f-]{36}$/);
  });

  test("ping answers with pong and uptime", async () => {
    const r = await k.client.call("system.ping");
    expect(r.pong).toBe(true);
    expect(r.uptime_ms).toBeGreaterThanOrEqual(0);
  });

  test("unparseable line: -32700 with id null, connection goes on", async () => {
    const [a, b] = await raw('{"jsonrpc":"2.0","id":1,"method":\n{"jsonrpc":"2.0","id":2,"method":"system.ping"}\n', 2);
    expect(a).toEqual({ jsonrpc: "2.0", id: null, error: { code: -32700, message: expect.any(String) } });
    expect(b.id).toBe(2);
    expect(b.result.pong).toBe(true);
  });

  test("invalid request objects: -32600", async () => {
    const lines = await raw(
      [
        '{"jsonrpc":"1.0","id":1,"method":"system.ping"}',
        '{"jsonrpc":"2.0","id":2}',
        '"hello"',
        '{"jsonrpc":"2.0","id":{"x":1},"method":"system.ping"}',
        "[]",
      ].join("\n") + "\n",
      5,
    );
    for (const l of lines) expect(l.error.code).toBe(-32600);
    // replies are concurrent, so match by id: only the first request had a usable id
    expect(lines.map((l) => l.id).sort()).toEqual([1, 2, null, null, null].sort());
  });

  test("unknown method: -32601", async () => {
    await rpcError(k.client.call("no.such.method"), -32601);
  });

  test("bad params name the field: -32602", async () => {
    const e = await rpcError(k.client.call("agent.status", { agent_id: 42 }), -32602);
    expect(e.message).toContain("agent_id");
    const e2 = await rpcError(k.client.call("system.ping", { surprise: 1 }), -32602);
    expect(e2.message).toContain("surprise");
    const e3 = await rpcError(k.client.call("approval.respond", { id: "x", decision: "maybe" }), -32602);
    expect(e3.message).toContain("decision");
  });

  test("positional params are refused with -32602", async () => {
    const [r] = await raw('{"jsonrpc":"2.0","id":9,"method":"system.ping","params":[1,2]}\n', 1);
    expect(r.error.code).toBe(-32602);
  });

  test("notifications get no reply, even when they fail", async () => {
    const lines = await raw(
      '{"jsonrpc":"2.0","method":"system.ping"}\n{"jsonrpc":"2.0","method":"nope"}\n{"jsonrpc":"2.0","id":"last","method":"system.ping"}\n',
      1,
    );
    expect(lines).toHaveLength(1);
    expect(lines[0].id).toBe("last");
  });

  test("batches: replies for requests only, notifications skipped", async () => {
    const batch = JSON.stringify([
      { jsonrpc: "2.0", id: 1, method: "system.ping" },
      { jsonrpc: "2.0", method: "system.ping" },
      { jsonrpc: "2.0", id: 2, method: "nope" },
      { foo: "bar" },
    ]);
    const [reply] = await raw(batch + "\n", 1);
    expect(Array.isArray(reply)).toBe(true);
    expect(reply).toHaveLength(3);
    const byId = Object.fromEntries(reply.filter((r: any) => r.id !== null).map((r: any) => [r.id, r]));
    expect(byId[1].result.pong).toBe(true);
    expect(byId[2].error.code).toBe(-32601);
    expect(reply.find((r: any) => r.id === null).error.code).toBe(-32600);
  });

  test("a batch of notifications only gets no reply at all", async () => {
    const lines = await raw(
      JSON.stringify([{ jsonrpc: "2.0", method: "system.ping" }]) +
        '\n{"jsonrpc":"2.0","id":7,"method":"system.ping"}\n',
      1,
    );
    expect(lines[0].id).toBe(7);
  });

  test("a line over the 1 MiB cap is answered with an error and discarded; the connection goes on", async () => {
    const big =
      '{"jsonrpc":"2.0","id":1,"method":"system.ping","params":{"x":"' + "a".repeat(2 * 1024 * 1024) + '"}}\n';
    const [a, b] = await raw(big + '{"jsonrpc":"2.0","id":2,"method":"system.ping"}\n', 2, 15000);
    expect(a.id).toBe(null);
    expect(a.error.code).toBe(-32600);
    expect(a.error.message).toContain("exceeds");
    expect(b.id).toBe(2);
    expect(b.result.pong).toBe(true);
  });

  test("a line just under the cap works", async () => {
    const pad = "b".repeat(1024 * 1024 - 200);
    const r = await k.client.call("audit.query", { kind: pad.slice(0, 100) });
    expect(r.events).toEqual([]);
    const line = JSON.stringify({ jsonrpc: "2.0", id: 5, method: "tool.list", params: {} });
    const [x] = await raw(line + " ".repeat(1024 * 1024 - line.length - 10) + "\n", 1);
    expect(x.id).toBe(5);
  });

  test("random bytes never crash the kernel", async () => {
    const sock = connect(k.socket);
    await new Promise((r) => sock.on("connect", r));
    for (let i = 0; i < 50; i++) {
      const junk = Buffer.from(Array.from({ length: 4096 }, () => Math.floor(Math.random() * 256)));
      sock.write(junk);
    }
    sock.write("\n\u0000\u0000{{{\n\xff\xfe\n");
    sock.end();
    await Bun.sleep(300);
    const r = await k.client.call("system.ping");
    expect(r.pong).toBe(true);
    expect(k.proc.exitCode).toBe(null);
  });

  test("a half-written message and a dropped connection leave the kernel alive", async () => {
    const sock = connect(k.socket);
    await new Promise((r) => sock.on("connect", r));
    sock.write('{"jsonrpc":"2.0","id":1,"method":"sys');
    sock.destroy();
    await Bun.sleep(100);
    expect((await k.client.call("system.ping")).pong).toBe(true);
  });

  test("many clients at once, replies matched by id", async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => k.connect()));
    const results = await Promise.all(
      clients.flatMap(({ client }, ci) =>
        Array.from({ length: 25 }, (_, j) =>
          client.call("agent.spawn", { name: "echoer" }).then(async (s) => {
            const out = await client.call("tool.invoke", {
              agent_id: s.agent_id,
              tool: "echo",
              input: { message: `c${ci}-${j}` },
            });
            return out.output.message === `c${ci}-${j}`;
          }),
        ),
      ),
    );
    expect(results.every(Boolean)).toBe(true);
    for (const { client } of clients) client.close();
  });
});

describe("system methods", () => {
  test("system.info", async () => {
    const info = await k.client.call("system.info");
    expect(info).toMatchObject({ version: k.ready.version, boot_id: k.ready.boot_id, mode: "host" });
    expect(info.uptime_ms).toBeGreaterThanOrEqual(0);
  });
});
