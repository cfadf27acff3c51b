// The supervision dashboard in a real browser: Debian's chromium, headless,
// driven by playwright-core, against one host-mode kernel serving the page on
// --listen http:127.0.0.1:PORT beside its unix socket. The other side of each
// check goes over the RPC socket (RpcClient), the model is the Messages API
// fixture, and files are read from the disk. The tests run in order on one
// kernel and one browser; the rate-limit case is last, because the limit is
// per client address and every context here is 127.0.0.1. Screenshots of every
// page land in out/screenshots/ (the docs' copies are docs/dashboard/*.png).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Browser, BrowserContext, Locator, Page } from "playwright-core";
import { startMessagesServer, type MessagesServer } from "../fixtures/messages-server.ts";
import { launchBrowser, startDashboardKernel, type DashboardKernel } from "./harness.ts";

const KEY = "sk-ant-api03-BROWSERTEST-never-in-a-page-5e4d3c2b1a";
const MODEL = "claude-haiku-4-5-20251001";
const KERNEL_YAML = `inference:
  max_concurrency: 4
  request_timeout_ms: 10000
  retry:
    base_delay_ms: 5
    max_delay_ms: 20
    max_retries: 0
`;
const SHOTS = resolve(import.meta.dir, "../../out/screenshots");
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 375, height: 812 };

let srv: MessagesServer;
let k: DashboardKernel;
let browser: Browser;
let op: BrowserContext;
let page: Page; // the operator's page, kept open through every test
setDefaultTimeout(30_000);

// the DOM of the functions run in the page (page.evaluate): the project's tsconfig has no "dom" lib
declare const document: any, window: any, location: any;
declare function getComputedStyle(el: unknown): any;
const problems: string[] = []; // uncaught exceptions and CSP violations in any page
const ids: Record<string, string> = {}; // agent and approval ids, shared by the tests in order

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  srv = await startMessagesServer({ apiKey: KEY });
  [k, browser] = await Promise.all([
    startDashboardKernel({ kernelYaml: KERNEL_YAML, env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: srv.url } }),
    launchBrowser(),
  ]);
  op = await context(DESKTOP);
  page = await op.newPage();
});
afterAll(async () => {
  await browser?.close().catch(() => {});
  await k?.stop().catch(() => {});
  await srv?.stop();
});

async function context(viewport: { width: number; height: number }): Promise<BrowserContext> {
  const ctx = await browser.newContext({ viewport, ...(viewport === PHONE ? { isMobile: true, hasTouch: true } : {}) });
  ctx.on("page", watch);
  return ctx;
}
function watch(p: Page) {
  p.on("pageerror", (e) => problems.push(`pageerror on ${p.url()}: ${e.message}`));
  p.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Refused to/.test(m.text()))
      problems.push(`console on ${p.url()}: ${m.text()}`);
  });
}

const tid = (p: Page, id: string) => p.getByTestId(id);

/** wait until the locator's text matches */
async function waitText(l: Locator, re: RegExp, ms = 10_000): Promise<string> {
  const end = Date.now() + ms;
  let last = "";
  for (;;) {
    last = (await l.textContent({ timeout: Math.max(1, end - Date.now()) }).catch(() => "")) ?? "";
    if (re.test(last)) return last;
    if (Date.now() > end) throw new Error(`timed out waiting for ${re} in ${l}; last text: ${JSON.stringify(last)}`);
    await Bun.sleep(25);
  }
}

async function until<T>(what: string, f: () => Promise<T | undefined | null | false>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => null);
    if (v) return v as T;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(25);
  }
}

async function login(p: Page, token: string) {
  await p.goto(k.origin + "/");
  await tid(p, "login-token").fill(token);
  await tid(p, "login-submit").click();
}

/** the login form has its answer: the button is enabled again and the error shown */
function answered(p: Page) {
  return p.waitForFunction(() => {
    const b = document.querySelector('[data-testid="login-submit"]');
    const e = document.querySelector('[data-testid="login-error"]');
    return b && !b.disabled && e && !e.hidden;
  });
}

async function shot(p: Page, name: string) {
  await p.evaluate(() => document.fonts.ready);
  await p.screenshot({ path: join(SHOTS, `${name}.png`) });
}

/** go to a page by its nav link, as a user would */
async function nav(p: Page, name: string) {
  await tid(p, "nav-" + name).click();
  await p.waitForFunction((n) => document.querySelector(`#nav-${n}`)?.getAttribute("aria-current") === "page", name);
}

