// The dashboard's HTTP listener (kernel/web, docs/dashboard.md) against a real
// host-mode kernel started with --listen unix:… --listen http:127.0.0.1:0:
// raw HTTP with fetch and Bun's WebSocket client, as a browser would speak it
// (Origin, Cookie) and as an attacker would (no cookie, a bogus one, a
// foreign Origin, a token in a URL, a flood of wrong tokens, a huge frame).
// The tokens and the listener's address come from web.tokens on the socket.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { METHOD_NAMES, READ_ONLY_METHODS } from "../../kernel/rpc/names.ts";
import { startMessagesServer, type MessagesServer } from "../fixtures/messages-server.ts";
import { cleanup, startKernel, type RunningKernel } from "./harness.ts";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";

setDefaultTimeout(30_000);

const KEY = "sk-ant-api03-WEBTEST-000000000000000000";
const MODEL = "claude-haiku-4-5-20251001";
const MAX_LINE = 65536;
const FOREIGN = "http://evil.example";

interface Tokens {
  operator: string;
  viewer: string;
  urls: string[];
}

/** one kernel's dashboard, as a browser sees it */
class Dashboard {
  readonly base: string;
  readonly origin: string;
  constructor(readonly tokens: Tokens) {
    this.base = tokens.urls[0]!;
    this.origin = this.base.replace(/\/$/, "");
  }
  login(token: unknown, origin: string | null = this.origin): Promise<Response> {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (origin !== null) headers.origin = origin;
    return fetch(this.base + "login", { method: "POST", headers, body: JSON.stringify({ token }) });
  }
  /** a fresh session's cookie ("aaos_session=…") */
  async cookie(role: "operator" | "viewer"): Promise<string> {
    const r = await this.login(this.tokens[role]);
    expect(r.status).toBe(200);
    return r.headers.get("set-cookie")!.split(";")[0]!;
  }
  /** the HTTP status the /rpc upgrade answers */
  async upgradeStatus(headers: Record<string, string>, path = "rpc"): Promise<number> {
    const r = await fetch(this.base + path, {
      headers: {
        upgrade: "websocket",
        connection: "Upgrade",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
        ...headers,
      },
    });
    await r.arrayBuffer().catch(() => {});
    return r.status;
  }
  ws(cookie: string | null, origin: string | null = this.origin): Ws {
    const headers: Record<string, string> = {};
    if (cookie) headers.cookie = cookie;
    if (origin) headers.origin = origin;
    return new Ws(this.base.replace(/^http/, "ws") + "rpc", headers);
  }
}

