// MCP both ways (docs/mcp.md), what the kernel's door costs, each figure
// beside a baseline from the same run:
// - the kernel as an MCP server: an echo tools/call by the official v2 client
//   over Streamable HTTP at /mcp (bearer token, the principal's capability
//   check, tool.call + tool.result durable) beside tool.invoke echo over the
//   unix socket (the same check and records, the kernel's own JSON-RPC);
// - an external server's tool: tool.invoke mcp.v2.add (the kernel's v2 client
//   calls the fixture server over loopback; the write-ahead tool.call is
//   durable before it) beside the same client calling the same server
//   directly, from this process, with no kernel in between.
// Run directly: bun bench/run.ts mcp
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { startKernel } from "../test/host/harness.ts";
import { startV2Server } from "../test/fixtures/mcp/v2-server.ts";
import type { Figure } from "./figure.ts";

const CALLS = 300;
const WARM = 30;
const TOKEN = "bench-mcp-token-0123456789abcdef";

function p50(ms: number[]): number {
  const s = [...ms].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function timed(n: number, f: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await f();
    out.push(performance.now() - t0);
  }
  return out;
}

const us = (ms: number) => Math.round(ms * 1000);

export async function benchMcp(): Promise<Figure[]> {
  const fixture = await startV2Server({});
  const k = await startKernel({
    extraListen: ["http:127.0.0.1:0"],
    manifests: {
      desk: "name: desk\nmodel: claude-haiku-4-5-20251001\ncapabilities: [echo]\n",
      tools: 'name: tools\nmodel: claude-haiku-4-5-20251001\ncapabilities: ["tool: mcp.v2.add"]\n',
    },
    kernelYaml: `mcp:\n  clients:\n    desk: {manifest: desk, token_file: secrets/desk.token}\n  servers:\n    v2: {url: "${fixture.url}"}\n`,
  });
  mkdirSync(join(k.configDir, "secrets"), { recursive: true });
  writeFileSync(join(k.configDir, "secrets", "desk.token"), TOKEN);
  try {
    const web = await k.client.call<{ urls: string[] }>("web.tokens", {});
    const mcp = new Client({ name: "bench", version: "1" }, { versionNegotiation: { mode: "auto" } });
    await mcp.connect(
      new StreamableHTTPClientTransport(new URL("mcp", web.urls[0]), {
        requestInit: { headers: { authorization: `Bearer ${TOKEN}` } },
      }),
    );
    const { clients } = await k.client.call<{ clients: { name: string; agent_id: string }[] }>("mcp.clients", {});
    const desk = clients.find((c) => c.name === "desk")!.agent_id;
    const viaMcp = () => mcp.callTool({ name: "echo", arguments: { message: "hi" } });
    const viaRpc = () => k.client.call("tool.invoke", { agent_id: desk, tool: "echo", input: { message: "hi" } });
    await timed(WARM, viaMcp);
    await timed(WARM, viaRpc);
    const m: number[] = [];
    const r: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      m.push(...(await timed(1, viaMcp)));
      r.push(...(await timed(1, viaRpc)));
    }

    // the external server: through the kernel, and directly
    const deadline = Date.now() + 10_000;
    while (
      (await k.client.call<{ servers: { state: string }[] }>("mcp.servers", {})).servers[0]?.state !== "connected"
    ) {
      if (Date.now() > deadline) throw new Error("the fixture MCP server did not connect");
      await Bun.sleep(50);
    }
    const { agent_id: tools } = await k.client.call<{ agent_id: string }>("agent.spawn", { name: "tools" });
    const direct = new Client({ name: "bench-direct", version: "1" }, { versionNegotiation: { mode: "auto" } });
    await direct.connect(new StreamableHTTPClientTransport(new URL(fixture.url)));
    const viaKernel = () =>
      k.client.call("tool.invoke", { agent_id: tools, tool: "mcp.v2.add", input: { a: 1, b: 2 } });
    const viaDirect = () => direct.callTool({ name: "add", arguments: { a: 1, b: 2 } });
    await timed(WARM, viaKernel);
    await timed(WARM, viaDirect);
    const kx: number[] = [];
    const dx: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      kx.push(...(await timed(1, viaKernel)));
      dx.push(...(await timed(1, viaDirect)));
    }
    await mcp.close();
    await direct.close();
    return [
      {
        name: `MCP tools/call echo over HTTP /mcp (v2 client, 2026-07-28) p50 (of ${CALLS})`,
        value: us(p50(m)),
        unit: "µs",
        baseline: { name: "tool.invoke echo over the unix socket p50", value: us(p50(r)) },
      },
      {
        name: `tool.invoke mcp.v2.add (the kernel's client → fixture server) p50 (of ${CALLS})`,
        value: us(p50(kx)),
        unit: "µs",
        baseline: { name: "the same call by a v2 client straight to the server p50", value: us(p50(dx)) },
      },
    ];
  } finally {
    await k.stop();
    await fixture.stop();
    rmSync(k.dir, { recursive: true, force: true });
  }
}