/** a marker on window that a reload would lose */
const mark = (p: Page) => p.evaluate(() => ((window as any).__noReload = true));
const unreloaded = (p: Page) => p.evaluate(() => (window as any).__noReload === true);

function manifest(name: string, extra = "") {
  return `name: ${name}\nmodel: ${MODEL}\nsystem_prompt: "You write files."\n${extra}`;
}
function writer(name: string, out: string) {
  return manifest(name, `capabilities:\n  - "file_write: ${out}/*"\napproval_required: [file_write]\n`);
}

/** the id of the first pending approval card of this agent's request shown on the page */
async function pendingCard(p: Page, path: string): Promise<string> {
  const card = p.locator('[data-testid^="approval-card-"][data-state="pending"]', { hasText: path });
  await card.first().waitFor({ timeout: 10_000 });
  return (await card.first().getAttribute("data-testid"))!.slice("approval-card-".length);
}

async function result(agent_id: string, message_id: string) {
  return until(`the result of ${message_id}`, async () => {
    const r = await k.client.call("agent.result", { agent_id, message_id });
    return r.state === "queued" || r.state === "running" ? null : r;
  });
}

/** in the page: open a WebSocket to url; did it open, and what came first */
function tryWebSocket(p: Page, url: string) {
  return p.evaluate(
    (u) =>
      new Promise<{ opened: boolean; error: boolean; closed: boolean; first: string | null }>((done) => {
        const r = { opened: false, error: false, closed: false, first: null as string | null };
        const ws = new WebSocket(u);
        ws.onopen = () => (r.opened = true);
        ws.onmessage = (e) => {
          r.first ??= String(e.data);
          ws.close();
        };
        ws.onerror = () => (r.error = true);
        ws.onclose = () => ((r.closed = true), done(r));
        setTimeout(() => done(r), 5000);
      }),
    url,
  );
}