/** a JSON-RPC client over one WebSocket: every message kept, calls matched by id */
class Ws {
  readonly ws: WebSocket;
  readonly messages: any[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  isClosed = false;
  errored = false;
  private nextId = 1;
  private waiters = new Set<() => void>();

  constructor(url: string, headers: Record<string, string>) {
    this.ws = new WebSocket(url, { headers } as unknown as string[]);
    this.opened = new Promise((resolve, reject) => {
      this.ws.onopen = () => resolve();
      this.ws.onerror = (e) => {
        this.errored = true;
        reject(new Error(`WebSocket failed: ${(e as ErrorEvent).message ?? "error"}`));
      };
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => {
      this.ws.onclose = (e) => {
        this.isClosed = true;
        resolve({ code: e.code, reason: e.reason });
        for (const w of [...this.waiters]) w();
      };
    });
    this.ws.onmessage = (e) => {
      this.messages.push(JSON.parse(String(e.data)));
      for (const w of [...this.waiters]) w();
    };
  }

  /** the first message that fits, waited for */
  waitFor(fits: (m: any) => boolean, timeoutMs = 10_000, what = "a message"): Promise<any> {
    const found = () => this.messages.find(fits);
    if (found()) return Promise.resolve(found());
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = found();
        if (m) {
          done();
          resolve(m);
        } else if (this.isClosed) {
          done();
          reject(new Error(`the WebSocket closed before ${what}; got ${JSON.stringify(this.messages)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${what} within ${timeoutMs} ms; got ${JSON.stringify(this.messages)}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
    });
  }

  notification(method: string, fits: (p: any) => boolean = () => true, timeoutMs = 10_000): Promise<any> {
    return this.waitFor((m) => m.id === undefined && m.method === method && fits(m.params), timeoutMs, method).then(
      (m) => m.params,
    );
  }

  /** the whole reply: {result} or {error} */
  async call(method: string, params: unknown = {}): Promise<{ result?: any; error?: any }> {
    await this.opened;
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    return this.waitFor((m) => m.id === id, 15_000, `the reply to ${method}`);
  }

  async result(method: string, params: unknown = {}): Promise<any> {
    const r = await this.call(method, params);
    if (r.error) throw new Error(`${method}: ${JSON.stringify(r.error)}`);
    return r.result;
  }

  close(): void {
    this.ws.close();
  }
}

const WRITER = `name: writer
model: ${MODEL}
system_prompt: You write reports.
capabilities:
  - echo
  - "file_write: /tmp/aaos-web-test/*"
approval_required: [file_write]
`;

let k: RunningKernel;
let llm: MessagesServer;
let d: Dashboard;
const OUT = "/tmp/aaos-web-test";

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  llm = await startMessagesServer({ apiKey: KEY });
  k = await startKernel({
    extraListen: ["http:127.0.0.1:0"],
    kernelYaml: `rpc:\n  max_line_bytes: ${MAX_LINE}\n`,
    env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: llm.url },
    manifests: { writer: WRITER },
  });
  d = new Dashboard(await k.client.call<Tokens>("web.tokens", {}));
});
afterAll(async () => {
  await k?.stop();
  if (k) cleanup(k);
  await llm?.stop();
});

const audit = (params: Record<string, unknown>) => k.client.call<{ events: any[] }>("audit.query", params);

describe("the page", () => {
  test("GET / serves the page with the CSP, nosniff and no-referrer headers, and no inline script or style", async () => {
    expect(d.base).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const r = await fetch(d.base);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toStartWith("text/html");
    const csp = r.headers.get("content-security-policy")!;
    for (const part of [
      "default-src 'self'",
      "connect-src 'self'",
      "img-src 'self' data:",
      "style-src 'self'",
      "script-src 'self'",
      "frame-ancestors 'none'",
    ])
      expect(csp).toContain(part);
    expect(csp).not.toContain("unsafe-inline");
    expect(r.headers.get("x-content-type-options")).toBe("nosniff");
    expect(r.headers.get("referrer-policy")).toBe("no-referrer");
    expect(r.headers.get("cache-control")).toBe("no-store");
    const html = await r.text();
    // every <script> has a src and no body; no <style> element, no style="" or on…="" attribute
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/\bsrc=/);
      expect(body!.trim()).toBe("");
    }
    expect(html).not.toMatch(/<style\b/i);
    expect(html).not.toMatch(/\sstyle\s*=/i);
    expect(html).not.toMatch(/\son[a-z]+\s*=/i);
    // nothing external: every src and href is the page's own
    for (const [, url] of html.matchAll(/\b(?:src|href)="([^"]*)"/g)) expect(url).not.toMatch(/^(https?:)?\/\//);
  });

  test("app.js and app.css are served with the same headers; an unknown path is 404", async () => {
    for (const [path, type] of [
      ["app.js", "text/javascript"],
      ["app.css", "text/css"],
    ] as const) {
      const r = await fetch(d.base + path);
      expect(r.status).toBe(200);
      expect(r.headers.get("content-type")).toStartWith(type);
      expect(r.headers.get("x-content-type-options")).toBe("nosniff");
      expect(r.headers.get("content-security-policy")).toContain("script-src 'self'");
      expect((await r.text()).length).toBeGreaterThan(100);
    }
    const r = await fetch(d.base + "etc/passwd");
    expect(r.status).toBe(404);
  });
});

describe("login", () => {
  test("a wrong token is 401 and audited web.login ok:false with the client's address", async () => {
    const r = await d.login("not-the-token-at-all");
    expect(r.status).toBe(401);
    expect(await r.json()).toEqual({ error: "wrong token" });
    expect(r.headers.get("set-cookie")).toBeNull();
    const { events } = await audit({ kind: "web.login" });
    const failed = events.filter((e) => e.ok === false);
    expect(failed.length).toBe(1);
    expect(failed[0]).toMatchObject({ kind: "web.login", agent_id: null, ok: false, reason: "wrong token" });
    expect(failed[0].client).toBe("127.0.0.1");
    // the token tried is not in the audit log
    expect(JSON.stringify(events)).not.toContain("not-the-token-at-all");
  });

  test("the operator token opens an HttpOnly SameSite=Strict session; audited ok:true with the role", async () => {
    const r = await d.login(d.tokens.operator);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ role: "operator" });
    const setCookie = r.headers.get("set-cookie")!;
    expect(setCookie).toMatch(/^aaos_session=[A-Za-z0-9_-]{43};/);
    expect(setCookie).toContain("HttpOnly");
    expect(setCookie).toContain("SameSite=Strict");
    expect(setCookie).toContain("Path=/");
    expect(setCookie).toContain("Max-Age=43200"); // web.session_ttl 12h
    // the cookie is a session id, not the token
    expect(setCookie).not.toContain(d.tokens.operator);
    const cookie = setCookie.split(";")[0]!;
    const s = await fetch(d.base + "session", { headers: { cookie } });
    expect(s.status).toBe(200);
    expect(await s.json()).toEqual({ role: "operator" });
    const { events } = await audit({ kind: "web.login" });
    const ok = events.filter((e) => e.ok === true);
    expect(ok.at(-1)).toMatchObject({ ok: true, role: "operator", client: "127.0.0.1" });
    expect(JSON.stringify(events)).not.toContain(d.tokens.operator);
  });

  test("the viewer token opens a viewer session", async () => {
    const r = await d.login(d.tokens.viewer);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ role: "viewer" });
  });

  test("POST /login from a foreign Origin, or without one, is 403 (and no session)", async () => {
    for (const origin of [FOREIGN, null, "null", d.origin.replace("127.0.0.1", "localhost")]) {
      const r = await d.login(d.tokens.operator, origin);
      expect(r.status).toBe(403);
      expect(r.headers.get("set-cookie")).toBeNull();
    }
  });

  test("a body that is not {token} is 400, not a session", async () => {
    const r = await fetch(d.base + "login", {
      method: "POST",
      headers: { origin: d.origin, "content-type": "application/json" },
      body: "token=" + d.tokens.operator,
    });
    expect(r.status).toBe(400);
    expect(r.headers.get("set-cookie")).toBeNull();
  });

  test("no token in a URL opens anything: GET /login?token=, /?token=, /rpc?token= give no session", async () => {
    const t = encodeURIComponent(d.tokens.operator);
    const g = await fetch(`${d.base}login?token=${t}`);
    expect(g.status).toBe(404);
    expect(g.headers.get("set-cookie")).toBeNull();
    const p = await fetch(`${d.base}?token=${t}`);
    expect(p.headers.get("set-cookie")).toBeNull();
    expect(await d.upgradeStatus({ origin: d.origin }, `rpc?token=${t}`)).toBe(401);
    expect((await fetch(`${d.base}session?token=${t}`)).status).toBe(401);
  });
});

describe("the WebSocket's door", () => {
  test("without a cookie: 401, and the client's WebSocket fails", async () => {
    expect(await d.upgradeStatus({ origin: d.origin })).toBe(401);
    const ws = d.ws(null);
    await expect(ws.opened).rejects.toThrow(/401/);
  });

  test("with a bogus cookie: 401", async () => {
    expect(await d.upgradeStatus({ origin: d.origin, cookie: "aaos_session=bogus" })).toBe(401);
    expect(
      await d.upgradeStatus({ origin: d.origin, cookie: `aaos_session=${"A".repeat(43)}; other=${d.tokens.operator}` }),
    ).toBe(401);
    await expect(d.ws("aaos_session=bogus").opened).rejects.toThrow(/401/);
  });

  test("with a real session but a foreign Origin, or none: 403 (cross-site WebSocket hijacking, DNS rebinding)", async () => {
    const cookie = await d.cookie("operator");
    expect(await d.upgradeStatus({ origin: FOREIGN, cookie })).toBe(403);
    expect(await d.upgradeStatus({ cookie })).toBe(403);
    // a rebound name: the Host the page was loaded from is not the listener's
    expect(await d.upgradeStatus({ origin: "http://attacker.example:80", cookie, host: "attacker.example:80" })).toBe(
      403,
    );
    await expect(d.ws(cookie, FOREIGN).opened).rejects.toThrow(/403/);
    // the same session from the page's own origin opens
    const ws = d.ws(cookie);
    await ws.opened;
    ws.close();
  });
});

describe("an operator session", () => {
  let ws: Ws;
  beforeAll(async () => {
    ws = d.ws(await d.cookie("operator"));
    await ws.opened;
  });
  afterAll(() => ws.close());

  test("opens with system.ready, then web.session {role: operator}", async () => {
    await ws.waitFor((m) => m.method === "web.session");
    expect(ws.messages[0]).toEqual({
      jsonrpc: "2.0",
      method: "system.ready",
      params: { version: k.ready.version, boot_id: k.ready.boot_id },
    });
    expect(ws.messages[1]).toEqual({ jsonrpc: "2.0", method: "web.session", params: { role: "operator" } });
  });

  test("every method works: agent.spawn, tool.invoke, agent.list, agent.stop", async () => {
    const spawned = await ws.result("agent.spawn", { name: "writer" });
    expect(spawned).toMatchObject({ name: "writer" });
    const out = await ws.result("tool.invoke", {
      agent_id: spawned.agent_id,
      tool: "echo",
      input: { message: "over the web" },
    });
    expect(out).toEqual({ output: { message: "over the web" } });
    // the socket sees what the WebSocket did: one kernel, one door each
    const { agents } = await k.client.call<{ agents: any[] }>("agent.list", {});
    expect(agents.map((a) => a.agent_id)).toContain(spawned.agent_id);
    const { events } = await audit({ agent_id: spawned.agent_id, kind: "tool.*" });
    expect(events.map((e) => e.kind)).toEqual(["tool.call", "tool.result"]);
    expect(await ws.result("agent.stop", { agent_id: spawned.agent_id })).toMatchObject({ state: "stopped" });
  });

  test("errors come back as JSON-RPC errors: unknown method -32601, bad params -32602, bad JSON -32700", async () => {
    expect((await ws.call("agent.launch")).error.code).toBe(-32601);
    expect((await ws.call("agent.stop", { agent: "x" })).error.code).toBe(-32602);
    ws.ws.send("{not json");
    const e = await ws.waitFor((m) => m.id === null && m.error?.code === -32700);
    expect(e.error.code).toBe(-32700);
  });

  test("a batch in one frame gets one array reply", async () => {
    ws.ws.send(
      JSON.stringify([
        { jsonrpc: "2.0", id: "b1", method: "system.ping", params: {} },
        { jsonrpc: "2.0", id: "b2", method: "agent.list", params: {} },
      ]),
    );
    const batch = await ws.waitFor((m) => Array.isArray(m));
    expect(batch.map((r: any) => r.id).sort()).toEqual(["b1", "b2"]);
  });

  test("web.tokens is refused over the WebSocket (-32001): the tokens are given on the console only", async () => {
    const r = await ws.call("web.tokens");
    expect(r.error.code).toBe(-32001);
    expect(r.error.message).toContain("console");
    expect(JSON.stringify(r)).not.toContain(d.tokens.operator);
  });

  test("an approval asked for over the socket is announced to the WebSocket and approved from it", async () => {
    const { agent_id } = await k.client.call<{ agent_id: string }>("agent.spawn", { name: "writer" });
    const path = join(OUT, "from-the-page.md");
    const pending = k.client.call<any>("tool.invoke", {
      agent_id,
      tool: "file_write",
      input: { path, content: "approved on the web\n" },
    });
    const req = await ws.notification("approval.requested", (p) => p.agent_id === agent_id);
    expect(req).toMatchObject({ agent_id, tool: "file_write", input: { path } });
    expect(await ws.result("approval.respond", { id: req.id, decision: "approve" })).toEqual({
      id: req.id,
      decision: "approve",
    });
    expect(await pending).toMatchObject({ output: { path } });
    expect(readFileSync(path, "utf8")).toBe("approved on the web\n");
    await k.client.call("agent.stop", { agent_id });
  });
});

describe("a viewer session", () => {
  let ws: Ws;
  beforeAll(async () => {
    ws = d.ws(await d.cookie("viewer"));
    await ws.opened;
  });
  afterAll(() => ws.close());

  test("opens with web.session {role: viewer}", async () => {
    expect(await ws.notification("web.session")).toEqual({ role: "viewer" });
  });

  test("the read methods work", async () => {
    expect((await ws.result("agent.list")).agents).toBeArray();
    expect(await ws.result("system.info")).toMatchObject({ mode: "host" });
    expect(await ws.result("system.ping")).toMatchObject({ pong: true });
    expect((await ws.result("audit.query", { limit: 5 })).events.length).toBeGreaterThan(0);
    expect(await ws.result("audit.verify")).toMatchObject({ ok: true });
    expect(await ws.result("approval.list")).toEqual({ approvals: [] });
    expect(await ws.result("sched.status")).toHaveProperty("queue");
    expect((await ws.result("manifest.list")).manifests).toBeArray();
    expect((await ws.result("tool.list")).tools.length).toBeGreaterThan(0);
    expect(await ws.result("events.subscribe", { topics: ["audit"] })).toEqual({ topics: ["audit"] });
    expect(await ws.result("system.stats")).toHaveProperty("memory");
  });

  test("agent.spawn, approval.respond, agent.stop, memory.delete, system.shutdown: each -32001 read-only", async () => {
    const { agent_id } = await k.client.call<{ agent_id: string }>("agent.spawn", { name: "writer" });
    const pending = k.client.call<any>("tool.invoke", {
      agent_id,
      tool: "file_write",
      input: { path: join(OUT, "viewer.md"), content: "never\n" },
    });
    pending.catch(() => {});
    const req = await ws.notification("approval.requested", (p) => p.agent_id === agent_id);
    for (const [method, params] of [
      ["agent.spawn", { name: "writer" }],
      ["approval.respond", { id: req.id, decision: "approve" }],
      ["agent.stop", { agent_id }],
      ["memory.delete", { id: "mem-0000000000000000" }],
      ["system.shutdown", { action: "poweroff" }],
    ] as const) {
      const r = await ws.call(method, params);
      expect(r.error?.code, method).toBe(-32001);
      expect(r.error.message).toContain(`the viewer role is read-only: ${method} needs an operator session`);
    }
    // nothing changed: the approval still waits, the agent runs, the kernel is up, no file
    const { approvals } = await k.client.call<{ approvals: any[] }>("approval.list", {});
    expect(approvals.map((a) => a.id)).toContain(req.id);
    expect((await k.client.call<any>("agent.status", { agent_id })).state).not.toBe("stopped");
    expect(await k.client.call<any>("system.ping", {})).toMatchObject({ pong: true });
    await k.client.call("approval.respond", { id: req.id, decision: "deny", reason: "test" });
    await expect(pending).rejects.toMatchObject({ code: -32003 });
    await k.client.call("agent.stop", { agent_id });
  });

  test("every method outside READ_ONLY_METHODS is refused -32001, whatever its params", async () => {
    const changing = METHOD_NAMES.filter((m) => !READ_ONLY_METHODS.has(m));
    expect(changing).toContain("tool.invoke");
    expect(changing).toContain("web.tokens");
    for (const m of changing) {
      const r = await ws.call(m, {});
      expect(r.error?.code, m).toBe(-32001);
    }
  });
});

describe("live notifications", () => {
  test("events.subscribe audit: audit.record for records another connection caused, seq increasing, as audit.query has them", async () => {
    const ws = d.ws(await d.cookie("viewer"));
    expect(await ws.result("events.subscribe", { topics: ["audit"] })).toEqual({ topics: ["audit"] });
    // subscribing twice is one subscription
    expect(await ws.result("events.subscribe", { topics: ["audit", "audit"] })).toEqual({ topics: ["audit"] });
    const { agent_id } = await k.client.call<{ agent_id: string }>("agent.spawn", { name: "writer" });
    await k.client.call("tool.invoke", { agent_id, tool: "echo", input: { message: "tail" } });
    const result = await ws.notification("audit.record", (p) => p.kind === "tool.result" && p.agent_id === agent_id);
    const records = ws.messages.filter((m) => m.method === "audit.record").map((m) => m.params);
    const mine = records.filter((r) => r.agent_id === agent_id);
    expect(mine.map((r) => r.kind)).toEqual(["agent.spawn", "capability.grant", "tool.call", "tool.result"]);
    const seqs = records.map((r) => r.seq);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1] + 1);
    for (const r of records) {
      expect(r.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(typeof r.ts).toBe("string");
    }
    // each exactly the record audit.query returns
    const { events } = await audit({ since_seq: mine[0].seq - 1, limit: 1000 });
    for (const r of mine) expect(r).toEqual(events.find((e) => e.seq === r.seq));
    expect(result.ok).toBe(true);
    // no duplicates from the second subscribe
    expect(new Set(seqs).size).toBe(seqs.length);
    ws.close();
    await ws.closed;
    await k.client.call("agent.stop", { agent_id });
  });

  test("events.subscribe agent.output: a run started over the socket streams to the WebSocket", async () => {
    const ws = d.ws(await d.cookie("viewer"));
    expect(await ws.result("events.subscribe", { topics: ["agent.output"] })).toEqual({ topics: ["agent.output"] });
    const { agent_id } = await k.client.call<{ agent_id: string }>("agent.spawn", { name: "writer" });
    llm.script([{ text: "Hello from the fixture.", usage: { input_tokens: 10, output_tokens: 4 } }]);
    const run = await k.client.call<any>("agent.run", { agent_id, message: "say hello" });
    expect(run.response).toBe("Hello from the fixture.");
    const turn = await ws.notification("agent.output", (p) => p.agent_id === agent_id && p.type === "turn");
    expect(turn.usage).toEqual({ input_tokens: 10, output_tokens: 4 });
    // the text as it streamed, in order, before the turn ended
    const texts = ws.messages.filter(
      (m) => m.method === "agent.output" && m.params.agent_id === agent_id && m.params.type === "text",
    );
    expect(texts.length).toBeGreaterThan(0);
    expect(texts.map((m) => m.params.text).join("")).toBe("Hello from the fixture.");
    // only the topic asked for
    expect(ws.messages.some((m) => m.method === "audit.record")).toBe(false);
    ws.close();
    await ws.closed;
    await k.client.call("agent.stop", { agent_id });
  });

  test("unknown or empty topics are -32602", async () => {
    const ws = d.ws(await d.cookie("operator"));
    expect((await ws.call("events.subscribe", { topics: ["everything"] })).error.code).toBe(-32602);
    expect((await ws.call("events.subscribe", { topics: [] })).error.code).toBe(-32602);
    ws.close();
  });

  test("a subscription ends with its socket: records and runs after the close raise no error", async () => {
    const ws = d.ws(await d.cookie("operator"));
    await ws.result("events.subscribe", { topics: ["audit", "agent.output"] });
    ws.close();
    await ws.closed;
    await Bun.sleep(100);
    const { agent_id } = await k.client.call<{ agent_id: string }>("agent.spawn", { name: "writer" });
    llm.script([{ text: "After the close." }]);
    await k.client.call("agent.run", { agent_id, message: "anything" });
    await k.client.call("agent.stop", { agent_id });
    expect(await k.client.call<any>("system.ping", {})).toMatchObject({ pong: true });
    const log = k.logText();
    expect(log).not.toContain("watcher failed");
    expect(log).not.toContain('"level":50');
  });
});

test("system.stats: memory, disk, load, network, clock", async () => {
  const ws = d.ws(await d.cookie("viewer"));
  const s = await ws.result("system.stats");
  ws.close();
  expect(Object.keys(s).sort()).toEqual(["clock", "disk", "load", "memory", "network", "uptime_ms"]);
  expect(s.uptime_ms).toBeGreaterThan(0);
  for (const f of ["rss_bytes", "heap_used_bytes", "total_bytes"]) expect(s.memory[f]).toBeGreaterThan(0);
  expect(s.memory.available_bytes).toBeGreaterThan(0); // Linux: /proc/meminfo
  expect(s.disk.path).toBe(k.dataDir);
  expect(s.disk.total_bytes).toBeGreaterThan(0);
  expect(s.disk.free_bytes).toBeLessThanOrEqual(s.disk.total_bytes);
  expect(s.disk.used_bytes).toBeLessThanOrEqual(s.disk.total_bytes);
  expect(s.load).toHaveLength(3);
  for (const l of s.load) expect(typeof l).toBe("number");
  expect(s.network).toBeArray();
  for (const n of s.network) {
    expect(Object.keys(n).sort()).toEqual(["address", "family", "interface", "mac"]);
    expect(["IPv4", "IPv6"]).toContain(n.family);
  }
  expect(s.clock).toMatchObject({ synced: false, source: "rtc" });
  expect(Math.abs(Date.parse(s.clock.now) - Date.now())).toBeLessThan(10_000);
  // the socket has it too
  expect(await k.client.call<any>("system.stats", {})).toHaveProperty("disk.path", k.dataDir);
});

test("logout clears the cookie; the session no longer opens /rpc or /session", async () => {
  const cookie = await d.cookie("operator");
  const before = d.ws(cookie);
  await before.opened;
  // a foreign page cannot log the operator out
  const foreign = await fetch(d.base + "logout", { method: "POST", headers: { cookie, origin: FOREIGN } });
  expect(foreign.status).toBe(403);
  expect((await fetch(d.base + "session", { headers: { cookie } })).status).toBe(200);
  const r = await fetch(d.base + "logout", { method: "POST", headers: { cookie, origin: d.origin } });
  expect(r.status).toBe(204);
  const cleared = r.headers.get("set-cookie")!;
  expect(cleared).toMatch(/^aaos_session=;/);
  expect(cleared).toContain("Max-Age=0");
  expect((await fetch(d.base + "session", { headers: { cookie } })).status).toBe(401);
  expect(await d.upgradeStatus({ origin: d.origin, cookie })).toBe(401);
  // the WebSocket it had open ends with it
  expect((await before.closed).code).toBe(4401);
});

test("an expired session's WebSocket is closed at its next message", async () => {
  const k2 = await startKernel({ kernelYaml: "web:\n  session_ttl: 1s\n", extraListen: ["http:127.0.0.1:0"] });
  try {
    const t = await k2.client.call<any>("web.tokens", {});
    const base = t.urls[0] as string;
    const origin = base.replace(/\/$/, "");
    const login = await fetch(base + "login", {
      method: "POST",
      headers: { origin },
      body: JSON.stringify({ token: t.operator }),
    });
    const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
    const ws = new WebSocket(base.replace(/^http/, "ws") + "rpc", { headers: { cookie, origin } } as never);
    await new Promise((r) => (ws.onopen = r));
    const closed = new Promise<number>((r) => (ws.onclose = (e) => r(e.code)));
    await Bun.sleep(1200);
    ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "agent.list", params: {} }));
    expect(await closed).toBe(4401);
  } finally {
    await k2.stop();
    cleanup(k2);
  }
});

test("host mode ignores kernel.yaml's web.listen (the appliance's); --listen http: gives it", async () => {
  const off = await startKernel({ kernelYaml: "web:\n  listen: 127.0.0.1:1\n" });
  try {
    // port 1 would have failed to bind: nothing was opened, and the kernel says the dashboard is off
    await expect(off.client.call("web.tokens", {})).rejects.toMatchObject({ code: -32601 });
  } finally {
    await off.stop();
    cleanup(off);
  }
  const on = await startKernel({ kernelYaml: "web:\n  listen: 127.0.0.1:1\n", extraListen: ["http:127.0.0.1:0"] });
  try {
    const t = await on.client.call<any>("web.tokens", {});
    expect(t.urls).toHaveLength(1);
    expect(t.urls[0]).not.toContain(":1/");
  } finally {
    await on.stop();
    cleanup(on);
  }
});

test("a message over rpc.max_line_bytes closes that WebSocket only", async () => {
  const cookie = await d.cookie("operator");
  const big = d.ws(cookie);
  const other = d.ws(cookie);
  await Promise.all([big.opened, other.opened]);
  big.ws.send(
    JSON.stringify({ jsonrpc: "2.0", id: 1, method: "system.ping", params: { pad: "x".repeat(MAX_LINE + 10) } }),
  );
  const closed = await big.closed;
  expect(closed.code).toBe(1009); // message too big
  expect(big.messages.some((m) => m.id === 1)).toBe(false);
  // the other connection, on the same session, goes on; so does the kernel
  expect(await other.result("system.ping")).toMatchObject({ pong: true });
  expect(await k.client.call<any>("system.ping", {})).toMatchObject({ pong: true });
  other.close();
});

test("sessions are bounded: 300 logins, the oldest sessions are closed, the newest open", async () => {
  const cookies: string[] = [];
  for (let i = 0; i < 300; i += 50)
    cookies.push(...(await Promise.all(Array.from({ length: 50 }, () => d.cookie("viewer")))));
  const status = async (c: string) => (await fetch(d.base + "session", { headers: { cookie: c } })).status;
  expect(await status(cookies[0]!)).toBe(401);
  expect(await status(cookies[299]!)).toBe(200);
  const open = (await Promise.all(cookies.map(status))).filter((s) => s === 200).length;
  expect(open).toBeLessThanOrEqual(256);
  expect(open).toBeGreaterThanOrEqual(200);
});

describe("kernel.yaml web:", () => {
  test("an http listener alone; the tokens are created in <data>/state/web, 0600; failed logins are rate-limited", async () => {
    const k2 = await startKernel({ extraListen: ["http:127.0.0.1:0"] });
    try {
      const t = await k2.client.call<Tokens>("web.tokens", {});
      expect(t.urls).toHaveLength(1);
      expect(t.operator).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(t.viewer).toMatch(/^[A-Za-z0-9_-]{43}$/);
      for (const role of ["operator", "viewer"] as const) {
        const file = join(k2.dataDir, "state", "web", `${role}.token`);
        expect(readFileSync(file, "utf8").trim()).toBe(t[role]);
        expect(statSync(file).mode & 0o777).toBe(0o600);
      }
      // web.tokens is audited with the transport it was asked on
      const { events } = await k2.client.call<{ events: any[] }>("audit.query", { kind: "web.tokens" });
      expect(events.at(-1)).toMatchObject({ kind: "web.tokens", agent_id: null, transport: "unix" });
      expect(JSON.stringify(events)).not.toContain(t.operator);

      const d2 = new Dashboard(t);
      expect((await fetch(d2.base)).status).toBe(200);
      // 5 wrong tokens, then 429 with Retry-After, even for the right token
      for (let i = 0; i < 5; i++) expect((await d2.login(`wrong-${i}-xxxxxxxxxxxx`)).status).toBe(401);
      for (const token of ["wrong-again", t.operator]) {
        const r = await d2.login(token);
        expect(r.status).toBe(429);
        const after = Number(r.headers.get("retry-after"));
        expect(after).toBeGreaterThan(0);
        expect(after).toBeLessThanOrEqual(60);
        expect(((await r.json()) as { error: string }).error).toMatch(/^too many failed logins; try again in \d+ s$/);
        expect(r.headers.get("set-cookie")).toBeNull();
      }
      const failed = (await k2.client.call<{ events: any[] }>("audit.query", { kind: "web.login" })).events;
      expect(failed.filter((e) => e.ok === false)).toHaveLength(5);
      expect(failed.some((e) => e.ok === true)).toBe(false);
    } finally {
      await k2.stop();
      cleanup(k2);
    }
  });

  test("web.operator_token_file names a file in the config directory: that token logs in as operator", async () => {
    const dir = mkdtempSync(join(tmpdir(), "aaos-"));
    mkdirSync(join(dir, "config"), { recursive: true });
    const token = "operator-token-from-a-file-0123456789";
    writeFileSync(join(dir, "config", "tok"), token + "\n", { mode: 0o600 });
    const k3 = await startKernel({
      dir,
      extraListen: ["http:127.0.0.1:0"],
      kernelYaml: "web:\n  operator_token_file: tok\n  session_ttl: 1h\n",
    });
    try {
      const t = await k3.client.call<Tokens>("web.tokens", {});
      expect(t.operator).toBe(token);
      const d3 = new Dashboard(t);
      const r = await d3.login(token);
      expect(r.status).toBe(200);
      expect(await r.json()).toEqual({ role: "operator" });
      expect(r.headers.get("set-cookie")).toContain("Max-Age=3600");
      // the viewer's was created on the data disk
      expect(readFileSync(join(k3.dataDir, "state", "web", "viewer.token"), "utf8").trim()).toBe(t.viewer);
    } finally {
      await k3.stop();
      cleanup(k3);
    }
  });

  test("a token file kernel.yaml names that does not exist: host mode exits with a clear error", async () => {
    const err = await startKernel({
      extraListen: ["http:127.0.0.1:0"],
      kernelYaml: "web:\n  viewer_token_file: missing.token\n",
    }).then(
      async (k4) => {
        await k4.stop();
        cleanup(k4);
        return "started";
      },
      (e: Error) => e.message,
    );
    expect(err).toMatch(/kernel exited with [1-9]/);
    expect(err).toContain("missing.token");
    expect(err).toContain("does not exist");
  });

  test("--listen http:nonsense exits with the usage error", async () => {
    const err = await startKernel({ extraListen: ["http:nonsense"] }).then(
      async (k5) => {
        await k5.stop();
        cleanup(k5);
        return "started";
      },
      (e: Error) => e.message,
    );
    expect(err).toMatch(/kernel exited with [1-9]/);
    expect(err).toContain("expected http:HOST:PORT");
  });
});

test("web.tokens on a kernel without an HTTP listener says the dashboard is off", async () => {
  const k6 = await startKernel();
  try {
    await expect(k6.client.call("web.tokens", {})).rejects.toMatchObject({
      code: -32601,
      message: expect.stringContaining("the dashboard is off"),
    });
  } finally {
    await k6.stop();
    cleanup(k6);
  }
});
