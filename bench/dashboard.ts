// The supervision dashboard, on a host-mode kernel with its HTTP listener
// (--listen http:127.0.0.1:PORT) beside its unix socket:
// - the page's load time in Debian's chromium (headless, playwright-core):
//   from navigation start to the first frame after the agents list is in the
//   DOM, with a session already open (the page a returning operator sees:
//   /session, the WebSocket, agent.list, agent.status, sched.status), and the
//   whole login (the form, the token typed and submitted, the list), beside
//   the same browser loading a static page of the same files and byte sizes
//   from a bare Bun.serve in the same run; the time is the browser's own
//   (performance.now() from the navigation's start, taken in the page);
// - the WebSocket's notification latency: from the unix-socket tool.invoke
//   echo that causes an audit record to its audit.record notification on a
//   WebSocket client subscribed to "audit", beside the same record on a
//   second unix-socket connection subscribed the same way (the direct RPC
//   notification), both seen from the same call (half the calls with each
//   subscribed first: the kernel notifies in subscription order);
// - the embedded assets' bytes (raw and gzip) beside the compiled kernel's.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Browser, Page } from "playwright-core";
import { RpcClient, type Notification } from "../cli/client.ts";
import { launchBrowser, startDashboardKernel, type DashboardKernel } from "../test/browser/harness.ts";
import type { Figure } from "./figure.ts";

const ROOT = resolve(import.meta.dir, "..");
const ASSETS = join(ROOT, "kernel/web/assets");
const FILES = ["index.html", "app.js", "app.css"] as const;
const MODEL = "claude-haiku-4-5-20251001";
const LOADS = Number(process.env.AAOS_BENCH_DASHBOARD_LOADS ?? 50);
const LOGINS = Number(process.env.AAOS_BENCH_DASHBOARD_LOGINS ?? 10);
const EVENTS = Number(process.env.AAOS_BENCH_DASHBOARD_EVENTS ?? 1_000);
const AGENTS = 5;

function quantiles(ms: number[]): { p50: number; p99: number } {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { p50: at(0.5), p99: at(0.99) };
}
const us = (ms: number) => Math.round(ms * 1000);
const ms1 = (ms: number) => Math.round(ms * 10) / 10;

/**
 * Installed before any of the page's scripts: the first time an element
 * matching `selector` is in the DOM, wait for the next frame and keep
 * performance.now() (ms since the navigation started) in window.__aaosShown.
 */
function watchFor(selector: string): string {
  return `(() => {
    const sel = ${JSON.stringify(selector)};
    const done = () => requestAnimationFrame(() => { window.__aaosShown = performance.now(); });
    const check = () => { if (document.querySelector(sel)) { obs.disconnect(); done(); return true; } return false; };
    const obs = new MutationObserver(check);
    obs.observe(document, { childList: true, subtree: true });
  })();`;
}

async function timedLoad(page: Page, url: string, selector: string, before?: (p: Page) => Promise<void>) {
  await page.addInitScript(watchFor(selector));
  await page.goto(url, { waitUntil: "commit" });
  if (before) await before(page);
  await page.waitForFunction(() => typeof (globalThis as any).__aaosShown === "number", null, { timeout: 30_000 });
  return (await page.evaluate(() => (globalThis as any).__aaosShown)) as number;
}