describe("the dashboard in chromium", () => {
  test("log in: a wrong token is refused with the error shown; Tab reaches the button and Enter logs in", async () => {
    const urls: string[] = [];
    page.on("request", (r) => urls.push(r.url()));
    await page.goto(k.origin + "/");
    await tid(page, "login-token").waitFor();
    expect(await page.evaluate(() => document.activeElement?.getAttribute("data-testid"))).toBe("login-token");
    await shot(page, "login");

    await tid(page, "login-token").pressSequentially("not-the-operator-token-0123456789");
    await tid(page, "login-submit").click();
    expect(await waitText(tid(page, "login-error"), /Wrong token/)).toContain("Wrong token");
    expect(await tid(page, "login-error").isVisible()).toBe(true);
    expect(await page.evaluate(() => fetch("/session").then((r) => r.status))).toBe(401);
    expect(await tid(page, "role-badge").isVisible()).toBe(false);
    // the failure is audited, with no token in the record
    const failed = (await k.client.call("audit.query", { kind: "web.login", limit: 100 })).events as any[];
    expect(failed.some((e) => e.ok === false && e.reason === "wrong token")).toBe(true);
    expect(JSON.stringify(failed)).not.toContain("not-the-operator-token");

    // the keyboard: type the token, Tab to the button, Enter
    await tid(page, "login-token").fill("");
    await tid(page, "login-token").pressSequentially(k.tokens.operator);
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.getAttribute("data-testid"))).toBe("login-submit");
    await page.keyboard.press("Enter");
    expect(await waitText(tid(page, "role-badge"), /operator/)).toBe("operator");
    await tid(page, "agents-summary").waitFor();
    expect(page.url()).toBe(`${k.origin}/#/agents`);

    // the token is in no URL the page asked for, the session is an HttpOnly SameSite=Strict cookie
    expect(urls.length).toBeGreaterThan(0);
    for (const u of urls) expect(u).not.toContain(k.tokens.operator);
    const cookies = await op.cookies();
    const s = cookies.find((c) => c.name === "aaos_session")!;
    expect(s).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/" });
    expect(await page.evaluate(() => document.cookie)).not.toContain("aaos_session");
    expect(await page.evaluate(() => fetch("/session").then((r) => r.json()))).toEqual({ role: "operator" });
  });

  test("keyboard: every nav link is reached by Tab and shows a visible focus ring", async () => {
    await page.evaluate(() => document.activeElement?.blur());
    const seen = new Map<string, { visible: boolean; outline: string }>();
    for (let i = 0; i < 20 && seen.size < 5; i++) {
      await page.keyboard.press("Tab");
      const f = await page.evaluate(() => {
        const el = document.activeElement;
        if (!el) return null;
        const cs = getComputedStyle(el);
        return {
          testid: el.getAttribute("data-testid") ?? "",
          visible: el.matches(":focus-visible"),
          outline: `${cs.outlineStyle} ${cs.outlineWidth} ${cs.outlineColor}`,
        };
      });
      if (f?.testid.startsWith("nav-")) seen.set(f.testid, { visible: f.visible, outline: f.outline });
    }
    expect([...seen.keys()].sort()).toEqual([
      "nav-agents",
      "nav-approvals",
      "nav-audit",
      "nav-scheduler",
      "nav-system",
    ]);
    for (const [name, f] of seen) {
      expect({ name, visible: f.visible }).toEqual({ name, visible: true });
      expect(f.outline).toMatch(/^solid [2-9](\.\d+)?px /);
    }
    // Enter on the focused link (the last one, System) follows it
    expect(await page.evaluate(() => document.activeElement?.getAttribute("data-testid"))).toBe("nav-system");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => location.hash === "#/system");
    await tid(page, "system").waitFor();
    await nav(page, "agents");
  });

  test("an agent spawned over the RPC socket appears on the Agents page without a reload", async () => {
    await tid(page, "agents-summary").waitFor();
    await mark(page);
    const { agent_id } = await k.client.call("agent.spawn", {
      manifest: manifest("watcher", "capabilities:\n  - echo\n"),
    });
    ids.watcher = agent_id;
    const row = tid(page, "agent-row-" + agent_id);
    await row.waitFor({ timeout: 5000 });
    const text = (await row.textContent()) ?? "";
    expect(text).toContain("watcher");
    expect(text).toContain(MODEL);
    expect(await row.getAttribute("data-state")).toBe("ready");
    expect(await waitText(row.getByTestId("state"), /ready/)).toContain("ready");
    expect(await tid(page, "agent-stop-" + agent_id).isVisible()).toBe(true);
    expect(await unreloaded(page)).toBe(true);
  });

  test("a pending file_write shows live on Approvals, readable; approved from the page, the file appears and the tool completes live", async () => {
    const out = join(k.dataDir, "files", "out");
    const path = join(out, "report.md");
    const content = "# Weekly report\n\nAll agents healthy.\nApproved from the dashboard.\n";
    const { agent_id } = await k.client.call("agent.spawn", { manifest: writer("writer", out) });
    ids.writer = agent_id;
    await nav(page, "approvals");
    await tid(page, "approvals-empty").waitFor();
    await mark(page);

    srv.reset();
    srv.script([
      { content: [{ type: "tool_use", name: "file_write", input: { path, content } }] },
      { text: "Written after approval.", match: { contains: "tool_result" } },
    ]);
    const { message_id } = await k.client.call("agent.send", { agent_id, message: "write the weekly report" });
    const id = await pendingCard(page, path);
    ids.approved = id;
    const pending = (await k.client.call("approval.list")).approvals as any[];
    expect(pending.map((a) => [a.id, a.agent_id, a.tool])).toEqual([[id, agent_id, "file_write"]]);
    expect(await tid(page, "approval-path-" + id).textContent()).toBe(path);
    expect(await tid(page, "approval-content-" + id).textContent()).toBe(content);
    const card = tid(page, "approval-card-" + id);
    expect(await card.locator(`code[title="${agent_id}"]`).count()).toBe(1);
    expect(await waitText(tid(page, "approvals-count"), /1/)).toContain("1");
    expect(existsSync(path)).toBe(false);

    await tid(page, "approval-approve-" + id).click();
    expect(await waitText(tid(page, "approval-outcome-" + id), /Approved/)).toContain("Approved");
    expect(await waitText(tid(page, "approval-completion-" + id), /the tool completed/)).toMatch(/audit #\d+/);
    expect(await card.getAttribute("data-state")).toBe("completed");
    expect(readFileSync(path, "utf8")).toBe(content);
    expect(await result(agent_id, message_id)).toMatchObject({ state: "done", response: "Written after approval." });
    expect((await k.client.call("approval.list")).approvals).toEqual([]);
    expect(await unreloaded(page)).toBe(true);
  });

  test("a denial with a reason typed on the page reaches the agent in its tool_result", async () => {
    const out = join(k.dataDir, "files", "out");
    const path = join(out, "secrets-summary.md");
    const reason = "Not this week: the out folder is frozen until Friday.";
    const { agent_id } = await k.client.call("agent.spawn", { manifest: writer("careful", out) });
    srv.reset();
    srv.script([
      { content: [{ type: "tool_use", name: "file_write", input: { path, content: "summary" } }] },
      { text: "Understood, I will not write it.", match: { contains: "tool_result" } },
    ]);
    const { message_id } = await k.client.call("agent.send", { agent_id, message: "write the summary" });
    const id = await pendingCard(page, path);
    await tid(page, "approval-reason-" + id).fill(reason);
    await tid(page, "approval-deny-" + id).click();
    const outcome = await waitText(tid(page, "approval-outcome-" + id), /Denied/);
    expect(outcome).toContain(reason);
    expect(await tid(page, "approval-card-" + id).getAttribute("data-state")).toBe("denied");
    expect(await result(agent_id, message_id)).toMatchObject({
      state: "done",
      response: "Understood, I will not write it.",
    });
    expect(existsSync(path)).toBe(false);
    // the model's next request carries the reason in the tool_result of the denied call
    expect(srv.requests.length).toBe(2);
    const blocks = (srv.requests[1]!.body.messages as any[]).flatMap((m) =>
      Array.isArray(m.content) ? m.content : [],
    );
    const tr = blocks.filter((b) => b.type === "tool_result");
    expect(tr.length).toBe(1);
    expect(JSON.stringify(tr[0].content)).toContain(reason);
    const decided = (await k.client.call("audit.query", { kind: "approval.decided", limit: 100 })).events as any[];
    expect(decided.find((e) => e.approval_id === id)).toMatchObject({ decision: "deny", reason });
  });

  test("the Audit page's live tail shows new records as they happen; the chain verifies", async () => {
    await nav(page, "audit");
    const verified = page.locator('[data-testid="audit-verify-state"][data-ok="true"]');
    await verified.waitFor({ timeout: 10_000 });
    expect(await verified.textContent()).toMatch(/chain verified: \d+ records/);
    await tid(page, "audit-count")
      .filter({ hasText: /records? shown/ })
      .waitFor();
    await mark(page);
    const word = `tail-${Date.now().toString(36)}`;
    const before = (await k.client.call("system.info")).audit_head.seq as number;
    expect(
      await k.client.call("tool.invoke", { agent_id: ids.watcher, tool: "echo", input: { message: word } }),
    ).toEqual({ output: { message: word } });
    const call = tid(page, "audit-rows").locator('tr[data-kind="tool.call"]', { hasText: word });
    await call.waitFor({ timeout: 5000 });
    const seq = Number((await call.getAttribute("data-testid"))!.slice("audit-row-".length));
    expect(seq).toBeGreaterThan(before);
    const result = tid(page, "audit-row-" + (seq + 1));
    await result.waitFor({ timeout: 5000 });
    expect(await result.getAttribute("data-kind")).toBe("tool.result");
    // newest first: the live rows are on top
    const top = await tid(page, "audit-rows").locator("tr").first().getAttribute("data-testid");
    expect(Number(top!.slice("audit-row-".length))).toBeGreaterThanOrEqual(seq + 1);
    expect(await unreloaded(page)).toBe(true);
  });

  test("a viewer sees a pending approval but cannot answer it: no buttons, and a forced approval.respond is -32001", async () => {
    const out = join(k.dataDir, "files", "out");
    const path = join(out, "pending.txt");
    const { agent_id } = await k.client.call("agent.spawn", { manifest: writer("hopeful", out) });
    ids.hopeful = agent_id;
    srv.reset();
    srv.script([{ content: [{ type: "tool_use", name: "file_write", input: { path, content: "waiting\n" } }] }]);
    await k.client.call("agent.send", { agent_id, message: "write pending.txt" });
    await nav(page, "approvals");
    const id = await pendingCard(page, path);
    ids.pending = id;

    const vctx = await context(DESKTOP);
    const v = await vctx.newPage();
    await login(v, k.tokens.viewer);
    expect(await waitText(tid(v, "role-badge"), /viewer/)).toContain("read-only");
    await tid(v, "agent-row-" + agent_id).waitFor();
    expect(await v.locator('[data-testid^="agent-stop-"]').count()).toBe(0);
    await nav(v, "approvals");
    const card = tid(v, "approval-card-" + id);
    await card.waitFor();
    expect(await tid(v, "approval-path-" + id).textContent()).toBe(path);
    expect(await tid(v, "approval-readonly-" + id).isVisible()).toBe(true);
    expect(await tid(v, "approval-approve-" + id).count()).toBe(0);
    expect(await tid(v, "approval-deny-" + id).count()).toBe(0);
    expect(await card.locator("button:not([disabled])").count()).toBe(0);
    await shot(v, "approvals-viewer");

    // forced, over a WebSocket of its own from the page (same origin, the viewer's cookie)
    const answer = await v.evaluate(
      (approval) =>
        new Promise<any>((done, fail) => {
          const ws = new WebSocket(`ws://${location.host}/rpc`);
          ws.onopen = () =>
            ws.send(
              JSON.stringify({
                jsonrpc: "2.0",
                id: 1,
                method: "approval.respond",
                params: { id: approval, decision: "approve" },
              }),
            );
          ws.onmessage = (e) => {
            const m = JSON.parse(e.data);
            if (m.id === 1) (ws.close(), done(m));
          };
          ws.onerror = () => fail(new Error("the viewer's WebSocket failed"));
          setTimeout(() => fail(new Error("no answer")), 5000);
        }),
      id,
    );
    expect(answer.error.code).toBe(-32001);
    expect(answer.error.message).toContain("read-only");
    expect(answer.result).toBeUndefined();
    // still pending everywhere, nothing written
    expect(((await k.client.call("approval.list")).approvals as any[]).map((a) => a.id)).toEqual([id]);
    expect(await tid(page, "approval-card-" + id).getAttribute("data-state")).toBe("pending");
    expect(await card.getAttribute("data-state")).toBe("pending");
    expect(existsSync(path)).toBe(false);
    await vctx.close();
  });

  test("a cross-origin WebSocket is refused even with the operator's session in the browser", async () => {
    const probes: { cookie: string; origin: string }[] = [];
    const evil = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (req) => {
        if (new URL(req.url).pathname === "/probe") {
          probes.push({ cookie: req.headers.get("cookie") ?? "", origin: req.headers.get("origin") ?? "" });
          return new Response("no", { status: 400 });
        }
        return new Response("<!doctype html><title>elsewhere</title><p>another origin</p>", {
          headers: { "content-type": "text/html" },
        });
      },
    });
    try {
      // control: from the dashboard's own origin the same context opens it
      const own = await tryWebSocket(page, `ws://127.0.0.1:${k.port}/rpc`);
      expect(own.opened).toBe(true);
      expect(JSON.parse(own.first!).method).toBe("system.ready");

      const p = await op.newPage();
      for (const origin of [`http://127.0.0.1:${evil.port}`, `http://localhost:${evil.port}`]) {
        await p.goto(origin + "/");
        const r = await tryWebSocket(p, `ws://127.0.0.1:${k.port}/rpc`);
        expect({ origin, opened: r.opened, first: r.first }).toEqual({ origin, opened: false, first: null });
        expect(r.error || r.closed).toBe(true);
      }
      // 127.0.0.1 on another port is the same site, so the SameSite=Strict cookie does go with a
      // WebSocket from there (seen at a probe on that origin): the kernel's Origin check is what refuses
      await p.goto(`http://127.0.0.1:${evil.port}/`);
      await tryWebSocket(p, `ws://127.0.0.1:${evil.port}/probe`);
      const probe = probes.at(-1)!;
      expect(probe.cookie).toContain("aaos_session=");
      expect(probe.origin).toBe(`http://127.0.0.1:${evil.port}`);
      const asEvil = await fetch(`${k.origin}/rpc`, { headers: { cookie: probe.cookie, origin: probe.origin } });
      expect(asEvil.status).toBe(403);
      expect(await asEvil.json()).toEqual({ error: "cross-origin WebSocket refused" });
      // the same cookie from the right origin is a valid session (400: only the upgrade is missing)
      const asOwn = await fetch(`${k.origin}/rpc`, { headers: { cookie: probe.cookie, origin: k.origin } });
      expect(asOwn.status).toBe(400);
      await p.close();
      // and the operator's own page is still connected and logged in
      expect(await page.evaluate(() => fetch("/session").then((r) => r.status))).toBe(200);
    } finally {
      evil.stop(true);
    }
  });

  test("screenshots of every page at 1280×800 and on a phone (375×812)", async () => {
    await nav(page, "agents");
    await tid(page, "agent-row-" + ids.hopeful).waitFor();
    await shot(page, "agents");

    await tid(page, "agent-link-" + ids.writer).click();
    await tid(page, "waterfall").locator('[data-testid^="wf-"]').first().waitFor({ timeout: 10_000 });
    await tid(page, "capabilities").waitFor();
    expect(await tid(page, "capabilities").textContent()).toContain("file_write");
    await shot(page, "agent-top");
    await page.screenshot({ path: join(SHOTS, "agent-full.png"), fullPage: true });
    // the waterfall: the approved run's model turns, its tool call and the approval
    const wf = tid(page, "waterfall");
    const rows = async (type: string) => wf.locator(`[data-testid^="wf-${type}-"]`).count();
    expect(await rows("model")).toBe(2);
    expect(await rows("tool")).toBe(1);
    expect(await rows("approval")).toBe(1);
    await page.locator("section", { has: wf }).evaluate((e) => e.scrollIntoView({ block: "start" }));
    await shot(page, "agent");

    await nav(page, "approvals");
    await tid(page, "approval-card-" + ids.pending).waitFor();
    await shot(page, "approvals");

    await nav(page, "audit");
    await page.locator('[data-testid="audit-verify-state"][data-ok="true"]').waitFor();
    await shot(page, "audit");

    await nav(page, "scheduler");
    await tid(page, "sched").locator(".card").first().waitFor();
    await shot(page, "scheduler");

    await nav(page, "system");
    await tid(page, "system-health").waitFor();
    expect(await tid(page, "system-health").textContent()).toContain("healthy");
    await shot(page, "system");

    const phone = await context(PHONE);
    const p = await phone.newPage();
    await login(p, k.tokens.operator);
    await tid(p, "agent-row-" + ids.hopeful).waitFor();
    await shot(p, "agents-phone");
    await nav(p, "approvals");
    await tid(p, "approval-card-" + ids.pending).waitFor();
    await shot(p, "approvals-phone");
    // nothing wider than the phone: the page itself does not scroll sideways
    const overflow = await p.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    console.log(`approvals on a phone: horizontal overflow ${overflow} px`);
    await phone.close();
    for (const name of [
      "login",
      "agents",
      "agent",
      "approvals",
      "audit",
      "scheduler",
      "system",
      "agents-phone",
      "approvals-phone",
    ])
      expect(existsSync(join(SHOTS, `${name}.png`))).toBe(true);
  });

  test("after 5 wrong tokens the page shows the rate-limit error, and even the right token waits", async () => {
    const ctx = await context(DESKTOP);
    const p = await ctx.newPage();
    await p.goto(k.origin + "/");
    for (let i = 1; i <= 5; i++) {
      await tid(p, "login-token").fill(`wrong-token-number-${i}-xxxxxxxxxxxx`);
      await tid(p, "login-submit").click();
      await answered(p);
      expect(await waitText(tid(p, "login-error"), /Wrong token/)).toContain("Wrong token");
    }
    await tid(p, "login-token").fill("wrong-token-number-6-xxxxxxxxxxxx");
    await tid(p, "login-submit").click();
    await answered(p);
    const limited = await waitText(tid(p, "login-error"), /Too many failed logins/);
    expect(limited).toMatch(/try again in \d+ s/);
    await tid(p, "login-token").fill(k.tokens.operator);
    await tid(p, "login-submit").click();
    await answered(p);
    expect(await waitText(tid(p, "login-error"), /Too many failed logins/)).toContain("Too many");
    expect(await tid(p, "role-badge").isVisible()).toBe(false);
    expect(await p.evaluate(() => fetch("/session").then((r) => r.status))).toBe(401);
    await shot(p, "login-rate-limited");
    // the failures are audited; the operator's session is untouched
    const logins = (await k.client.call("audit.query", { kind: "web.login", limit: 100 })).events as any[];
    expect(logins.filter((e) => e.ok === false).length).toBeGreaterThanOrEqual(6);
    expect(await page.evaluate(() => fetch("/session").then((r) => r.status))).toBe(200);
    await ctx.close();
    expect(problems).toEqual([]);
  });
});
