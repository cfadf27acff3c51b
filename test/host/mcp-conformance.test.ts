// The official MCP conformance suite (@modelcontextprotocol/conformance,
// pinned in package.json), run unmodified for the 2026-07-28 requirement set
// (`server --requirements 2026-07-28`) against the kernel's own /mcp endpoint.
//
// The suite's server scenarios call fixture tools, resources, prompts and
// completions by name (test_simple_text, test://static-text,
// test_simple_prompt, ...). The kernel serves them from a TEST-ONLY principal
// configuration, never in the shipped image: the fixture server
// test/fixtures/mcp/conformance-server.ts (official v2 server SDK) is the
// external server `conformance` (mcp.servers.conformance), and the client
// principal `conformance` is a gateway onto it (upstream: conformance) whose
// manifest grants `tool: mcp.conformance.*`. Every tools/call the suite makes
// still goes through the kernel's capability check and audit.
//
// The suite has no option to send a bearer token, and /mcp refuses a request
// without one (401). So the suite runs under `bun --preload` of a few lines
// (written below) that add `Authorization: Bearer TOKEN` to its requests to the
// kernel's origin, through each of the three HTTP clients it uses (global
// fetch, undici's request, node:http's request); nothing else about its
// requests changes, and the kernel checks the token for real.
//
// The tasks scenarios need tools the kernel answers as tasks. The kernel makes
// a task of a call that waits for a human's approval, so the test principal's
// manifest puts the scenarios' "task-supporting" tools (slow_compute,
// failing_job, ...) under approval_required, and while the suite runs the test
// acts as the operator, approving each one over the RPC line (approval.list /
// approval.respond) as it appears.
//
// Every scenario's result is recorded in test/host/mcp-conformance.expected.json
// (docs/mcp.md carries the same table), both for the fixture on its own
// (proving it offers what the scenarios need, so a kernel failure is the
// kernel's) and for the kernel. The test fails when a scenario recorded as
// passing fails, and also when one recorded as failing now passes, or the
// suite ran a scenario the record does not name: the record is kept true.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { cleanup, startKernel, type RunningKernel } from "./harness.ts";

setDefaultTimeout(240_000);

const ROOT = resolve(import.meta.dir, "../..");
const SUITE = join(ROOT, "node_modules/@modelcontextprotocol/conformance/dist/index.js");
const FIXTURE = join(ROOT, "test/fixtures/mcp/conformance-server.ts");
const RECORD = join(import.meta.dir, "mcp-conformance.expected.json");
const REVISION = "2026-07-28";
const TOKEN = "conformance-token-5d1e9a7c3b2f4e6081a9c7e5d3b1f2a4";
const MODEL = "claude-haiku-4-5-20251001";
/** AAOS_CONFORMANCE_OUT=DIR keeps the suite's per-scenario checks.json under DIR/{fixture,kernel} */
const KEEP = process.env.AAOS_CONFORMANCE_OUT;

type Recorded = { result: "pass" } | { result: "fail"; why: string };
type Record_ = { fixture: Record<string, Recorded>; kernel: Record<string, Recorded> };
const record: Record_ = JSON.parse(readFileSync(RECORD, "utf8"));

interface Check {
  id: string;
  name: string;
  status: "SUCCESS" | "FAILURE" | "WARNING" | "SKIPPED" | "INFO";
  errorMessage?: string;
}

/** TEST ONLY: the fixture as the external server `conformance`, and the gateway principal onto it */
const kernelYaml = (url: string) => `mcp:
  servers:
    conformance:
      url: ${url}
      timeout: 20s
  clients:
    conformance:
      manifest: conformance
      token_file: secrets/conformance.token
      upstream: conformance
`;
/**
 * the principal the suite speaks as: every tool of the fixture, nothing else (it
 * never runs a model). The tasks scenarios' "task-supporting" tools need an
 * approval: a call waiting for one is how the kernel makes a task.
 */
const TASK_TOOLS = [
  "slow_compute",
  "failing_job",
  "protocol_error_job",
  "confirm_delete",
  "multi_input",
  "test_tool_with_task",
];
const PRINCIPAL = `name: conformance
model: ${MODEL}
system_prompt: "The MCP conformance suite's principal."
capabilities:
  - "tool: mcp.conformance.*"
approval_required:
${TASK_TOOLS.map((t) => `  - mcp.conformance.${t}`).join("\n")}
`;

let work: string;
let fixture: ReturnType<typeof Bun.spawn>;
let fixtureUrl: string;
let k: RunningKernel;
let mcpUrl: string;

/**
 * the preload that gives the suite's requests to the kernel the bearer token. The
 * suite speaks through three HTTP clients: global fetch (the v1 SDK client and
 * its own stateless probes), undici's request (Bun's built-in undici, which does
 * not go through global fetch: dns-rebinding-protection) and node:http's
 * request (the SEP-2243 header probes). Each gets `Authorization` added for the
 * kernel's origin and nothing else changed.
 */