/** the same three files at the same byte sizes, inert: the HTML links the CSS and the JS, the JS adds one element */
function staticTwin(sizes: Record<(typeof FILES)[number], number>) {
  const pad = (text: string, size: number, open: string, close: string) => {
    const room = size - Buffer.byteLength(text) - open.length - close.length;
    return room > 0 ? text + open + "x".repeat(room) + close : text;
  };
  const html = pad(
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>static</title>` +
      `<link rel="stylesheet" href="/app.css"><script src="/app.js" defer></script></head>` +
      `<body><main id="view"><p>Loading…</p></main></body></html>\n`,
    sizes["index.html"],
    "<!--",
    "-->\n",
  );
  const js = pad(
    `document.getElementById("view").append(Object.assign(document.createElement("p"), {textContent: "ready"}));` +
      `document.querySelector("#view p:last-child").dataset.testid = "static-ready";\n`,
    sizes["app.js"],
    "/*",
    "*/\n",
  );
  const css = pad(`body { font: 14px sans-serif; }\n`, sizes["app.css"], "/*", "*/\n");
  const files: Record<string, [body: string, type: string]> = {
    "/": [html, "text/html; charset=utf-8"],
    "/app.js": [js, "text/javascript"],
    "/app.css": [css, "text/css"],
  };
  return files;
}

async function pageLoad(k: DashboardKernel, browser: Browser, agentIds: string[]): Promise<Figure[]> {
  const sizes = Object.fromEntries(FILES.map((f) => [f, statSync(join(ASSETS, f)).size])) as Record<
    (typeof FILES)[number],
    number
  >;
  const twin = staticTwin(sizes);
  const bare = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const t = twin[new URL(req.url).pathname];
      return t
        ? new Response(t[0], { headers: { "content-type": t[1], "cache-control": "no-store" } })
        : new Response("no", { status: 404 });
    },
  });
  const twinBytes = Object.values(twin).reduce((n, [b]) => n + Buffer.byteLength(b), 0);
  const last = agentIds[agentIds.length - 1]!;
  const rowSel = `[data-testid="agent-row-${last}"]`;
  try {
    // --- a session already open (one login, its cookie in the context)
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const login = await ctx.request.post(k.origin + "/login", {
      headers: { origin: k.origin },
      data: { token: k.tokens.operator },
    });
    if (login.status() !== 200) throw new Error(`login: HTTP ${login.status()}`);
    const withSession: number[] = [];
    for (let i = 0; i < LOADS + 3; i++) {
      const page = await ctx.newPage();
      const t = await timedLoad(page, k.origin + "/#/agents", rowSel);
      if (i >= 3) withSession.push(t);
      await page.close();
    }
    await ctx.close();

    // --- the login itself: the form, the token, the list
    const logins: number[] = [];
    for (let i = 0; i < LOGINS + 1; i++) {
      const c = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await c.newPage();
      const t = await timedLoad(page, k.origin + "/#/agents", rowSel, async (p) => {
        await p.fill('[data-testid="login-token"]', k.tokens.operator);
        await p.click('[data-testid="login-submit"]');
      });
      if (i >= 1) logins.push(t);
      await c.close();
    }

    // --- the static twin, same browser, same run
    const sctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const baseline: number[] = [];
    for (let i = 0; i < LOADS + 3; i++) {
      const page = await sctx.newPage();
      const t = await timedLoad(page, `http://127.0.0.1:${bare.port}/`, '[data-testid="static-ready"]');
      if (i >= 3) baseline.push(t);
      await page.close();
    }
    await sctx.close();

    const a = quantiles(withSession);
    const l = quantiles(logins);
    const b = quantiles(baseline);
    const label = `static page of the same ${FILES.length} files and bytes (${twinBytes.toLocaleString("en-US")} B) from a bare Bun.serve`;
    return [
      {
        name: `page load with a session, navigation → ${AGENTS} agents listed (chromium headless, ${LOADS} loads) p50`,
        value: ms1(a.p50),
        unit: "ms",
        baseline: { name: `${label} p50`, value: ms1(b.p50) },
      },
      {
        name: `page load with a session p99 (of ${LOADS})`,
        value: ms1(a.p99),
        unit: "ms",
        baseline: { name: `static page p99`, value: ms1(b.p99) },
      },
      {
        name: `login: navigation → form → token submitted → agents listed (${LOGINS} logins) p50`,
        value: ms1(l.p50),
        unit: "ms",
        baseline: { name: `static page p50`, value: ms1(b.p50) },
      },
    ];
  } finally {
    bare.stop(true);
  }
}

/** the WebSocket /rpc with the operator's session, subscribed to audit */
async function openWs(k: DashboardKernel, onRecord: (n: any) => void): Promise<WebSocket> {
  const r = await fetch(k.origin + "/login", {
    method: "POST",
    headers: { origin: k.origin, "content-type": "application/json" },
    body: JSON.stringify({ token: k.tokens.operator }),
  });
  const cookie = (r.headers.get("set-cookie") ?? "").split(";")[0]!;
  const ws = new WebSocket(k.origin.replace(/^http/, "ws") + "/rpc", { headers: { cookie, origin: k.origin } } as any);
  await new Promise<void>((res, rej) => {
    ws.onerror = () => rej(new Error("WebSocket /rpc refused"));
    ws.onmessage = (m) => {
      const msg = JSON.parse(String(m.data));
      if (msg.id === 1) {
        if (msg.error) rej(new Error(msg.error.message));
        else res();
      } else if (msg.method === "audit.record") onRecord(msg.params);
    };
    ws.onopen = () =>
      ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "events.subscribe", params: { topics: ["audit"] } }));
  });
  ws.onmessage = (m) => {
    const msg = JSON.parse(String(m.data));
    if (msg.method === "audit.record") onRecord(msg.params);
  };
  return ws;
}

