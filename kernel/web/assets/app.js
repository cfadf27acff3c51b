// aaOS supervision dashboard: one page, no framework, no build step. It is a client of
// the public JSON-RPC API over the WebSocket /rpc (docs/api.md); every text it shows is
// inserted with textContent (never innerHTML with data).
"use strict";

// ---------- small helpers ----------

const $ = (id) => document.getElementById(id);

/** h("div", {class, testid, onclick, ...attrs}, ...children): a DOM element. */
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "testid") el.dataset.testid = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "text") el.textContent = v;
      else if (k === "value") el.value = v;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  add(el, kids);
  return el;
}
function add(el, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k === undefined || k === null || k === false) continue;
    el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return el;
}
function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}
function debounce(fn, ms) {
  let t = null;
  return (...a) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...a), ms);
  };
}
const short = (id) => (typeof id === "string" && id.length > 11 ? id.slice(0, 11) + "…" : String(id ?? "—"));
const num = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : n == null ? "—" : String(n));
function bytes(n) {
  if (typeof n !== "number") return "—";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) (n /= 1024), i++;
  return (i ? n.toFixed(1) : String(n)) + " " + u[i];
}
function dur(ms) {
  if (typeof ms !== "number") return "—";
  if (ms < 1000) return Math.round(ms) + " ms";
  const s = ms / 1000;
  if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + " s";
  const m = Math.floor(s / 60), hh = Math.floor(m / 60), d = Math.floor(hh / 24);
  if (d) return `${d}d ${hh % 24}h ${m % 60}m`;
  if (hh) return `${hh}h ${m % 60}m ${Math.floor(s % 60)}s`;
  return `${m}m ${Math.floor(s % 60)}s`;
}
function clock(ts) {
  const d = new Date(ts);
  return isNaN(d) ? String(ts ?? "—") : d.toLocaleTimeString("en-GB", { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}
function ago(ts) {
  const ms = Date.now() - new Date(ts).getTime();
  if (isNaN(ms)) return String(ts ?? "");
  return ms < 5000 ? "just now" : dur(ms).replace(/\.\d+ s$/, " s") + " ago";
}
/** a key as words: "rejectedBudget" -> "rejected (budget)", "aging_ms" -> "aging (ms)" */
function label(k) {
  if (/\s/.test(k)) return k;
  const w = k.replace(/([a-z0-9])([A-Z])/g, "$1 $2").split(/[_\s]+/).filter(Boolean).map((x) => (/^[A-Z][a-z]/.test(x) ? x.toLowerCase() : x));
  if (w.length > 1 && /^(ms|s|bytes|pct)$/.test(w[w.length - 1])) return w.slice(0, -1).join(" ") + ` (${w[w.length - 1]})`;
  if (w.length === 2 && /ed$/.test(w[0]) && !/^(at|by|on|in|to|from|until|since|after|before)$/.test(w[1])) return `${w[0]} (${w[1]})`;
  return w.join(" ");
}
const plural = (n, word) => `${num(n)} ${word}${n === 1 ? "" : "s"}`;
const pretty = (v) => (typeof v === "string" ? v : JSON.stringify(v, null, 2));
const when = (ts) => h("time", { datetime: ts, title: ts }, clock(ts));

/** A generic rendering of any JSON value: objects as key/value tables, arrays of objects as tables. */
function generic(v, depth = 0) {
  if (v === null || v === undefined) return h("span", { class: "muted" }, "—");
  if (typeof v !== "object") return h("span", null, typeof v === "boolean" ? (v ? "yes" : "no") : String(v));
  if (Array.isArray(v)) {
    if (!v.length) return h("span", { class: "muted" }, "none");
    if (v.every((x) => x && typeof x === "object" && !Array.isArray(x))) {
      const keys = [...new Set(v.flatMap((x) => Object.keys(x)))];
      return tbl(keys.map(label), v.map((x) => keys.map((k) => generic(x[k], depth + 1))));
    }
    return h("span", null, v.map((x) => (typeof x === "object" ? JSON.stringify(x) : String(x))).join(", "));
  }
  const keys = Object.keys(v);
  if (!keys.length) return h("span", { class: "muted" }, "empty");
  if (depth > 4) return h("code", null, JSON.stringify(v));
  return h("table", { class: "kv" }, h("tbody", null, keys.map((k) => h("tr", null, h("th", { scope: "row" }, label(k)), h("td", null, generic(v[k], depth + 1))))));
}
/** A table in its own horizontally scrolling box. */
function tbl(head, rows, attrs) {
  return h(
    "div",
    { class: "scroll", ...attrs },
    h("table", { class: "grid" }, h("thead", null, h("tr", null, head.map((x) => h("th", { scope: "col" }, x)))), h("tbody", null, rows.map((r) => (r instanceof Node ? r : h("tr", null, r.map((c) => h("td", null, c))))))),
  );
}
function section(title, ...kids) {
  return h("section", { class: "card" }, h("h2", null, title), kids);
}
const wide = (el) => (el.classList.add("wide"), el);
function meter(used, max, label) {
  if (typeof used !== "number" || typeof max !== "number" || max <= 0) return null;
  const pct = Math.min(100, (used / max) * 100);
  const m = h("span", { class: "meter" + (pct >= 90 ? " hot" : pct >= 70 ? " warm" : ""), role: "img", "aria-label": label || `${Math.round(pct)} percent` }, h("span", { class: "fill" }));
  m.firstChild.style.width = pct.toFixed(1) + "%";
  return m;
}

// ---------- state ----------

const S = {
  role: null, // "operator" | "viewer"
  info: null, // system.ready params
  agents: new Map(), // agent_id -> agent.list entry
  pending: new Map(), // approval id -> ApprovalInfo
  decided: [], // {a, decision, reason, by, completion}
  cards: new Map(), // approval id -> card element (while shown)
  watch: [], // approvals waiting for their tool's completion
  output: new Map(), // agent_id -> [events] (live output buffer)
  tail: [], // audit records seen live (capped)
  route: { page: "agents" },
  view: null, // current view's hooks {onAudit, onOutput, stop}
};
const isOp = () => S.role === "operator";

// ---------- errors ----------

function showError(msg) {
  const box = $("errors");
  const item = h("div", { class: "err" }, h("span", null, "⚠ " + msg), h("button", { type: "button", class: "btn small", "aria-label": "Dismiss", onclick: () => done() }, "✕"));
  const done = () => {
    item.remove();
    if (!box.firstChild) box.hidden = true;
  };
  box.append(item);
  box.hidden = false;
  while (box.childNodes.length > 4) box.firstChild.remove();
  setTimeout(done, 10000);
}

// ---------- HTTP session ----------

async function http(method, path, body) {
  const r = await fetch(path, {
    method,
    credentials: "same-origin",
    cache: "no-store",
    headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  let data = null;
  try {
    data = await r.json();
  } catch {}
  return { status: r.status, data, headers: r.headers };
}

// ---------- JSON-RPC over WebSocket ----------

const rpc = {
  ws: null,
  id: 0,
  pending: new Map(),
  waiters: [],
  open: false,
  backoff: 500,
  timer: null,
  wanted: false,
  connect() {
    this.wanted = true;
    clearTimeout(this.timer);
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/rpc");
    this.ws = ws;
    ws.onopen = () => {
      this.open = true;
      this.backoff = 500;
      banner(null);
      for (const w of this.waiters.splice(0)) w();
      onConnected();
    };
    ws.onmessage = (e) => {
      let m;
      try {
        m = JSON.parse(e.data);
      } catch {
        return;
      }
      for (const x of Array.isArray(m) ? m : [m]) this.receive(x);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.open = false;
      for (const p of this.pending.values()) p.fail(new Error("the connection closed before " + p.method + " answered"));
      this.pending.clear();
      if (!this.wanted) return;
      const wait = this.backoff;
      this.backoff = Math.min(this.backoff * 2, 15000);
      banner(`Disconnected — reconnecting in ${Math.ceil(wait / 1000)} s…`);
      this.timer = setTimeout(async () => {
        // a refused upgrade looks like any close: ask whether the session is still valid
        try {
          const s = await http("GET", "/session");
          if (s.status === 401) return loggedOut("Your session ended; log in again.");
        } catch {}
        banner("Disconnected — reconnecting…");
        this.connect();
      }, wait);
    };
  },
  close() {
    this.wanted = false;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close();
    this.ws = null;
    this.open = false;
  },
  receive(m) {
    if (m.id !== undefined && m.id !== null && (m.result !== undefined || m.error)) {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error) {
        const e = new Error(m.error.message || "error " + m.error.code);
        e.code = m.error.code;
        e.data = m.error.data;
        p.fail(e);
      } else p.ok(m.result);
    } else if (m.method) notify(m.method, m.params || {});
  },
  /** call(method, params, {timeout, quiet}) -> result; errors are shown unless quiet. */
  call(method, params = {}, opt = {}) {
    return new Promise((resolve, reject) => {
      const fail = (e) => {
        if (!opt.quiet) showError(`${method}: ${e.message}`);
        reject(e);
      };
      if (!this.open) {
        // while (re)connecting, wait for the socket instead of failing at once
        if (!this.wanted) return fail(new Error("not connected"));
        const w = () => this.call(method, params, opt).then(resolve, reject);
        const go = () => (clearTimeout(t), w());
        const t = setTimeout(() => ((this.waiters = this.waiters.filter((x) => x !== go)), fail(new Error("not connected"))), opt.timeout || 20000);
        this.waiters.push(go);
        return;
      }
      const id = ++this.id;
      const t = setTimeout(() => {
        this.pending.delete(id);
        fail(new Error(`no answer within ${(opt.timeout || 20000) / 1000} s`));
      }, opt.timeout || 20000);
      this.pending.set(id, {
        method,
        ok: (r) => (clearTimeout(t), resolve(r)),
        fail: (e) => (clearTimeout(t), fail(e)),
      });
      this.ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    });
  },
};
const call = (m, p, o) => rpc.call(m, p, o);

function banner(text) {
  const b = $("conn");
  b.hidden = !text;
  b.textContent = text || "";
}

async function onConnected() {
  try {
    await call("events.subscribe", { topics: ["audit", "agent.output"] });
  } catch {}
  loadApprovals();
  render();
}

function notify(method, p) {
  switch (method) {
    case "system.ready":
      S.info = p;
      $("top").title = `aaOS ${p.version ?? ""} · boot ${p.boot_id ?? ""}`;
      break;
    case "web.session":
      if (p.role && p.role !== S.role) {
        S.role = p.role;
        chrome();
        render();
      }
      break;
    case "approval.requested":
      if (p && p.id) {
        S.pending.set(p.id, p);
        navCount();
        if (!S.agents.has(p.agent_id)) loadNames();
        S.view?.onApproval?.(p);
      }
      break;
    case "audit.record":
      onRecord(p);
      break;
    case "agent.output":
      onOutput(p);
      break;
  }
}

const AGENT_KINDS = /^(agent\.(spawn|stop|resume|failed|restart)|run\.(start|end))$/;
function onRecord(r) {
  S.tail.push(r);
  if (S.tail.length > 2000) S.tail.splice(0, S.tail.length - 2000);
  if (r.kind === "approval.decided" || r.kind === "approval.timeout" || r.kind === "approval.cancelled") {
    const a = S.pending.get(r.approval_id);
    if (a) decide(a, r.decision || "deny", r.reason, r.kind);
  }
  if (r.kind === "tool.result") {
    for (const w of S.watch) {
      if (!w.completion && w.a.agent_id === r.agent_id && w.a.tool === r.tool && r.seq > (w.afterSeq || 0)) {
        w.completion = r;
        S.watch = S.watch.filter((x) => x !== w);
        S.view?.onCompletion?.(w);
        break;
      }
    }
  }
  S.view?.onAudit?.(r);
}
function onOutput(p) {
  if (!p.agent_id) return;
  let buf = S.output.get(p.agent_id);
  if (!buf) S.output.set(p.agent_id, (buf = []));
  buf.push(p);
  if (buf.length > 500) buf.splice(0, buf.length - 500);
  S.view?.onOutput?.(p);
}

// ---------- approvals (shared state) ----------

async function loadApprovals() {
  try {
    const r = await call("approval.list", {}, { quiet: true });
    const ids = new Set(r.approvals.map((a) => a.id));
    for (const a of r.approvals) S.pending.set(a.id, a);
    for (const id of [...S.pending.keys()]) if (!ids.has(id) && !S.cards.get(id)?.answered) S.pending.delete(id);
    navCount();
    if (S.route.page === "approvals") render();
    else S.view?.refresh?.();
  } catch {}
}
/** agent names for pages other than Agents (agent.list); fills every [data-agent-name] shown */
const loadNames = debounce(async () => {
  try {
    for (const a of (await call("agent.list", {}, { quiet: true })).agents) S.agents.set(a.agent_id, { ...S.agents.get(a.agent_id), ...a });
  } catch {}
  for (const el of document.querySelectorAll("[data-agent-name]")) el.textContent = S.agents.get(el.dataset.agentName)?.name || el.textContent;
}, 50);
const waiting = (id) => [...S.pending.values()].some((a) => a.agent_id === id);
/** the default reasons the kernel records say nothing more than the decision */
const realReason = (r) => (r && !/^(approved|denied) by operator$/.test(r) ? r : null);
/** the recent decisions from the audit log, once a session: the Decided list survives a reload */
function seedDecided() {
  return (S.seed ??= (async () => {
    const head = (await call("system.info", {}, { quiet: true })).audit_head?.seq || 0;
    const req = new Map(), out = [];
    let since = Math.max(1, head - 3000);
    for (let i = 0; i < 5; i++) {
      const r = await call("audit.query", { kind: "approval.*", since_seq: since, limit: 1000 }, { quiet: true, timeout: 30000 });
      for (const e of r.events) {
        if (e.kind === "approval.requested") req.set(e.approval_id, e);
        else if (/^approval\.(decided|timeout|cancelled)$/.test(e.kind)) out.push(e);
      }
      if (r.events.length < 1000 || !r.next_seq || r.next_seq <= since) break;
      since = r.next_seq;
    }
    const have = new Set(S.decided.map((d) => d.a.id));
    const old = out.slice(-30).filter((e) => !have.has(e.approval_id) && !S.pending.has(e.approval_id)).map((e) => {
      const q = req.get(e.approval_id) || {};
      const a = { id: e.approval_id, agent_id: e.agent_id, tool: e.tool || q.tool, input: q.input, requested_at: q.ts || e.ts };
      return { a, decision: e.decision || "deny", reason: realReason(e.reason), how: e.kind, at: e.ts, completion: null, seeded: true };
    });
    S.decided.push(...old.reverse());
    return old.length;
  })().catch(() => 0));
}
/** An approval was answered (here or elsewhere): record it and tell the view. */
function decide(a, decision, reason, how) {
  if (!S.pending.has(a.id)) return;
  S.pending.delete(a.id);
  const d = { a, decision, reason: realReason(reason), how: how || "approval.decided", at: new Date().toISOString(), completion: null, afterSeq: 0 };
  S.decided.unshift(d);
  if (S.decided.length > 100) S.decided.pop();
  if (decision === "approve") S.watch.push(d);
  navCount();
  S.view?.onDecided?.(d);
}

// ---------- chrome: nav, role, login ----------

const PAGES = [
  ["agents", "Agents"],
  ["approvals", "Approvals"],
  ["audit", "Audit"],
  ["scheduler", "Scheduler"],
  ["system", "System"],
];
function chrome() {
  const nav = clear($("nav"));
  for (const [p, label] of PAGES) nav.append(h("a", { href: "#/" + p, testid: "nav-" + p, id: "nav-" + p }, label, p === "approvals" ? h("span", { class: "count", id: "approvals-count", testid: "approvals-count" }) : null));
  const role = $("role");
  role.textContent = S.role === "operator" ? "operator" : S.role + " · read-only";
  role.className = "role " + S.role;
  document.body.classList.toggle("viewer", !isOp());
  navCount();
  markNav();
}
function markNav() {
  const cur = S.route.page === "agent" ? "agents" : S.route.page;
  for (const [p] of PAGES) {
    const a = $("nav-" + p);
    if (!a) continue;
    if (p === cur) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}
function navCount() {
  const c = $("approvals-count");
  if (c) c.textContent = S.pending.size ? ` ${S.pending.size}` : "";
  if (c) c.setAttribute("aria-label", `${S.pending.size} pending`);
}

function loginView(message) {
  $("top").hidden = true;
  banner(null);
  stopView();
  const err = h("p", { class: "error", role: "alert", testid: "login-error", hidden: !message }, message || "");
  const input = h("input", { type: "password", id: "login-token", name: "token", autocomplete: "current-password", required: true, spellcheck: "false", testid: "login-token" });
  const btn = h("button", { type: "submit", class: "btn primary", testid: "login-submit" }, "Log in");
  const form = h(
    "form",
    {
      class: "login card",
      testid: "login-form",
      onsubmit: async (e) => {
        e.preventDefault();
        err.hidden = true;
        btn.disabled = true;
        try {
          const r = await http("POST", "/login", { token: input.value });
          if (r.status === 200 && r.data && r.data.role) {
            input.value = "";
            return loggedIn(r.data.role);
          }
          let msg = (r.data && r.data.error) || `login failed (HTTP ${r.status})`;
          if (r.status === 401) msg = "Wrong token. " + (r.data?.error && r.data.error !== "wrong token" ? r.data.error : "Check it and try again.");
          if (r.status === 429) msg = (r.data?.error || `too many failed logins; try again in ${r.headers.get("retry-after") || "a few"} s`).replace(/^./, (c) => c.toUpperCase()).replace(/([^.])$/, "$1.");
          if (r.status === 403) msg = "Refused: " + (r.data?.error || "this page's origin is not allowed");
          err.textContent = msg;
          err.hidden = false;
          input.select();
        } catch (x) {
          err.textContent = "Cannot reach the kernel: " + x.message;
          err.hidden = false;
        } finally {
          btn.disabled = false;
        }
      },
    },
    h("h1", null, "aaOS supervision dashboard"),
    h("label", { for: "login-token" }, "Dashboard token"),
    input,
    h("p", { class: "muted small" }, "An operator token can act, a viewer token only watch. ", h("code", null, "aaosctl dashboard-token"), " prints them on the console."),
    err,
    h("div", { class: "row end" }, btn),
  );
  const v = clear($("view"));
  v.append(form);
  input.focus();
}
function loggedIn(role) {
  S.role = role;
  $("top").hidden = false;
  chrome();
  if (!location.hash || location.hash === "#" || location.hash === "#/") history.replaceState(null, "", "#/agents");
  clear($("view")).append(h("p", { class: "muted" }, "Connecting…"));
  rpc.connect();
}
function loggedOut(message) {
  rpc.close();
  S.role = null;
  S.pending.clear();
  S.decided = [];
  S.seed = null;
  loginView(message);
}
$("logout").addEventListener("click", async () => {
  try {
    await http("POST", "/logout");
  } catch {}
  loggedOut("Logged out.");
});

// ---------- confirm dialog ----------

function confirmDialog(text, okLabel = "Confirm") {
  const d = $("confirm");
  $("confirm-text").textContent = text;
  d.querySelector('[value="ok"]').textContent = okLabel;
  return new Promise((resolve) => {
    d.returnValue = "cancel";
    d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
    d.showModal();
    d.querySelector('[value="cancel"]').focus();
  });
}

async function stopAgent(a) {
  if (!isOp()) return;
  if (!(await confirmDialog(`Stop agent ${a.name} (${a.agent_id})? Its tokens are revoked, its pending approvals cancelled and its children stopped.`, "Stop agent"))) return;
  try {
    await call("agent.stop", { agent_id: a.agent_id });
  } catch {}
  S.view?.refresh?.();
}

// ---------- rewind (agent.rewind: dry run, the plan, then the rewind and its undo) ----------

function rewindTables(r) {
  const rows = (list, cells) => h("table", { class: "rewind-list" }, h("tbody", null, list.map((x) => h("tr", null, cells(x).map((c) => h("td", null, c))))));
  const out = [];
  if (r.restored.length) out.push(h("h3", null, r.dry_run ? `Would restore ${r.restored.length}` : `Restored ${r.restored.length}`), rows(r.restored, (x) => [h("code", null, x.path), x.to === "absent" ? "removed" : `back to the ${x.to}`, h("span", { class: "muted" }, `${x.tool} #${x.seq}`)]));
  if (r.conflicts.length) out.push(h("h3", { class: "bad" }, `Conflicts: ${r.conflicts.length} (left alone)`), rows(r.conflicts, (x) => [h("code", null, x.path), h("span", { class: "muted" }, x.reason)]));
  if (r.unrestorable.length) out.push(h("h3", { class: "bad" }, `Unrestorable: ${r.unrestorable.length}`), rows(r.unrestorable, (x) => [h("code", null, x.path), h("span", { class: "muted" }, x.reason)]));
  if (!out.length) out.push(h("p", { class: "muted" }, "Nothing to rewind: the agent changed no file the journal holds."));
  return out;
}

async function rewindAgent(a) {
  if (!isOp()) return;
  const plan = h("div", { class: "rewind-plan", testid: "rewind-plan", role: "status", "aria-live": "polite" }, h("p", { class: "muted" }, "Planning (a dry run)…"));
  const result = h("div", { class: "rewind-result", testid: "rewind-result", role: "status", "aria-live": "polite", hidden: true });
  const go = h("button", { type: "button", class: "btn danger", testid: "rewind-confirm", disabled: true }, "Rewind now");
  const undo = h("button", { type: "button", class: "btn", testid: "rewind-undo", hidden: true }, "Undo this rewind");
  const close = h("button", { type: "button", class: "btn", testid: "rewind-close" }, "Cancel");
  const d = h(
    "dialog",
    { class: "rewind", testid: "rewind-dialog", "aria-labelledby": "rewind-title" },
    h("h2", { id: "rewind-title" }, "Rewind ", a.name, " ", h("code", { class: "muted" }, a.agent_id)),
    h("p", { class: "muted small" }, "Every file it and its children changed through the kernel's tools is put back, newest first. A file changed since by someone else is a conflict and left alone. The rewind is journaled too, so it can be undone."),
    plan,
    result,
    h("div", { class: "row end" }, close, undo, go),
  );
  document.body.append(d);
  d.addEventListener("close", () => (d.remove(), S.view?.refresh?.()), { once: true });
  close.addEventListener("click", () => d.close());
  d.showModal();
  close.focus();
  const show = (el, r) => clear(el).append(...rewindTables(r));
  const run = async (params, label) => {
    go.disabled = true;
    undo.disabled = true;
    result.hidden = false;
    clear(result).append(h("p", { class: "muted" }, label));
    try {
      const r = await call("agent.rewind", { agent_id: a.agent_id, ...params }, { timeout: 120000, quiet: true });
      show(result, r);
      close.textContent = "Close";
      undo.hidden = !(r.audit_seq && r.restored.length);
      undo.disabled = false;
      undo.onclick = () => run({ to_seq: r.audit_seq - 1 }, "Undoing the rewind…");
    } catch (e) {
      clear(result).append(h("p", { class: "error" }, e.message));
    }
  };
  try {
    const r = await call("agent.rewind", { agent_id: a.agent_id, dry_run: true }, { quiet: true });
    show(plan, r);
    go.disabled = !r.restored.length;
    go.addEventListener("click", () => {
      plan.hidden = true;
      go.hidden = true;
      run({}, "Rewinding…");
    });
  } catch (e) {
    clear(plan).append(h("p", { class: "error" }, e.message));
  }
}

// ---------- routing ----------

function parseRoute() {
  const m = location.hash.replace(/^#\/?/, "").split("/");
  if (m[0] === "agent" && m[1]) return { page: "agent", id: decodeURIComponent(m[1]) };
  return { page: PAGES.some(([p]) => p === m[0]) ? m[0] : "agents" };
}
function stopView() {
  if (S.view && S.view.stop) S.view.stop();
  S.view = null;
  S.cards.clear();
}
function render() {
  if (!S.role) return;
  stopView();
  S.route = parseRoute();
  markNav();
  const v = clear($("view"));
  const page = { agents: agentsPage, agent: agentPage, approvals: approvalsPage, audit: auditPage, scheduler: schedPage, system: systemPage }[S.route.page];
  S.view = page(v, S.route) || {};
  document.title = `${PAGES.find(([p]) => p === S.route.page)?.[1] || "Agent"} · aaOS`;
}
window.addEventListener("hashchange", () => {
  render();
  window.scrollTo(0, 0);
  $("view").focus({ preventScroll: true });
});
/** Refresh fn every ms while the page is shown and visible (never faster than 2 s). */
function every(ms, fn) {
  let t = null, alive = true;
  const tick = async () => {
    if (!alive) return;
    if (!document.hidden && rpc.open) await fn().catch(() => {});
    if (alive) t = setTimeout(tick, Math.max(2000, ms));
  };
  tick();
  return () => ((alive = false), clearTimeout(t));
}

// ---------- page: agents ----------

const STATE_ICON = { ready: "●", running: "▶", restarting: "↻", failed: "✗", stopped: "■", waiting: "‖" };
function stateBadge(s, id) {
  if (id && s === "running" && waiting(id)) return h("a", { class: "state st-waiting", testid: "state", href: "#/approvals", title: "running, its tool call waits for an approval" }, h("span", { "aria-hidden": "true" }, "‖ "), "waiting for approval");
  return h("span", { class: "state st-" + s, testid: "state" }, h("span", { "aria-hidden": "true" }, (STATE_ICON[s] || "?") + " "), s);
}
function tokensCell(usage, budget) {
  const used = usage ? (usage.input_tokens || 0) + (usage.output_tokens || 0) : null;
  const max = budget?.max_tokens;
  const kids = [h("span", null, used == null ? "—" : num(used), max ? ` / ${num(max)}` : " / no budget")];
  if (budget) {
    const u = typeof budget.used === "number" ? budget.used : used;
    kids.push(meter(u, max, `${num(u)} of ${num(max)} tokens`));
    if (budget.period && budget.period !== "lifetime") kids.push(h("span", { class: "muted small" }, ` per ${budget.period}`));
  }
  if (usage) kids.push(h("div", { class: "muted small" }, `in ${num(usage.input_tokens)} · out ${num(usage.output_tokens)}`));
  return h("div", { class: "tokens" }, kids);
}

function agentsPage(v) {
  const summary = h("p", { class: "muted", testid: "agents-summary" }, "Loading…");
  const body = h("div", { testid: "agents-tree" });
  let hideStopped = sessionStorage.getItem("aaos.hideStopped") === "1";
  const toggle = h("label", { class: "small" }, h("input", { type: "checkbox", checked: hideStopped, testid: "agents-hide-stopped", onchange: (e) => (sessionStorage.setItem("aaos.hideStopped", e.target.checked ? "1" : "0"), (hideStopped = e.target.checked), load()) }), " hide stopped agents");
  v.append(h("div", { class: "head" }, h("h1", null, "Agents"), toggle), summary, body);
  let seq = 0;
  const load = async () => {
    const my = ++seq;
    let list, sched;
    try {
      // one call for every row: agent.list with details carries each agent's usage, inbox and failure
      [list, sched] = await Promise.all([call("agent.list", { details: true }), call("sched.status", {}, { quiet: true }).catch(() => null)]);
    } catch {
      summary.textContent = "Could not load the agents.";
      return;
    }
    if (my !== seq) return;
    const budgets = new Map((sched?.agents || []).map((x) => [x.agent_id, x]));
    S.agents.clear();
    list.agents.forEach((a) => S.agents.set(a.agent_id, { ...a, status: a }));
    const all = [...S.agents.values()];
    const shown = all.filter((a) => !hideStopped || a.state !== "stopped");
    const counts = {};
    for (const a of all) {
      const k = a.state === "running" && waiting(a.agent_id) ? "waiting for approval" : a.state;
      counts[k] = (counts[k] || 0) + 1;
    }
    summary.textContent = all.length ? `${all.length} agent${all.length === 1 ? "" : "s"}: ` + Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(", ") : "No agents. Spawn one with aaosctl or agent.spawn; it appears here at once.";
    // the tree: roots first, children under their parent
    const ids = new Set(shown.map((a) => a.agent_id));
    const kids = new Map();
    for (const a of shown) {
      const p = a.parent_id && ids.has(a.parent_id) ? a.parent_id : null;
      if (!kids.has(p)) kids.set(p, []);
      kids.get(p).push(a);
    }
    const rows = [];
    const walk = (p, depth) => {
      for (const a of kids.get(p) || []) {
        rows.push(agentRow(a, depth, budgets.get(a.agent_id)));
        walk(a.agent_id, depth + 1);
      }
    };
    walk(null, 0);
    clear(body);
    if (rows.length) body.append(tbl(["Name", "ID", "State", "Model", "Tokens used / budget", "Inbox", isOp() ? "Actions" : "Actions (read-only)"], rows, { class: "scroll agents" }));
  };
  const agentRow = (a, depth, sched) => {
    const st = a.status;
    const name = h("a", { href: "#/agent/" + encodeURIComponent(a.agent_id), testid: "agent-link-" + a.agent_id }, a.name);
    const nameCell = h("td", { class: "tree" }, depth ? h("span", { class: "branch", "aria-hidden": "true" }, "└─ ") : null, name, depth ? h("span", { class: "sr" }, ` (child of ${a.parent_id})`) : null);
    const inbox = st?.inbox ? h("span", null, num(st.inbox.depth), st.inbox.current ? h("span", { class: "muted small" }, waiting(a.agent_id) ? " (waiting for approval)" : " (working)") : null) : "—";
    const stop = isOp() && a.state !== "stopped" ? h("button", { type: "button", class: "btn small danger", testid: "agent-stop-" + a.agent_id, "aria-label": `Stop ${a.name}`, onclick: () => stopAgent(a) }, "■ Stop") : isOp() ? "" : h("span", { class: "muted small" }, "read-only");
    const tr = h(
      "tr",
      { testid: "agent-row-" + a.agent_id, "data-state": a.state, class: a.state === "stopped" ? "dim" : "" },
      nameCell,
      h("td", { class: "c-id" }, h("code", { title: a.agent_id }, short(a.agent_id))),
      h("td", { class: "c-state" }, stateBadge(a.state, a.agent_id), st?.failure && a.state !== "ready" ? h("div", { class: "small error" }, st.failure.reason) : null),
      h("td", { class: "c-model" }, a.model || "—"),
      h("td", { class: "c-tokens", "data-label": "Tokens" }, tokensCell(st?.usage || sched?.usage, sched?.budget)),
      h("td", { class: "c-inbox", "data-label": "Inbox" }, inbox),
      h("td", { class: "c-act" }, stop),
    );
    tr.style.setProperty("--d", depth);
    return tr;
  };
  const later = debounce(load, 200);
  load();
  const stopPoll = every(10000, async () => later());
  return {
    refresh: later,
    onApproval: later,
    onDecided: later,
    onAudit: (r) => AGENT_KINDS.test(r.kind) && later(),
    stop: stopPoll,
  };
}

// ---------- page: one agent ----------

function agentPage(v, route) {
  const id = route.id;
  const head = h("div", { class: "head" }, h("h1", null, "Agent ", h("code", null, id)));
  const info = h("div", { class: "cols" });
  const wf = h("div", { class: "waterfall", testid: "waterfall" }, h("p", { class: "muted" }, "Loading the runs…"));
  const live = h("div", { class: "live", testid: "live-output", role: "log", "aria-live": "polite", tabindex: "0" });
  v.append(h("p", { class: "back" }, h("a", { href: "#/agents" }, "← all agents")), head, section("Runs", h("p", { class: "muted small" }, "Each run on its own time axis: model turns, tool calls and approvals as bars, the text beside each says the same."), wf), info);
  let records = [];
  let lastSeq = 0;
  let loading = true;
  const held = [];
  let showRuns = 10;

  const loadStatus = async () => {
    let st, sched;
    try {
      [st, sched] = await Promise.all([call("agent.status", { agent_id: id }), call("sched.status", {}, { quiet: true }).catch(() => null)]);
    } catch (e) {
      clear(info).append(h("p", { class: "error" }, e.message));
      return;
    }
    clear(head).append(h("h1", null, st.name, " "), stateBadge(st.state, st.agent_id), h("code", { class: "muted" }, " " + st.agent_id));
    if (isOp()) head.append(h("button", { type: "button", class: "btn", testid: "agent-rewind", title: "Put back the files it changed (a dry run first)", onclick: () => rewindAgent(st) }, "↶ Rewind…"));
    if (isOp() && st.state !== "stopped") head.append(h("button", { type: "button", class: "btn danger", testid: "agent-stop-" + st.agent_id, onclick: () => stopAgent(st) }, "■ Stop"));
    const rest = { ...st };
    for (const k of ["agent_id", "name", "state", "capabilities", "usage", "children", "lifecycle", "restart", "inbox", "failure", "restarts", "serves", "parent_id", "model"]) delete rest[k];
    clear(info).append(
      section(
        "Status",
        generic({
          model: st.model,
          parent: st.parent_id,
          lifecycle: st.lifecycle,
          restart: st.restart,
          restarts: st.restarts,
          failure: st.failure ? `${st.failure.reason} (at ${st.failure.at})` : null,
          inbox: st.inbox ? `${st.inbox.depth} waiting${st.inbox.current ? ", working on " + st.inbox.current : ""}` : null,
          serves: st.serves?.length ? st.serves.join(", ") : "nothing",
          ...rest,
        }),
        st.parent_id ? h("p", null, "Parent: ", h("a", { href: "#/agent/" + encodeURIComponent(st.parent_id) }, st.parent_id)) : null,
        st.children?.length ? h("p", null, "Children: ", st.children.map((c, i) => [i ? ", " : "", h("a", { href: "#/agent/" + encodeURIComponent(typeof c === "string" ? c : c.agent_id) }, typeof c === "string" ? c : c.name || c.agent_id)])) : null,
      ),
      section("Usage", tokensCell(st.usage, sched?.agents?.find((x) => x.agent_id === id)?.budget)),
      section("Capabilities", st.capabilities?.length ? h("ul", { class: "caps", testid: "capabilities" }, st.capabilities.map((c) => h("li", null, h("code", null, c)))) : h("p", { class: "muted" }, "none")),
      wide(section("Live output", live)),
    );
  };

  const loadAudit = async () => {
    let since = lastSeq + 1;
    for (let page = 0; page < 20; page++) {
      let r;
      try {
        r = await call("audit.query", { agent_id: id, since_seq: since, limit: 1000 }, { timeout: 30000 });
      } catch {
        break;
      }
      for (const e of r.events) if (e.seq > lastSeq) records.push(e), (lastSeq = e.seq);
      if (r.events.length < 1000 || !r.next_seq || r.next_seq <= since) break;
      since = r.next_seq;
    }
    loading = false;
    for (const e of held.splice(0)) if (e.seq > lastSeq) records.push(e), (lastSeq = e.seq);
    drawWaterfall();
  };

  const drawWaterfall = () => {
    const runs = groupRuns(records);
    clear(wf);
    if (!runs.length) return wf.append(h("p", { class: "muted" }, "No runs yet."));
    const shown = runs.slice(-showRuns).reverse();
    shown.forEach((run, i) => wf.append(runView(run, i === 0)));
    if (runs.length > showRuns) wf.append(h("button", { type: "button", class: "btn", onclick: () => ((showRuns += 20), drawWaterfall()) }, `Show older runs (${runs.length - showRuns} more)`));
  };

  const drawOutput = () => {
    clear(live);
    const buf = S.output.get(id) || [];
    if (!buf.length) live.append(h("p", { class: "muted", "data-empty": "1" }, "Nothing yet: output appears here while the agent runs."));
    for (const p of buf) appendOutput(p);
  };
  let lastText = null;
  const appendOutput = (p) => {
    const empty = live.querySelector("[data-empty]");
    if (empty) empty.remove();
    const atBottom = live.scrollTop + live.clientHeight >= live.scrollHeight - 8;
    if (p.type === "text") {
      if (lastText && lastText.dataset.msg === String(p.message_id ?? "")) lastText.textContent += p.text;
      else live.append((lastText = h("div", { class: "o-text", "data-msg": String(p.message_id ?? "") }, p.text)));
    } else {
      lastText = null;
      if (p.type === "tool_use") live.append(h("div", { class: "o-tool" }, `→ tool ${p.tool} `, h("code", null, JSON.stringify(p.input))));
      else if (p.type === "tool_result") live.append(h("div", { class: "o-tool " + (p.ok ? "ok" : "bad") }, `← ${p.tool} ${p.ok ? "✓ ok" : "✗ error"} `, h("code", null, JSON.stringify(p.ok ? p.output : p.error))));
      else if (p.type === "approval_pending") live.append(h("div", { class: "o-appr" }, `[waiting] ${p.tool} waits for approval ${p.approval_id} — `, h("a", { href: "#/approvals" }, "answer it")));
      else if (p.type === "turn") live.append(h("div", { class: "o-turn muted small" }, `— turn ${p.turn}: in ${num(p.usage?.input_tokens)} · out ${num(p.usage?.output_tokens)} tokens —`));
      else live.append(h("div", { class: "muted small" }, JSON.stringify(p)));
    }
    while (live.childNodes.length > 600) live.firstChild.remove();
    if (atBottom) live.scrollTop = live.scrollHeight;
  };

  loadStatus();
  loadAudit();
  drawOutput();
  const redraw = debounce(drawWaterfall, 300);
  const restatus = debounce(loadStatus, 300);
  return {
    refresh: restatus,
    onApproval: restatus,
    onDecided: restatus,
    onAudit: (r) => {
      if (r.agent_id !== id) return;
      if (loading) held.push(r);
      else if (r.seq > lastSeq) records.push(r), (lastSeq = r.seq);
      redraw();
      restatus();
    },
    onOutput: (p) => p.agent_id === id && appendOutput(p),
    stop: () => {},
  };
}

/** Records of one agent, in seq order -> runs [{start, end, records, key}]. */
function groupRuns(records) {
  const runs = [];
  const byMsg = new Map();
  let cur = null;
  for (const r of records) {
    if (r.kind === "run.start") {
      cur = { key: r.message_id || "run-" + r.seq, start: r, end: null, records: [r] };
      runs.push(cur);
      if (r.message_id) byMsg.set(r.message_id, cur);
      continue;
    }
    let run = r.message_id && byMsg.get(r.message_id);
    if (!run) {
      if (!cur || cur.end) {
        // records outside a run (tool.invoke over RPC, spawn, stop): a group of their own
        if (!cur || !cur.loose) runs.push((cur = { key: "rpc-" + r.seq, loose: true, start: null, end: null, records: [] }));
      }
      run = cur;
    }
    run.records.push(r);
    if (r.kind === "run.end") {
      run.end = r;
      if (run === cur) cur = null;
    }
  }
  return runs.filter((r) => !r.loose || r.records.some((x) => /^(tool|approval|inference)\.|^capability\.denied$/.test(x.kind)));
}

/** One run's spans: model turns, tool calls, approvals, denials. */
function runSpans(run) {
  const spans = [];
  const infl = [];
  const tools = new Map();
  const apprs = new Map();
  let turn = 0;
  for (const r of run.records) {
    const t = new Date(r.ts).getTime();
    switch (r.kind) {
      case "inference.request": {
        const s = { type: "model", t0: t, t1: null, rec: r, label: `model turn ${++turn}`, detail: `queued ${dur(r.queued_ms)}` };
        infl.push(s);
        spans.push(s);
        break;
      }
      case "inference.usage":
      case "inference.error":
      case "inference.retry": {
        const s = infl.shift() || { type: "model", t0: t, rec: r, label: `model call`, detail: "" };
        if (!spans.includes(s)) spans.push(s);
        s.t1 = t;
        if (r.kind === "inference.usage") {
          s.detail = `in ${num(r.input_tokens)} · out ${num(r.output_tokens)} tokens · ${dur(r.latency_ms)}${r.stop_reason ? " · " + r.stop_reason : ""}`;
          s.ok = !r.partial;
        } else {
          s.ok = false;
          s.detail = `${r.kind === "inference.retry" ? "retry" : "error"}: ${r.error_kind || r.reason || r.message || r.status || ""}`;
        }
        break;
      }
      case "tool.call": {
        const s = { type: "tool", t0: t, t1: null, rec: r, label: `tool ${r.tool}`, detail: "running…" };
        tools.set(r.seq, s);
        spans.push(s);
        break;
      }
      case "tool.result": {
        const s = tools.get(r.call_seq) || { type: "tool", t0: t, label: `tool ${r.tool}` };
        if (!spans.includes(s)) spans.push(s);
        s.t1 = t;
        s.ok = !!r.ok;
        s.detail = r.ok ? `✓ ok · ${dur(s.t1 - s.t0)}` : `✗ error: ${r.error?.message || "failed"} · ${dur(s.t1 - s.t0)}`;
        break;
      }
      case "approval.requested": {
        const s = { type: "approval", t0: t, t1: null, rec: r, label: `approval ${r.tool}`, detail: "waiting for a human…" };
        apprs.set(r.approval_id, s);
        spans.push(s);
        break;
      }
      case "approval.decided":
      case "approval.timeout":
      case "approval.cancelled": {
        const s = apprs.get(r.approval_id) || { type: "approval", t0: t, label: `approval ${r.tool}` };
        if (!spans.includes(s)) spans.push(s);
        s.t1 = t;
        const d = r.kind === "approval.cancelled" ? "cancelled" : r.decision === "approve" ? "approved" : "denied";
        s.ok = d === "approved";
        const why = r.kind === "approval.decided" ? realReason(r.reason) : r.reason;
        s.detail = `${d === "approved" ? "✓" : "✗"} ${d}${r.kind === "approval.timeout" ? " (timed out)" : ""}${why ? ": " + why : r.kind === "approval.decided" ? " by the operator" : ""} · ${dur(s.t1 - s.t0)}`;
        break;
      }
      case "capability.denied":
        spans.push({ type: "denied", t0: t, t1: t, rec: r, ok: false, label: `denied ${r.tool || ""}`, detail: `✗ ${r.reason || r.capability || ""}` });
        break;
    }
  }
  return spans;
}

function runView(run, newest) {
  const spans = runSpans(run);
  const recs = run.records;
  const t0 = new Date((run.start || recs[0]).ts).getTime();
  const open = !run.loose && !run.end;
  const tEnd = run.end ? new Date(run.end.ts).getTime() : open ? Date.now() : new Date(recs[recs.length - 1].ts).getTime();
  const total = Math.max(1, tEnd - t0, ...spans.map((s) => (s.t1 ?? tEnd) - t0));
  const e = run.end;
  const title = run.loose
    ? `Direct calls (not in a run) · from ${clock(recs[0].ts)}`
    : `Run ${run.start.message_id ? run.start.message_id : "#" + run.start.seq} · ${clock(run.start.ts)} · ${open ? "▶ running" : `${e.stop_reason} · ${e.turns ?? "?"} turn${e.turns === 1 ? "" : "s"} · in ${num(e.usage?.input_tokens)} / out ${num(e.usage?.output_tokens)} tokens · ${dur(e.duration_ms ?? tEnd - t0)}`}`;
  const rows = spans.map((s) => {
    const end = s.t1 ?? tEnd;
    const bar = h("span", { class: `bar b-${s.type} ${s.ok === false ? "bad" : s.t1 == null ? "open" : ""}`, title: `${s.label}: ${s.detail}` });
    bar.style.left = (((s.t0 - t0) / total) * 100).toFixed(2) + "%";
    bar.style.width = Math.max(0.6, ((end - s.t0) / total) * 100).toFixed(2) + "%";
    return h("div", { class: "wf-row", testid: `wf-${s.type}-${s.rec?.seq ?? ""}` }, h("div", { class: "wf-label" }, h("strong", null, s.label), " ", h("span", { class: "small" }, s.detail), h("span", { class: "muted small" }, ` @ +${dur(s.t0 - t0)}`)), h("div", { class: "wf-track" }, bar));
  });
  return h(
    "details",
    { class: "run", open: open || newest || undefined, testid: "run-" + run.key },
    h("summary", null, title),
    rows.length ? h("div", { class: "wf" }, h("div", { class: "wf-axis", "aria-hidden": "true" }, h("span", null, "0"), h("span", null, dur(total / 2)), h("span", null, dur(total))), rows) : h("p", { class: "muted small" }, "No model turns or tool calls recorded."),
    h("p", { class: "legend small muted" }, h("span", { class: "k-model" }, "■"), " model turn · ", h("span", { class: "k-tool" }, "■"), " tool call · ", h("span", { class: "k-approval" }, "■"), " approval wait · outlined red: failed or denied · striped: still going"),
  );
}

// ---------- page: approvals ----------

function approvalsPage(v) {
  const pendingBox = h("div", { class: "cards", testid: "approvals-pending" });
  const decidedBox = h("div", { class: "cards", testid: "approvals-decided" });
  v.append(
    h("div", { class: "head" }, h("h1", null, "Approvals"), isOp() ? null : h("span", { class: "role viewer" }, "read-only: an operator session answers approvals")),
    h("h2", null, isOp() ? "Waiting for you" : "Waiting for an operator"),
    pendingBox,
    h("h2", null, "Decided"),
    decidedBox,
  );
  const emptyNote = () => {
    const none = pendingBox.querySelector(".empty");
    const hasCards = pendingBox.querySelector(".approval");
    if (!hasCards && !none) pendingBox.append(h("p", { class: "muted empty", testid: "approvals-empty" }, "No approvals pending. Requests appear here as agents make them."));
    if (hasCards && none) none.remove();
  };
  const addCard = (a) => {
    if (S.cards.has(a.id)) return;
    const card = approvalCard(a);
    S.cards.set(a.id, card);
    pendingBox.append(card);
    emptyNote();
  };
  const move = (d) => {
    const card = S.cards.get(d.a.id) || approvalCard(d.a);
    S.cards.set(d.a.id, card);
    setOutcome(card, d);
    const go = () => {
      decidedBox.prepend(card);
      emptyNote();
    };
    if (d.decision === "approve" && !d.completion) {
      // stay in place while the tool runs, then move (or after 10 s at most)
      card.moveTimer = setTimeout(go, 10000);
      card.move = go;
    } else setTimeout(go, 1500);
  };
  const fillDecided = () => {
    clear(decidedBox);
    for (const d of S.decided.slice(0, 30).reverse()) {
      if (S.cards.get(d.a.id)?.parentNode === pendingBox) continue; // on its way here
      const card = approvalCard(d.a);
      S.cards.set(d.a.id, card);
      setOutcome(card, d);
      if (d.completion) setCompletion(card, d);
      decidedBox.prepend(card);
    }
    if (!decidedBox.firstChild) decidedBox.append(h("p", { class: "muted" }, "Nothing decided recently."));
  };
  loadNames();
  seedDecided().then((n) => n && S.view?.fillDecided === fillDecided && fillDecided());
  const sorted = [...S.pending.values()].sort((a, b) => String(a.requested_at).localeCompare(String(b.requested_at)));
  for (const a of sorted) addCard(a);
  fillDecided();
  emptyNote();
  return {
    fillDecided,
    onApproval: addCard,
    onDecided: (d) => {
      decidedBox.querySelector(":scope > p.muted")?.remove();
      move(d);
    },
    onCompletion: (d) => {
      const card = S.cards.get(d.a.id);
      if (!card) return;
      setCompletion(card, d);
      if (card.move) {
        clearTimeout(card.moveTimer);
        setTimeout(card.move, 1500);
      }
    },
    stop: () => {},
  };
}

function inputView(a) {
  const i = a.input;
  if (a.tool === "file_write" && i && typeof i === "object" && typeof i.path === "string") {
    return h(
      "div",
      { class: "input" },
      h("div", null, h("span", { class: "lbl" }, "Path "), h("code", { testid: "approval-path-" + a.id }, i.path), i.append ? h("span", { class: "tag" }, "append") : null),
      h("div", { class: "lbl" }, `Content (${bytes(new Blob([i.content ?? ""]).size)})`),
      h("pre", { class: "content", testid: "approval-content-" + a.id }, i.content ?? ""),
      Object.keys(i).some((k) => !["path", "content", "append"].includes(k)) ? h("pre", null, pretty(Object.fromEntries(Object.entries(i).filter(([k]) => !["path", "content", "append"].includes(k))))) : null,
    );
  }
  return h("div", { class: "input" }, h("div", { class: "lbl" }, "Input"), h("pre", { testid: "approval-input-" + a.id }, pretty(i)));
}

function approvalCard(a) {
  const agent = S.agents.get(a.agent_id);
  const reason = h("input", { type: "text", id: "reason-" + a.id, testid: "approval-reason-" + a.id, placeholder: "optional; the agent sees it on a denial", maxlength: "2000" });
  const outcome = h("div", { class: "outcome", testid: "approval-outcome-" + a.id, role: "status", "aria-live": "polite" });
  const btns = [];
  const answer = async (decision) => {
    for (const b of btns) b.disabled = true;
    const why = reason.value.trim();
    try {
      await call("approval.respond", why ? { id: a.id, decision, reason: why } : { id: a.id, decision });
      card.answered = true;
      decide(a, decision, why, "approval.respond");
    } catch (e) {
      if (e.code === -32007) {
        outcome.textContent = "Already decided elsewhere, or no longer pending.";
        S.pending.delete(a.id);
        navCount();
      } else for (const b of btns) b.disabled = false;
    }
  };
  if (isOp()) {
    btns.push(
      h("button", { type: "button", class: "btn primary", testid: "approval-approve-" + a.id, onclick: () => answer("approve") }, "✓ Approve"),
      h("button", { type: "button", class: "btn danger", testid: "approval-deny-" + a.id, onclick: () => answer("deny") }, "✗ Deny"),
    );
  }
  const controls = isOp()
    ? h("div", { class: "controls" }, h("label", { for: "reason-" + a.id }, "Reason"), reason, h("div", { class: "row" }, btns))
    : h("p", { class: "muted small", testid: "approval-readonly-" + a.id }, "Read-only: a viewer cannot approve or deny.");
  const card = h(
    "article",
    { class: "card approval", testid: "approval-card-" + a.id, "data-state": "pending", "aria-label": `Approval ${a.id}: ${a.tool}` },
    h("header", null, h("h3", null, h("span", { class: "tool" }, a.tool)), h("span", { class: "muted small" }, " requested ", when(a.requested_at), ` (${ago(a.requested_at)})`)),
    h("p", null, "Agent ", h("a", { href: "#/agent/" + encodeURIComponent(a.agent_id), "data-agent-name": a.agent_id }, agent?.name || "…"), " (", h("code", { title: a.agent_id }, short(a.agent_id)), `) wants to run ${a.tool}.`, h("span", { class: "muted small" }, " " + a.id)),
    inputView(a),
    controls,
    outcome,
  );
  card.controls = controls;
  return card;
}
function setOutcome(card, d) {
  const ok = d.decision === "approve";
  card.dataset.state = ok ? "approved" : "denied";
  card.controls?.remove();
  const o = card.querySelector(".outcome");
  clear(o).append(
    h("strong", { class: ok ? "good" : "error" }, ok ? "✓ Approved" : d.how === "approval.cancelled" ? "✗ Cancelled" : d.how === "approval.timeout" ? "✗ Denied (timed out)" : "✗ Denied"),
    d.reason ? h("span", null, " — reason: ", h("q", null, d.reason)) : null,
    h("div", { class: "muted small", testid: "approval-completion-" + d.a.id }, d.seeded ? `Decided ${ago(d.at)} (from the audit log).` : ok ? "Waiting for the tool to complete…" : "The tool did not run; the agent was told."),
  );
}
function setCompletion(card, d) {
  const r = d.completion;
  card.dataset.state = r.ok ? "completed" : "failed";
  const c = card.querySelector(`[data-testid="approval-completion-${d.a.id}"]`);
  if (c) clear(c).append(h("span", { class: r.ok ? "good" : "error" }, r.ok ? "✓ the tool completed" : "✗ the tool failed"), ` at ${clock(r.ts)} (audit #${r.seq}): `, h("code", null, JSON.stringify(r.ok ? r.output : r.error)));
}

// ---------- page: audit ----------

function kindQuery(k) {
  k = k.trim();
  if (!k) return null;
  if (k === "*" || k.endsWith(".*")) return k;
  if (k.endsWith(".")) return k + "*";
  if (!k.includes(".")) return k + ".*";
  return k;
}
function kindMatch(q, kind) {
  if (!q || q === "*") return true;
  if (q.endsWith(".*")) return kind.startsWith(q.slice(0, -1));
  return kind === q;
}
const SKIP = new Set(["seq", "ts", "kind", "agent_id", "prev", "hash", "token"]);
function summary(r) {
  const parts = [];
  for (const [k, v] of Object.entries(r)) {
    if (SKIP.has(k)) continue;
    let s = typeof v === "object" && v !== null ? JSON.stringify(v) : String(v);
    if (s.length > 120) s = s.slice(0, 117) + "…";
    parts.push(`${k}=${s}`);
    if (parts.length >= 6) break;
  }
  return parts.join("  ");
}

function auditPage(v) {
  const fAgent = h("input", { type: "search", id: "f-agent", testid: "audit-filter-agent", placeholder: "ag-…", value: sessionStorage.getItem("aaos.fAgent") || "" });
  const fKind = h("input", { type: "search", id: "f-kind", testid: "audit-filter-kind", placeholder: "tool.* or approval", value: sessionStorage.getItem("aaos.fKind") || "" });
  const verifyState = h("span", { class: "verify", testid: "audit-verify-state", role: "status" }, "verifying…");
  const exportState = h("span", { class: "muted small", testid: "audit-export-state", role: "status" });
  const count = h("span", { class: "muted small", testid: "audit-count" });
  const tbody = h("tbody", { testid: "audit-rows" });
  let paused = false;
  const pauseBtn = h("button", { type: "button", class: "btn small", testid: "audit-pause", "aria-pressed": "false", onclick: () => ((paused = !paused), pauseBtn.setAttribute("aria-pressed", String(paused)), (pauseBtn.textContent = paused ? "Resume live" : "Pause live"), paused || load()) }, "Pause live");
  const apply = (e) => {
    e?.preventDefault();
    sessionStorage.setItem("aaos.fAgent", fAgent.value);
    sessionStorage.setItem("aaos.fKind", fKind.value);
    load();
  };
  v.append(
    h("div", { class: "head" }, h("h1", null, "Audit"), h("span", { class: "spacer" }), verifyState, h("button", { type: "button", class: "btn small", testid: "audit-verify", onclick: () => verify() }, "Verify now")),
    h(
      "form",
      { class: "filters", onsubmit: apply, testid: "audit-filters" },
      h("label", { for: "f-agent" }, "Agent id"),
      fAgent,
      h("label", { for: "f-kind" }, "Kind (exact or prefix)"),
      fKind,
      h("button", { type: "submit", class: "btn small", testid: "audit-filter-apply" }, "Filter"),
      h("button", { type: "button", class: "btn small", onclick: () => ((fAgent.value = ""), (fKind.value = ""), apply()) }, "Clear"),
      h("span", { class: "spacer" }),
      pauseBtn,
      h("button", { type: "button", class: "btn small", testid: "audit-export", onclick: () => exportAll() }, "⤓ Export JSONL"),
      exportState,
    ),
    h("p", null, count, " Newest first; live records appear at the top. Click a row's ▸ for the full record."),
    h("div", { class: "scroll tall" }, h("table", { class: "grid audit" }, h("thead", null, h("tr", null, ["Seq", "Time", "Kind", "Agent", "Details"].map((x) => h("th", { scope: "col" }, x)))), tbody)),
  );
  const filt = () => ({ agent: fAgent.value.trim(), kind: kindQuery(fKind.value) });
  const matches = (r, f) => (!f.agent || r.agent_id === f.agent) && kindMatch(f.kind, r.kind);
  const row = (r) =>
    h(
      "tr",
      { testid: "audit-row-" + r.seq, "data-kind": r.kind, class: /denied|error|failed|tampered|timeout/.test(r.kind) || r.ok === false ? "warnrow" : "" },
      h("td", null, String(r.seq)),
      h("td", null, when(r.ts)),
      h("td", null, h("code", null, r.kind)),
      h("td", null, r.agent_id ? h("a", { href: "#/agent/" + encodeURIComponent(r.agent_id), title: r.agent_id }, S.agents.get(r.agent_id)?.name || short(r.agent_id)) : h("span", { class: "muted" }, "kernel")),
      h("td", { class: "det" }, h("details", null, h("summary", null, summary(r) || "…"), h("pre", null, JSON.stringify(r, null, 2)))),
    );
  const updateCount = () => (count.textContent = `${tbody.childNodes.length} record${tbody.childNodes.length === 1 ? "" : "s"} shown${tbody.childNodes.length >= 2000 ? " (the newest 2,000)" : ""}.`);
  const queue = [];
  let gen = 0;
  let maxSeq = 0;
  let loading = true;
  const load = async () => {
    const my = ++gen;
    loading = true;
    queue.length = 0;
    const f = filt();
    clear(tbody);
    count.textContent = "Loading…";
    let head = 0;
    try {
      head = (await call("system.info")).audit_head?.seq || 0;
    } catch {}
    let since = Math.max(1, head - (f.agent || f.kind ? 5000 : 200));
    const got = [];
    for (let i = 0; i < 6; i++) {
      const p = { since_seq: since, limit: 1000 };
      if (f.agent) p.agent_id = f.agent;
      if (f.kind) p.kind = f.kind;
      let r;
      try {
        r = await call("audit.query", p, { timeout: 30000 });
      } catch {
        break;
      }
      got.push(...r.events);
      if (r.events.length < 1000 || !r.next_seq || r.next_seq <= since) break;
      since = r.next_seq;
    }
    if (my !== gen) return;
    const seen = new Set(got.map((r) => r.seq));
    for (const r of S.tail) if (!seen.has(r.seq) && r.seq > (got[got.length - 1]?.seq || 0) && matches(r, f)) got.push(r);
    const frag = document.createDocumentFragment();
    for (const r of got.slice(-2000).reverse()) frag.append(row(r));
    tbody.append(frag);
    maxSeq = got.length ? got[got.length - 1].seq : 0;
    loading = false;
    updateCount();
  };
  const verify = async () => {
    verifyState.className = "verify";
    verifyState.textContent = "verifying…";
    try {
      const r = await call("audit.verify", {}, { timeout: 60000 });
      verifyState.className = "verify " + (r.ok ? "good" : "bad");
      verifyState.dataset.ok = String(r.ok);
      verifyState.textContent = r.ok
        ? `✓ chain verified: ${num(r.events ?? r.records)} records${r.anchor ? `, anchored at #${r.anchor.seq}` : ""}`
        : `✗ chain broken at seq ${r.broken?.seq ?? "?"}: ${r.broken?.reason ?? "unknown reason"}`;
      if (r.quarantined?.length || r.tampered?.length) verifyState.append(` (${r.quarantined?.length || 0} quarantined, ${r.tampered?.length || 0} tampered)`);
    } catch (e) {
      verifyState.className = "verify bad";
      verifyState.textContent = "verify failed: " + e.message;
    }
  };
  const exportAll = async () => {
    const lines = [];
    exportState.textContent = "exporting…";
    try {
      const head = (await call("system.info")).audit_head?.seq || 0;
      let since = 1;
      for (;;) {
        const r = await call("audit.query", { since_seq: since, limit: 1000 }, { timeout: 60000 });
        for (const e of r.events) lines.push(JSON.stringify(e));
        exportState.textContent = `exporting… ${num(lines.length)} records`;
        if (!r.events.length || !r.next_seq || r.next_seq <= since || r.next_seq > head) break;
        since = r.next_seq;
      }
    } catch (e) {
      exportState.textContent = "export failed: " + e.message;
      return;
    }
    const blob = new Blob([lines.join("\n") + (lines.length ? "\n" : "")], { type: "application/x-ndjson" });
    const a = h("a", { href: URL.createObjectURL(blob), download: `aaos-audit-${new Date().toISOString().replace(/[:.]/g, "-")}.jsonl` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    exportState.textContent = `exported ${num(lines.length)} records (${bytes(blob.size)}).`;
  };
  const flush = debounce(() => {
    const frag = document.createDocumentFragment();
    for (const r of queue.splice(0).reverse()) frag.append(row(r));
    tbody.prepend(frag);
    while (tbody.childNodes.length > 2000) tbody.lastChild.remove();
    updateCount();
  }, 150);
  load();
  verify();
  return {
    onAudit: (r) => {
      if (loading || paused || r.seq <= maxSeq || !matches(r, filt())) return;
      maxSeq = r.seq;
      queue.push(r);
      flush();
    },
    stop: () => {},
  };
}

// ---------- page: scheduler ----------

function schedPage(v) {
  const body = h("div", { testid: "sched" }, h("p", { class: "muted" }, "Loading…"));
  const stamp = h("span", { class: "muted small", role: "status" });
  v.append(h("div", { class: "head" }, h("h1", null, "Scheduler"), h("span", { class: "spacer" }), stamp), body);
  const load = async () => {
    const s = await call("sched.status", {}, { quiet: true }).catch((e) => ({ __error: e.message }));
    if (s.__error) return clear(body).append(h("p", { class: "error" }, s.__error));
    stamp.textContent = "updated " + clock(Date.now()) + " · every 2 s";
    const rest = { ...s };
    const out = [];
    const lim = s.limits || {};
    if ("limits" in s) {
      const { providers, ...l } = lim;
      out.push(section("Concurrency", generic(l)));
      if (s.stats) out.push(section("Admissions", generic(s.stats)));
      delete rest.stats;
    }
    if ("queue" in s) out.push((s.queue?.length ? wide : (x) => x)(section(`Queue (${s.queue?.length ?? 0})`, s.queue?.length ? tbl(["Agent", "Provider", "Priority", "Effective", "Waiting", "Input est.", "Max tokens"], s.queue.map((q) => [agentLink(q.agent_id), q.provider, q.priority, q.effective_priority, dur(q.waiting_ms), num(q.input_tokens_estimate), num(q.max_tokens)])) : h("p", { class: "muted" }, "empty"))));
    if ("in_flight" in s) out.push(section(`Running calls (${s.in_flight?.length ?? 0})`, s.in_flight?.length ? tbl(["Agent", "Provider", "Reserved", "Max tokens", "Running"], s.in_flight.map((f) => [agentLink(f.agent_id), f.provider, num(f.reserved), num(f.max_tokens), dur(f.running_ms)])) : h("p", { class: "muted" }, "none")));
    if ("agents" in s)
      out.unshift(
        wide(section(
          "Agents: fair shares and budgets",
          s.agents?.length
            ? tbl(
                ["Agent", "Priority", "Weight", "Share served", "Entitled", "Virtual tokens", "Usage", "Budget", "Available", "Queued", "In flight"],
                s.agents.map((a) => [
                  agentLink(a.agent_id, a.name),
                  a.priority,
                  a.weight,
                  pct(a.share?.served),
                  pct(a.share?.entitled),
                  num(a.share?.virtual_tokens),
                  `${num(a.usage?.total_tokens)} (${plural(a.usage?.requests ?? 0, "request")})`,
                  a.budget ? h("div", null, `${num(a.budget.used)} / ${num(a.budget.max_tokens)} per ${a.budget.period}`, meter(a.budget.used, a.budget.max_tokens), h("div", { class: "muted small" }, `remaining ${num(a.budget.remaining)}${a.budget.reserved ? `, reserved ${num(a.budget.reserved)}` : ""}${a.budget.resets_at ? `, resets ${a.budget.resets_at}` : ""}`)) : "no budget",
                  a.available == null ? "unlimited" : num(a.available),
                  a.queued,
                  a.in_flight,
                ]),
              )
            : h("p", { class: "muted" }, "no live agents"),
        )),
      );
    if (lim.providers) out.push(section("Rate limits", generic(lim.providers)));
    for (const k of ["queue", "in_flight", "agents", "limits"]) delete rest[k];
    if (Object.keys(rest).length) out.push(section("More", generic(rest)));
    clear(body).append(h("div", { class: "cols" }, out));
  };
  return { stop: every(2000, load) };
}
const pct = (x) => (typeof x === "number" ? (x * 100).toFixed(1) + "%" : "—");
const agentLink = (id, name) => (id ? h("a", { href: "#/agent/" + encodeURIComponent(id), title: id }, name || S.agents.get(id)?.name || short(id)) : "—");

// ---------- page: system ----------

function systemPage(v) {
  const body = h("div", { testid: "system" }, h("p", { class: "muted" }, "Loading…"));
  const stamp = h("span", { class: "muted small", role: "status" });
  v.append(h("div", { class: "head" }, h("h1", null, "System"), h("span", { class: "spacer" }), stamp), body);
  const load = async () => {
    const [i, st] = await Promise.all([call("system.info", {}, { quiet: true }).catch((e) => ({ __error: e.message })), call("system.stats", {}, { quiet: true }).catch((e) => ({ __error: e.message }))]);
    stamp.textContent = "updated " + clock(Date.now()) + " · every 5 s";
    const out = [];
    if (i.__error) out.push(section("Kernel", h("p", { class: "error" }, i.__error)));
    else {
      const known = ["version", "mode", "boot_id", "uptime_ms", "pid", "agents", "pending_approvals", "audit_head", "degraded", "tools", "config", "boot"];
      const rest = Object.fromEntries(Object.entries(i).filter(([k]) => !known.includes(k)));
      out.push(
        section(
          "Kernel",
          h(
            "p",
            { testid: "system-health", class: i.degraded ? "bad" : "good" },
            i.degraded ? `✗ DEGRADED since ${i.degraded.since}: ${i.degraded.reason}` : "✓ healthy: the audit log is writable",
          ),
          generic({
            version: i.version,
            mode: i.mode === "init" ? "init (the appliance, PID 1)" : i.mode,
            "boot id": i.boot_id,
            uptime: dur(i.uptime_ms),
            pid: i.pid,
            agents: i.agents,
            "pending approvals": i.pending_approvals,
            "audit head": i.audit_head ? `#${i.audit_head.seq} ${String(i.audit_head.hash).slice(0, 16)}…` : null,
            config: i.config ? `${i.config.source}, ${i.config.valid ? "✓ valid" : "✗ refused: " + (i.config.error || "invalid")}` : null,
            ...rest,
          }),
        ),
      );
      if (i.boot) out.push(section("Boot report", generic(i.boot)));
      if (i.tools) out.push(section(`Tools (${i.tools.length})`, h("p", null, i.tools.map((t, n) => [n ? ", " : "", h("code", null, t)]))));
    }
    if (st.__error) out.push(section("Machine", h("p", { class: "error" }, st.__error)));
    else {
      const m = st.memory || {}, d = st.disk || {};
      if (m) {
        const used = typeof m.total_bytes === "number" && typeof m.available_bytes === "number" ? m.total_bytes - m.available_bytes : null;
        out.push(section("Memory", used != null ? h("p", null, `${bytes(used)} used of ${bytes(m.total_bytes)} (${bytes(m.available_bytes)} available) `, meter(used, m.total_bytes)) : null, generic({ "kernel RSS": bytes(m.rss_bytes), "JS heap used": bytes(m.heap_used_bytes), total: bytes(m.total_bytes), available: bytes(m.available_bytes) })));
      }
      if (st.disk) out.push(section("Data disk", h("p", null, `${bytes(d.used_bytes)} used of ${bytes(d.total_bytes)} (${bytes(d.free_bytes)} free) `, meter(d.used_bytes, d.total_bytes)), generic({ path: d.path, total: bytes(d.total_bytes), used: bytes(d.used_bytes), free: bytes(d.free_bytes) })));
      if (st.load) out.push(section("Load average", h("p", { testid: "system-load" }, Array.isArray(st.load) ? `1 min ${st.load[0]?.toFixed?.(2)} · 5 min ${st.load[1]?.toFixed?.(2)} · 15 min ${st.load[2]?.toFixed?.(2)}` : JSON.stringify(st.load))));
      if (Array.isArray(st.network)) {
        // one row an interface: its MAC once, its addresses under each other
        const by = new Map();
        for (const n of st.network) by.set(n.interface, [...(by.get(n.interface) || []), n]);
        out.push(section("Network", by.size ? h("table", { class: "kv", testid: "system-network" }, h("tbody", null, [...by].map(([i, ns]) => h("tr", null, h("th", { scope: "row" }, i, ns[0].mac ? h("div", { class: "muted small" }, "MAC ", h("code", null, ns[0].mac)) : null), h("td", null, ns.map((n) => h("div", null, h("code", null, n.address), h("span", { class: "muted small" }, " " + (n.family || ""))))))))) : h("p", { class: "muted" }, "no interfaces")));
      } else if (st.network) out.push(section("Network", generic(st.network)));
      if (st.clock) out.push(section("Clock", generic({ now: st.clock.now, synced: st.clock.synced ? "✓ synced" : "✗ not synced", source: st.clock.source, ...Object.fromEntries(Object.entries(st.clock).filter(([k]) => !["now", "synced", "source"].includes(k))) })));
      const rest = Object.fromEntries(Object.entries(st).filter(([k]) => !["memory", "disk", "load", "network", "clock", "uptime_ms"].includes(k)));
      if (Object.keys(rest).length) out.push(section("More", generic(rest)));
    }
    clear(body).append(h("div", { class: "cols" }, out));
  };
  return { stop: every(5000, load) };
}

// ---------- boot ----------

(async () => {
  try {
    const s = await http("GET", "/session");
    if (s.status === 200 && s.data?.role) return loggedIn(s.data.role);
    loginView();
  } catch (e) {
    loginView("Cannot reach the kernel: " + e.message);
  }
})();