function writeAuthPreload(path: string) {
  writeFileSync(
    path,
    `// written by test/host/mcp-conformance.test.ts: Authorization for the suite's requests to the kernel
const target = new URL(process.env.AAOS_CONFORMANCE_ORIGIN);
const auth = "Bearer " + process.env.AAOS_CONFORMANCE_TOKEN;
const ours = (u) => String(u).startsWith(target.origin);

const realFetch = globalThis.fetch;
globalThis.fetch = Object.assign(function (input, init) {
  const url = input instanceof Request ? input.url : input;
  if (!ours(url)) return realFetch(input, init);
  const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
  headers.set("authorization", auth);
  return realFetch(input, { ...init, headers });
}, realFetch);

const undici = require("undici");
const undiciRequest = undici.request;
undici.request = function (url, opts = {}) {
  if (!ours(url)) return undiciRequest.call(this, url, opts);
  return undiciRequest.call(this, url, { ...opts, headers: { ...(opts.headers ?? {}), authorization: auth } });
};

const http = require("node:http");
const httpRequest = http.request;
http.request = function (opts, ...rest) {
  const mine =
    opts && typeof opts === "object" && !(opts instanceof URL) &&
    opts.hostname === target.hostname && String(opts.port) === target.port;
  if (!mine) return httpRequest.call(this, opts, ...rest);
  return httpRequest.call(this, { ...opts, headers: { ...(opts.headers ?? {}), authorization: auth } }, ...rest);
};
`,
  );
}

interface SuiteRun {
  /** scenario → its checks */
  scenarios: Map<string, Check[]>;
  output: string;
  ms: number;
}

/** run the suite for the requirement set against URL; with a token, through the auth preload */
async function runSuite(url: string, out: string, token?: string): Promise<SuiteRun> {
  const preload = join(work, "auth-preload.cjs");
  if (token) writeAuthPreload(preload);
  rmSync(out, { recursive: true, force: true });
  const started = Date.now();
  const proc = Bun.spawn(
    [
      process.execPath,
      ...(token ? ["--preload", preload] : []),
      SUITE,
      "server",
      "--url",
      url,
      "--requirements",
      REVISION,
      "--timeout",
      "20000",
      "-o",
      out,
    ],
    {
      cwd: work,
      stdout: "pipe",
      stderr: "pipe",
      env: {
        ...process.env,
        ...(token ? { AAOS_CONFORMANCE_ORIGIN: new URL(url).origin, AAOS_CONFORMANCE_TOKEN: token } : {}),
      },
    },
  );
  const [stdout, stderr] = await Promise.all([
    new Response(proc.stdout as ReadableStream).text(),
    new Response(proc.stderr as ReadableStream).text(),
  ]);
  await proc.exited;
  const scenarios = new Map<string, Check[]>();
  if (existsSync(out))
    for (const d of readdirSync(out)) {
      // server-SCENARIO-2026-12-01T20-26-24-710Z/checks.json
      const m = /^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$/.exec(d);
      if (!m || !existsSync(join(out, d, "checks.json"))) continue;
      scenarios.set(m[1]!, JSON.parse(readFileSync(join(out, d, "checks.json"), "utf8")));
    }
  return { scenarios, output: stdout + stderr, ms: Date.now() - started };
}

/** a scenario passes when none of its checks failed (warnings are the suite's SHOULDs) */
function failures(checks: Check[]): string[] {
  return checks.filter((c) => c.status === "FAILURE").map((c) => `${c.id}: ${c.errorMessage ?? c.name}`);
}

/** the differences between a run and its record, one line each; empty when the record is true */
function compare(run: SuiteRun, expected: Record<string, Recorded>): string[] {
  const problems: string[] = [];
  for (const [scenario, checks] of run.scenarios) {
    const failed = failures(checks);
    const want = expected[scenario];
    if (!want)
      problems.push(
        `${scenario}: not in the record (it ${failed.length ? "fails: " + failed.join("; ") : "passes"}); add it`,
      );
    else if (want.result === "pass" && failed.length) problems.push(`${scenario} REGRESSED: ${failed.join("; ")}`);
    else if (want.result === "fail" && !failed.length)
      problems.push(`${scenario} now PASSES (recorded as failing: ${want.why}); record it as "pass"`);
  }
  for (const scenario of Object.keys(expected))
    if (!run.scenarios.has(scenario)) problems.push(`${scenario}: recorded, but the suite did not run it`);
  return problems;
}