async function notificationLatency(k: DashboardKernel, echoer: string): Promise<Figure[]> {
  // the record each call waits for: its own tool.call, known by the call's input
  let want: { tag: string; ws?: number; unix?: number; done: () => void } | null = null;
  const seen = (via: "ws" | "unix") => (rec: any) => {
    const w = want;
    if (!w || w[via] !== undefined || rec?.kind !== "tool.call" || rec.input?.message !== w.tag) return;
    w[via] = performance.now();
    if (w.ws !== undefined && w.unix !== undefined) w.done();
  };
  const c = k.client;
  const wsMs: number[] = [];
  const unixMs: number[] = [];
  // the kernel notifies its subscribers in the order they subscribed: half the
  // calls with the WebSocket subscribed first, half with the unix socket first
  for (const wsFirst of [true, false]) {
    let ws: WebSocket | null = null;
    let direct: RpcClient | null = null;
    const subscribeUnix = async () => {
      direct = await RpcClient.unix(k.socket);
      direct.onNotification((n: Notification) => {
        if (n.method === "audit.record") seen("unix")(n.params);
      });
      await direct.call("events.subscribe", { topics: ["audit"] });
    };
    if (wsFirst) ws = await openWs(k, seen("ws"));
    await subscribeUnix();
    if (!wsFirst) ws = await openWs(k, seen("ws"));
    try {
      for (let i = 0; i < EVENTS / 2 + 50; i++) {
        const tag = `ping ${wsFirst ? "w" : "u"}${i}`;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const arrived = new Promise<void>((res, rej) => {
          want = { tag, done: res };
          timer = setTimeout(() => rej(new Error(`no audit.record for ${tag} within 10 s`)), 10_000);
        });
        const t0 = performance.now();
        await c.call("tool.invoke", { agent_id: echoer, tool: "echo", input: { message: tag } });
        await arrived;
        clearTimeout(timer);
        const w = want!;
        if (i >= 50) {
          wsMs.push(w.ws! - t0);
          unixMs.push(w.unix! - t0);
        }
        want = null;
      }
    } finally {
      ws?.close();
      (direct as RpcClient | null)?.close();
    }
  }
  const w = quantiles(wsMs);
  const u = quantiles(unixMs);
  const d = quantiles(wsMs.map((t, i) => t - unixMs[i]!));
  return [
    {
      name: `audit.record on the WebSocket /rpc, from the unix-socket tool.invoke echo (${EVENTS.toLocaleString("en-US")} calls) p50`,
      value: us(w.p50),
      unit: "µs",
      baseline: { name: "the same record on a second unix-socket connection (events.subscribe) p50", value: us(u.p50) },
    },
    {
      name: "audit.record on the WebSocket p99",
      value: us(w.p99),
      unit: "µs",
      baseline: { name: "on the unix socket p99", value: us(u.p99) },
    },
    {
      // the same record on both, so the call's own cost (the audit append) cancels out
      name: "the WebSocket's arrival minus the unix socket's, per record, p50",
      value: us(d.p50),
      unit: "µs",
    },
    { name: "the WebSocket's arrival minus the unix socket's, per record, p99", value: us(d.p99), unit: "µs" },
  ];
}

function assetSize(): Figure[] {
  const bodies = FILES.map((f) => readFileSync(join(ASSETS, f)));
  const raw = bodies.reduce((n, b) => n + b.length, 0);
  const gz = bodies.reduce((n, b) => n + Bun.gzipSync(b, { level: 9 }).length, 0);
  const bin = join(ROOT, "out/aaos-kernel");
  const figures: Figure[] = [
    {
      name: `the dashboard's embedded assets (${FILES.join(" + ")})`,
      value: raw,
      unit: "bytes",
      ...(existsSync(bin)
        ? { baseline: { name: "the compiled kernel out/aaos-kernel", value: statSync(bin).size } }
        : {}),
    },
    {
      name: "the same assets gzip -9 (each file)",
      value: gz,
      unit: "bytes",
      baseline: { name: "raw", value: raw },
    },
  ];
  if (existsSync(bin))
    figures.push({
      name: "the assets' share of the compiled kernel's bytes",
      value: Math.round((raw / statSync(bin).size) * 1e6) / 1e4,
      unit: "%",
    });
  else figures.push({ name: "out/aaos-kernel absent (make image builds it): no ratio", value: 0, unit: "" });
  return figures;
}

export async function benchDashboard(): Promise<Figure[]> {
  const k = await startDashboardKernel();
  let browser: Browser | null = null;
  try {
    const spawn = async (manifest: string) => (await k.client.call("agent.spawn", { manifest })).agent_id as string;
    const echoer = await spawn(`name: echoer\nmodel: ${MODEL}\ncapabilities: [echo]\n`);
    const ids = [echoer];
    for (let i = 1; i < AGENTS; i++) ids.push(await spawn(`name: worker-${i}\nmodel: ${MODEL}\n`));
    browser = await launchBrowser();
    const load = await pageLoad(k, browser, ids);
    await browser.close();
    browser = null;
    const notif = await notificationLatency(k, echoer);
    return [...load, ...notif, ...assetSize()];
  } finally {
    await browser?.close().catch(() => {});
    await k.stop();
  }
}

if (import.meta.main) {
  const { printFigures } = await import("./figure.ts");
  printFigures("dashboard", await benchDashboard());
}
