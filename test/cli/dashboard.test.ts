// aaosctl dashboard-token (web.tokens) against real host-mode kernels: one
// with the dashboard's HTTP listener, one without. The tokens it prints are
// the ones on the data disk, and they log in to the dashboard.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, startKernel, type RunningKernel } from "../host/harness.ts";
import { aaosctl } from "./run-cli.ts";

setDefaultTimeout(30_000);

let web: RunningKernel;
let plain: RunningKernel;

beforeAll(async () => {
  [web, plain] = await Promise.all([startKernel({ extraListen: ["http:127.0.0.1:0"] }), startKernel()]);
});
afterAll(async () => {
  for (const k of [web, plain]) {
    if (!k) continue;
    await k.stop();
    cleanup(k);
  }
});

const tokenFile = (role: string) => readFileSync(join(web.dataDir, "state", "web", `${role}.token`), "utf8").trim();

async function login(url: string, token: string): Promise<{ status: number; body: any }> {
  const r = await fetch(url + "login", {
    method: "POST",
    headers: { origin: url.replace(/\/$/, ""), "content-type": "application/json" },
    body: JSON.stringify({ token }),
  });
  return { status: r.status, body: await r.json() };
}

describe("with the dashboard on", () => {
  test("prints the operator and viewer tokens and the URL; they are the files' and they log in", async () => {
    const r = await aaosctl(["--socket", web.socket, "dashboard-token"]);
    expect(r.code).toBe(0);
    const lines = Object.fromEntries(
      r.stdout
        .trim()
        .split("\n")
        .map((l) => l.split(/:\s+(.*)/).slice(0, 2) as [string, string]),
    );
    expect(lines.operator).toBe(tokenFile("operator"));
    expect(lines.viewer).toBe(tokenFile("viewer"));
    expect(lines.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(r.stderr).toContain("login form");
    expect(await login(lines.url!, lines.operator!)).toEqual({ status: 200, body: { role: "operator" } });
    expect(await login(lines.url!, lines.viewer!)).toEqual({ status: 200, body: { role: "viewer" } });
  });

  test("--json prints web.tokens' result as it is", async () => {
    const r = await aaosctl(["--socket", web.socket, "dashboard-token", "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(Object.keys(j).sort()).toEqual(["operator", "urls", "viewer"]);
    expect(j.operator).toBe(tokenFile("operator"));
    expect(j.viewer).toBe(tokenFile("viewer"));
    expect(j.urls).toHaveLength(1);
    expect(r.stderr).toBe("");
  });

  test("each request is in the audit log (web.tokens, transport unix), without the tokens", async () => {
    const r = await aaosctl(["--socket", web.socket, "audit", "--kind", "web.tokens", "--json"]);
    expect(r.code).toBe(0);
    const events = JSON.parse(r.stdout).events as any[];
    expect(events.length).toBeGreaterThanOrEqual(2);
    for (const e of events) expect(e).toMatchObject({ kind: "web.tokens", agent_id: null, transport: "unix" });
    expect(r.stdout).not.toContain(tokenFile("operator"));
  });
});

describe("with the dashboard off", () => {
  test("prints the kernel's message and exits 1", async () => {
    const r = await aaosctl(["--socket", plain.socket, "dashboard-token"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toStartWith(
      "error: the dashboard is off: kernel.yaml web.listen (or --listen http:HOST:PORT) turns it on\n",
    );
    expect(r.stderr).toContain("docs/dashboard.md");
  });

  test("--json: the error as JSON, exit 1", async () => {
    const r = await aaosctl(["--socket", plain.socket, "dashboard-token", "--json"]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).error).toMatchObject({
      code: -32601,
      message: expect.stringContaining("dashboard is off"),
    });
  });
});

test("--help names the method and how to rotate a token", async () => {
  const r = await aaosctl(["dashboard-token", "--help"]);
  expect(r.code).toBe(0);
  expect(r.stdout).toStartWith("usage: aaosctl dashboard-token");
  expect(r.stdout).toContain("calls: web.tokens");
  expect(r.stdout).toContain("restart the kernel");
  const g = await aaosctl(["--help"]);
  expect(g.stdout).toMatch(/^ {2}dashboard-token {2}print the dashboard's operator and viewer tokens/m);
});