/** a readable account of a run, for a failing expectation */
function account(run: SuiteRun): string {
  const lines = [...run.scenarios].map(([s, checks]) => {
    const failed = failures(checks);
    const warned = checks.filter((c) => c.status === "WARNING").map((c) => `warning ${c.id}: ${c.errorMessage}`);
    return [failed.length ? `  FAIL ${s}` : `  pass ${s}`, ...[...failed, ...warned].map((f) => `       ${f}`)].join(
      "\n",
    );
  });
  return `${run.scenarios.size} scenarios in ${run.ms} ms\n${lines.join("\n")}\n--- suite output (tail)\n${run.output.slice(-3000)}`;
}

/**
 * the operator, over the RPC line: approves each approval the kernel asks for
 * while the suite runs (only the task tools above need one); `approved` names
 * the tools approved
 */
function operatorApproving(): { approved: string[]; stop: () => Promise<void> } {
  const approved: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const { approvals } = await k.client.call<{ approvals: { id: string; tool: string }[] }>("approval.list", {});
      for (const a of approvals) {
        await k.client.call("approval.respond", { id: a.id, decision: "approve" }).then(
          () => approved.push(a.tool),
          () => {}, // decided already (cancelled, or timed out)
        );
      }
      await Bun.sleep(25);
    }
  })();
  return {
    approved,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "aaos-conformance-"));
  fixture = Bun.spawn([process.execPath, FIXTURE, "--port", "0"], { stdout: "pipe", stderr: "pipe" });
  const reader = (fixture.stdout as ReadableStream<Uint8Array>).getReader();
  let seen = "";
  const deadline = Date.now() + 15_000;
  while (!/listening on (\S+)/.test(seen)) {
    if (Date.now() > deadline) throw new Error(`the fixture did not start: ${seen}`);
    const { value, done } = await reader.read();
    if (done)
      throw new Error(`the fixture exited: ${seen}${await new Response(fixture.stderr as ReadableStream).text()}`);
    seen += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  fixtureUrl = /listening on (\S+)/.exec(seen)![1]!;
});

afterAll(async () => {
  await k?.stop();
  if (k) cleanup(k);
  fixture?.kill("SIGTERM");
  await fixture?.exited;
  if (work) rmSync(work, { recursive: true, force: true });
});

test(`the conformance suite (${REVISION}) against the fixture server itself: the record holds`, async () => {
  const run = await runSuite(fixtureUrl, join(KEEP ?? work, "fixture"));
  expect(run.scenarios.size, account(run)).toBeGreaterThan(30);
  expect(compare(run, record.fixture), account(run)).toEqual([]);
});

describe("the kernel's /mcp, as the gateway principal `conformance`", () => {
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "aaos-conformance-kernel-"));
    mkdirSync(join(dir, "config", "secrets"), { recursive: true });
    writeFileSync(join(dir, "config", "secrets", "conformance.token"), TOKEN + "\n", { mode: 0o600 });
    k = await startKernel({
      dir,
      extraListen: ["http:127.0.0.1:0"],
      kernelYaml: kernelYaml(fixtureUrl),
      manifests: { conformance: PRINCIPAL },
    });
    const tokens = await k.client.call<{ urls: string[] }>("web.tokens", {});
    mcpUrl = tokens.urls[0]! + "mcp";
    // the suite starts with tools/list: let the kernel reach the fixture first
    const deadline2 = Date.now() + 20_000;
    for (;;) {
      const { servers } = await k.client.call<{ servers: { name: string; state: string; error?: string }[] }>(
        "mcp.servers",
        {},
      );
      const s = servers.find((x) => x.name === "conformance");
      if (s?.state === "connected") break;
      if (Date.now() > deadline2) throw new Error(`the kernel did not connect to the fixture: ${JSON.stringify(s)}`);
      await Bun.sleep(100);
    }
  });

  test(`the conformance suite (${REVISION}): the record holds`, async () => {
    const approvals = operatorApproving();
    const run = await runSuite(mcpUrl, join(KEEP ?? work, "kernel"), TOKEN).finally(approvals.stop);
    // the tasks scenarios' calls waited for the operator (and were answered as tasks)
    expect(approvals.approved.length, account(run)).toBeGreaterThan(0);
    expect(new Set(approvals.approved).size).toBeLessThanOrEqual(TASK_TOOLS.length);
    expect(run.scenarios.size, account(run)).toBeGreaterThan(30);
    expect(compare(run, record.kernel), account(run)).toEqual([]);
    // the suite's calls went through the kernel's capability check and audit
    const { events } = await k.client.call<{ events: any[] }>("audit.query", { kind: "tool.call", limit: 1000 });
    const calls = events.filter((e) => e.tool === "mcp.conformance.test_simple_text" && e.via === "mcp");
    expect(calls.length, JSON.stringify(events.slice(-3))).toBeGreaterThan(0);
  });
});
