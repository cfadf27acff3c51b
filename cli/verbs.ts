// The verb table: one entry per operator action, name → {summary, help,
// method, params, run}, in the spirit of xv6's syscall table. Dispatch is a
// lookup; usage lines, --help, the console's completion and docs/aaosctl.md
// all read this table, so a verb is described in exactly one place.
import { readFileSync, existsSync } from "node:fs";
import { basename } from "node:path";
import YAML from "yaml";
import type {
  AgentInfo,
  AgentOutputEvent,
  AgentStatus,
  ApprovalInfo,
  InboxResult,
  MemoryRecordInfo,
  RunResult,
  ToolDescription,
} from "../kernel/services.ts";
import { METHOD_NAMES } from "../kernel/rpc/names.ts";
import { AUDIT_KINDS } from "../kernel/audit/kinds.ts";
import { ConnectionLost, RpcError, type RpcClient } from "./client.ts";
import type { Params } from "./args.ts";
import { parseJsonArg } from "./args.ts";
import { CliError, ExitCode, usageError } from "./exit.ts";
import {
  age,
  formatApprovalRequest,
  formatAuditEvent,
  firstLine,
  formatBytes,
  formatDuration,
  formatOutputEvent,
  formatRewind,
  keyValues,
  memoryWhere,
  plainValue,
  type RewindResult,
  shortJson,
  stateStyle,
  table,
  timestamp,
} from "./format.ts";
import { flushStdout, type Output } from "./output.ts";
import { completionScript, SHELLS, type Shell } from "./completion.ts";

export interface Ctx {
  out: Output;
  /** the connection to the kernel, opened on first use */
  rpc(): Promise<RpcClient>;
  /** aborted by Ctrl-C in the console: stop waiting, the kernel carries on */
  signal?: AbortSignal;
  /** inside `aaosctl console`: approval banners are printed by the console */
  interactive: boolean;
  /** read all of stdin (for "-" arguments) */
  readStdin(): Promise<string>;
  /** where we talk to, for messages: "socket /run/aaos.sock" */
  targetName: string;
}

export type Args = Record<string, string | undefined>;
export type Opts = Record<string, string | boolean | string[] | undefined>;

export interface Verb {
  summary: string;
  /** paragraphs shown by `aaosctl VERB --help` */
  help: string;
  /** the JSON-RPC method(s) it calls */
  methods: string[];
  params: Params;
  run(ctx: Ctx, args: Args, opts: Opts): Promise<number | void>;
}

/** what agent.list {details: true} adds per agent (ps -o wide) */
type PsDetails = Pick<AgentStatus, "lifecycle" | "restarts" | "inbox" | "usage">;

/** every method of the contract, for `call` and completion: the kernel's own list, so it cannot fall behind */
export const KNOWN_METHODS: readonly string[] = METHOD_NAMES;

/** system.info's upgrade field in one line: the booted slot, and what the last upgrade came to */
function upgradeLine(u: {
  slot: string;
  generation: number | null;
  trial: boolean;
  confirmed: boolean;
  loader: string;
  last_attempt?: { outcome: string; version?: string; slot: string; at: string } | null;
}): string {
  const state = u.trial ? (u.confirmed ? "confirmed" : "on trial") : u.loader === "direct" ? "booted directly" : "";
  const last = u.last_attempt
    ? `; last: ${u.last_attempt.outcome} ${u.last_attempt.version ?? "?"} (slot ${u.last_attempt.slot}, ${u.last_attempt.at})`
    : "";
  return `slot ${u.slot}, generation ${u.generation ?? "-"}${state ? `, ${state}` : ""}${last}`;
}

async function call<T = any>(ctx: Ctx, method: string, params: unknown = {}): Promise<T> {
  const client = await ctx.rpc();
  return client.call<T>(method, params, { signal: ctx.signal });
}

/** call with a spinner on the terminal while we wait */
async function callWaiting<T = any>(ctx: Ctx, label: string, method: string, params: unknown = {}): Promise<T> {
  const stop = ctx.out.progress(label);
  try {
    return await call<T>(ctx, method, params);
  } finally {
    stop();
  }
}

/**
 * An agent named by full id, unique id prefix, or the name of exactly one
 * agent that is not stopped. Unknown words go to the kernel unchanged, so
 * the kernel's "no such agent" (-32002) is what the person sees.
 */
export async function resolveAgentId(ctx: Ctx, given: string): Promise<string> {
  const { agents } = await call<{ agents: AgentInfo[] }>(ctx, "agent.list");
  if (agents.some((a) => a.agent_id === given)) return given;
  const byPrefix = agents.filter((a) => a.agent_id.startsWith(given));
  if (byPrefix.length === 1) return byPrefix[0]!.agent_id;
  if (byPrefix.length > 1)
    throw usageError(
      `agent id prefix ${JSON.stringify(given)} is ambiguous: ${byPrefix.map((a) => a.agent_id).join(", ")}`,
      "give more of the id",
    );
  const byName = agents.filter((a) => a.name === given && a.state !== "stopped");
  if (byName.length === 1) return byName[0]!.agent_id;
  if (byName.length > 1)
    throw usageError(
      `${byName.length} live agents are named ${JSON.stringify(given)}: ${byName.map((a) => a.agent_id).join(", ")}`,
      "name one by id",
    );
  return given;
}

export async function resolveApprovalId(ctx: Ctx, given: string): Promise<string> {
  const { approvals } = await call<{ approvals: ApprovalInfo[] }>(ctx, "approval.list");
  if (approvals.some((a) => a.id === given)) return given;
  const byPrefix = approvals.filter((a) => a.id.startsWith(given));
  if (byPrefix.length === 1) return byPrefix[0]!.id;
  if (byPrefix.length > 1)
    throw usageError(
      `approval id prefix ${JSON.stringify(given)} is ambiguous: ${byPrefix.map((a) => a.id).join(", ")}`,
      "give more of the id",
    );
  return given;
}

/** a file on this machine, or '-': stdin */
async function fileArg(ctx: Ctx, file: string): Promise<string> {
  if (file === "-") return ctx.readStdin();
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new CliError(ExitCode.failed, `cannot read ${file}: ${why}`);
  }
}

/** the manifest's `name:` (a text that does not parse: its file name; the kernel then says what is wrong) */
function manifestNameOf(text: string, file: string): string {
  try {
    const v = YAML.parse(text) as { name?: unknown } | null;
    if (v && typeof v.name === "string") return v.name;
  } catch {
    // the kernel's message, with its position, is the one to show
  }
  return file === "-" ? "manifest" : basename(file).replace(/\.ya?ml$/, "");
}

async function textArg(ctx: Ctx, text: string): Promise<string> {
  return text === "-" ? (await ctx.readStdin()).replace(/\n$/, "") : text;
}

async function jsonArg(ctx: Ctx, what: string, text: string | undefined, fallback: unknown): Promise<unknown> {
  if (text === undefined) return fallback;
  return parseJsonArg(what, await textArg(ctx, text));
}

function numberOpt(name: string, v: Opts[string]): number | undefined {
  if (v === undefined || typeof v !== "string") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw usageError(`--${name} wants a whole number, not ${JSON.stringify(v)}`);
  return n;
}

/**
 * agent.run / agent.spawn_and_run with the agent's words and tool activity
 * printed as the agent.output notifications arrive.
 */
async function streamRun(
  ctx: Ctx,
  method: string,
  params: Record<string, unknown>,
  agentId?: string,
): Promise<RunResult> {
  const client = await ctx.rpc();
  const out = ctx.out;
  let streamed = false;
  let stopProgress = out.progress("thinking");
  const waiting = (label: string) => {
    stopProgress();
    stopProgress = out.progress(label);
  };
  const off = client.onNotification((n) => {
    if (n.method !== "agent.output" || out.json) return;
    const ev = n.params as AgentOutputEvent;
    if (agentId && ev.agent_id !== agentId) return;
    if (ev.type === "text") {
      // after a tool line the cursor is already at a fresh line
      out.write(out.atStartOfLine ? ev.text.replace(/^\n+/, "") : ev.text);
      streamed = true;
      return;
    }
    if (ev.type === "turn") return;
    out.print(formatOutputEvent(ev, out.paint, out.width));
    if (ev.type === "tool_use") waiting(`running ${ev.tool}`);
    else if (ev.type === "approval_pending") waiting(`waiting for approval ${ev.approval_id}`);
    else waiting("thinking");
  });
  const started = Date.now();
  let result: RunResult;
  try {
    result = await client.call<RunResult>(method, params, { signal: ctx.signal });
  } finally {
    off();
    stopProgress();
  }
  if (out.json) {
    out.printJson(result);
    return result;
  }
  if (!streamed && result.response) out.write(result.response);
  out.endLine();
  const calls = result.tool_calls?.length ?? 0;
  const usage = result.usage ? `${result.usage.input_tokens} in / ${result.usage.output_tokens} out tokens` : "";
  const parts = [
    result.stop_reason,
    usage,
    `${calls} tool call${calls === 1 ? "" : "s"}`,
    formatDuration(Date.now() - started),
  ].filter(Boolean);
  out.note(out.paint("dim", `── ${parts.join(" · ")}`));
  return result;
}

function printSpawned(ctx: Ctx, r: { agent_id: string; name: string; capabilities: string[] }) {
  const p = ctx.out.paint;
  ctx.out.print(`${p("green", "spawned")} ${p("bold", r.name)} ${r.agent_id}`);
  if (r.capabilities?.length) ctx.out.print(p("dim", `  capabilities: ${r.capabilities.join(", ")}`));
}

/** "30s", "500ms", "2m", "1h", or a bare number of seconds → milliseconds */
export function parseTimeout(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  const ms = m ? Math.round(Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? "s") as "s"]) : NaN;
  if (!(ms >= 1 && ms <= 86_400_000))
    throw usageError(`--timeout wants a duration such as 30s, 500ms or 2m (at most 24h), not ${JSON.stringify(text)}`);
  return ms;
}

/** --param k=v, repeated: the value is JSON when it parses as JSON (3, true, {"a":1}), else the text itself */
export function paramsFromPairs(pairs: string[]): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0)
      throw usageError(`--param wants KEY=VALUE, not ${JSON.stringify(pair)}`, "e.g. --param city=Oslo --param days=3");
    const key = pair.slice(0, eq);
    const text = pair.slice(eq + 1);
    if (key in params) throw usageError(`--param ${key} is given twice`);
    try {
      params[key] = JSON.parse(text);
    } catch {
      params[key] = text;
    }
  }
  return params;
}

function printInboxResult(ctx: Ctx, r: InboxResult): void {
  const p = ctx.out.paint;
  const pairs: [string, string][] = [
    ["agent", r.agent_id],
    ["message", r.message_id],
    ["state", p(inboxStateStyle(r.state), r.state)],
  ];
  if (r.stop_reason !== undefined) pairs.push(["stop_reason", r.stop_reason]);
  if (r.response !== undefined) pairs.push(["response", r.response]);
  if (r.result !== undefined) pairs.push(["result", shortJson(r.result, 2000)]);
  if (r.error) pairs.push(["error", `${r.error.message} (${r.error.code})`]);
  ctx.out.print(keyValues(pairs, p));
}

function inboxStateStyle(state: InboxResult["state"]) {
  return state === "done" ? "green" : state === "failed" ? "red" : state === "cancelled" ? "yellow" : "cyan";
}

/** a message that failed or was cancelled is a failure of the verb that waited for it */
function inboxExit(r: InboxResult): number | void {
  if (r.state === "failed" || r.state === "cancelled") return ExitCode.failed;
}

/**
 * agent.send --wait: the message id at once, then the run's agent.output
 * (those of this message only) streamed as `run` does, and its agent.done.
 */
async function sendAndWait(ctx: Ctx, agentId: string, message: string): Promise<number | void> {
  const client = await ctx.rpc();
  const out = ctx.out;
  let messageId: string | undefined;
  // notifications may come before the reply that names the message: held until then
  const early: { method: string; params: any }[] = [];
  let streamed = false;
  let stopProgress = () => {};
  let settle!: (r: InboxResult) => void;
  const done = new Promise<InboxResult>((resolve) => (settle = resolve));
  const handle = (n: { method: string; params: any }) => {
    if (n.params?.message_id !== messageId) return;
    if (n.method === "agent.done") return settle(n.params as InboxResult);
    if (n.method !== "agent.output" || out.json) return;
    const ev = n.params as AgentOutputEvent;
    if (ev.type === "turn") return;
    stopProgress();
    if (ev.type === "text") {
      out.write(out.atStartOfLine ? ev.text.replace(/^\n+/, "") : ev.text);
      streamed = true;
    } else out.print(formatOutputEvent(ev, out.paint, out.width));
    stopProgress = out.progress(
      ev.type === "tool_use"
        ? `running ${ev.tool}`
        : ev.type === "approval_pending"
          ? `waiting for approval ${ev.approval_id}`
          : "thinking",
    );
  };
  const off = client.onNotification((n) => {
    if (n.method !== "agent.output" && n.method !== "agent.done") return;
    if (messageId === undefined) early.push(n);
    else handle(n);
  });
  const started = Date.now();
  try {
    const sent = await client.call<{ agent_id: string; message_id: string }>(
      "agent.send",
      { agent_id: agentId, message },
      { signal: ctx.signal },
    );
    messageId = sent.message_id;
    if (!out.json) out.note(out.paint("dim", `message ${messageId} queued for ${sent.agent_id}`));
    stopProgress = out.progress("queued");
    for (const n of early.splice(0)) handle(n);
    const r = await Promise.race([
      done,
      untilClosedOrAborted(ctx, client).then(() => {
        throw new CliError(
          ExitCode.failed,
          `stopped waiting for ${messageId}; the agent carries on`,
          `aaosctl result ${agentId} ${messageId} tells how it ends`,
        );
      }),
    ]);
    stopProgress();
    if (out.json) {
      out.printJson(r);
      return inboxExit(r);
    }
    if (!streamed && r.response) out.write(r.response);
    out.endLine();
    if (r.error) out.note(out.paint("red", "error: ") + `${r.error.message}` + out.paint("dim", ` (${r.error.code})`));
    const parts = [r.state, r.stop_reason, formatDuration(Date.now() - started)].filter(Boolean);
    out.note(out.paint("dim", `── ${messageId} · ${parts.join(" · ")}`));
    return inboxExit(r);
  } finally {
    off();
    stopProgress();
  }
}

const MEMORY_ACTIONS = ["search", "ls", "export", "rm", "namespaces"] as const;
type MemoryAction = (typeof MEMORY_ACTIONS)[number];
/** the options each memory action takes */
const MEMORY_OPTIONS: Record<MemoryAction, string[]> = {
  search: ["agent", "namespace", "top", "tag", "since"],
  ls: ["agent", "namespace", "kind", "limit", "after"],
  export: ["agent", "namespace"],
  rm: [],
  namespaces: [],
};

const AGENT_ARG_HELP = "AGENT is an agent id, a unique prefix of one, or the name of exactly one live agent.";

type AuditEvent = Record<string, unknown> & { seq: number };
type AuditPage = { events: AuditEvent[]; next_seq: number };
/** the most events one audit.query returns */
const AUDIT_PAGE = 1000;
/** the most `audit --tail` holds in memory at once */
const AUDIT_TAIL_MAX = 100_000;

export const VERBS: Record<string, Verb> = {
  info: {
    summary: "show the kernel's version, boot id, mode and uptime",
    help: "Ask the kernel who it is (system.info).",
    methods: ["system.info"],
    params: { args: [] },
    async run(ctx) {
      const info = await call<Record<string, unknown>>(ctx, "system.info");
      if (ctx.out.json) return ctx.out.printJson(info);
      const pairs: [string, string][] = [];
      for (const [k, v] of Object.entries(info)) {
        if (k === "uptime_ms" && typeof v === "number") pairs.push(["uptime", formatDuration(v)]);
        else if (k === "upgrade" && v && typeof v === "object") pairs.push(["system", upgradeLine(v as any)]);
        else pairs.push([k, typeof v === "string" ? v : shortJson(v, 200)]);
      }
      ctx.out.print(keyValues(pairs, ctx.out.paint));
    },
  },

  stats: {
    summary: "show memory, the data disk, load, network (and its DHCP lease) and the clock",
    help:
      "What the machine uses (system.stats): the kernel's RSS and the memory available, the data disk's size and " +
      "use, the load, each network address (in the appliance with its DHCP lease: server, expiry, renewals) and " +
      "the clock (in the appliance: synced by SNTP, from which server, the last offset). --json prints the result.",
    methods: ["system.stats"],
    params: { args: [] },
    async run(ctx) {
      const st = await call<any>(ctx, "system.stats");
      if (ctx.out.json) return ctx.out.printJson(st);
      const pairs: [string, string][] = [["uptime", formatDuration(st.uptime_ms)]];
      const m = st.memory ?? {};
      pairs.push([
        "memory",
        `kernel RSS ${formatBytes(m.rss_bytes)}, heap ${formatBytes(m.heap_used_bytes)}; ` +
          `${m.available_bytes === null ? "?" : formatBytes(m.available_bytes)} available of ${formatBytes(m.total_bytes)}`,
      ]);
      const d = st.disk;
      pairs.push([
        "data disk",
        d
          ? `${formatBytes(d.used_bytes)} used, ${formatBytes(d.free_bytes)} free of ${formatBytes(d.total_bytes)} (${d.path})`
          : "not mounted",
      ]);
      pairs.push(["load", (st.load ?? []).map((x: number) => x.toFixed(2)).join(" ")]);
      for (const n of st.network ?? []) {
        const l = n.dhcp;
        const lease = l
          ? `; DHCP ${l.state ?? "bound"} from ${l.server ?? "?"}, expires ${l.expires ? timestamp(l.expires) : "?"}` +
            `${l.renewals !== undefined ? `, ${l.renewals} renewals` : ""}`
          : "";
        pairs.push([`net ${n.interface}`, `${n.address} (${n.family}, ${n.mac})${lease}`]);
      }
      const c = st.clock ?? {};
      pairs.push([
        "clock",
        `${timestamp(c.now)} ${c.synced ? `synced (${c.source}${c.server ? ` ${c.server}` : ""}${c.offset_ms !== undefined ? `, offset ${c.offset_ms} ms` : ""})` : `not synced (${c.source}${c.error ? `: ${c.error}` : ""})`}`,
      ]);
      ctx.out.print(keyValues(pairs, ctx.out.paint));
    },
  },

  ping: {
    summary: "check that the kernel answers, and how fast",
    help: "Send system.ping and print the round trip.",
    methods: ["system.ping"],
    params: { args: [] },
    async run(ctx) {
      const t0 = performance.now();
      const r = await call<{ pong: unknown; uptime_ms?: number }>(ctx, "system.ping");
      const ms = performance.now() - t0;
      if (ctx.out.json) return ctx.out.printJson({ ...r, rtt_ms: Math.round(ms * 100) / 100 });
      ctx.out.print(
        `pong in ${ms.toFixed(1)} ms${r.uptime_ms !== undefined ? ` (up ${formatDuration(r.uptime_ms)})` : ""}`,
      );
    },
  },

  ps: {
    summary: "list agents (-w: and keep the list up to date)",
    help:
      "List every agent the kernel knows: id, name, state, parent and model (agent.list). STATE is ready, running, " +
      "restarting (a failed run waits out its backoff), failed (`aaosctl status` says why; `aaosctl restart` " +
      "brings it back) or stopped. `aaosctl status AGENT` shows its inbox.\n\n" +
      "-w (--watch) keeps the list up to date until Ctrl-C: it is redrawn every 2 s, and as soon as an agent.* " +
      "audit record says an agent changed (events.subscribe, at most every 200 ms). On a terminal the screen is " +
      "redrawn in place; into a pipe (or with --json, one JSON line each) a new list is printed each time it " +
      "changes, separated by a blank line.",
    methods: ["agent.list", "events.subscribe"],
    params: {
      args: [],
      options: {
        watch: { type: "boolean", short: "w", help: "keep redrawing the list until Ctrl-C (every 2 s and on changes)" },
      },
    },
    async run(ctx, _args, opts) {
      // -o wide: agent.list {details: true} adds lifecycle, restarts, inbox and usage per agent
      const list = async () =>
        (
          await call<{ agents: (AgentInfo & Partial<PsDetails>)[] }>(
            ctx,
            "agent.list",
            ctx.out.wide ? { details: true } : {},
          )
        ).agents;
      if (!opts.watch) {
        const agents = await list();
        if (ctx.out.json) return ctx.out.printJson({ agents });
        if (!agents.length) return ctx.out.note(NO_AGENTS);
        ctx.out.print(psTable(ctx, agents));
        return;
      }
      return watchPs(ctx, list);
    },
  },

  spawn: {
    summary: "start an agent from a manifest file or a configured manifest name",
    help:
      "MANIFEST is a path to a YAML manifest on this machine (sent as text), '-' for a manifest on stdin, " +
      "or the name of a manifest in the kernel's config (config/manifests/NAME.yaml).\n\n" +
      "With --run MESSAGE the agent is spawned and run in one call (agent.spawn_and_run), its output streamed as with `run`.",
    methods: ["agent.spawn", "agent.spawn_and_run"],
    params: {
      args: [{ name: "MANIFEST", kind: "file" }],
      options: {
        run: { type: "string", value: "MESSAGE", help: "spawn and run MESSAGE at once, streaming the output" },
      },
    },
    async run(ctx, { MANIFEST }, opts) {
      const given = MANIFEST!;
      let params: { manifest?: string; name?: string };
      if (given === "-") params = { manifest: await ctx.readStdin() };
      else if (existsSync(given) || /[/\\]|\.ya?ml$/.test(given)) {
        try {
          params = { manifest: readFileSync(given, "utf8") };
        } catch (e) {
          throw new CliError(
            ExitCode.failed,
            `cannot read ${given}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
          );
        }
      } else params = { name: given };
      if (typeof opts.run === "string") {
        await streamRun(ctx, "agent.spawn_and_run", { ...params, message: opts.run });
        return;
      }
      const r = await callWaiting<{ agent_id: string; name: string; capabilities: string[] }>(
        ctx,
        "spawning",
        "agent.spawn",
        params,
      );
      if (ctx.out.json) return ctx.out.printJson(r);
      printSpawned(ctx, r);
    },
  },

  run: {
    summary: "send an agent a message and stream its answer and tool activity",
    help:
      "Send MESSAGE (all remaining words, or '-' for stdin) to AGENT (agent.run). The model's words are printed " +
      "as they arrive; each tool call shows as ▸ TOOL INPUT, then ✓ or ✗ with its result; a call that waits for a " +
      "person shows ⏸ and the approval id to approve. A summary line (stop reason, tokens, tool calls, time) goes to stderr.\n\n" +
      "With --json nothing streams: the final result {agent_id, response, stop_reason, usage, tool_calls} is printed.\n\n" +
      AGENT_ARG_HELP,
    methods: ["agent.run"],
    params: {
      args: [
        { name: "AGENT", kind: "agent" },
        { name: "MESSAGE", kind: "text", rest: true },
      ],
    },
    async run(ctx, { AGENT, MESSAGE }) {
      const agentId = await resolveAgentId(ctx, AGENT!);
      const message = await textArg(ctx, MESSAGE!);
      await streamRun(ctx, "agent.run", { agent_id: agentId, message }, agentId);
    },
  },

  stop: {
    summary: "stop an agent",
    help:
      "Stop AGENT (agent.stop). A running turn is aborted. Stopping an agent that is already stopped is not an " +
      "error: it says so and exits 0 (with --json: already_stopped is true).\n\n" +
      AGENT_ARG_HELP,
    methods: ["agent.stop"],
    params: { args: [{ name: "AGENT", kind: "agent" }] },
    async run(ctx, { AGENT }) {
      const { agents } = await call<{ agents: AgentInfo[] }>(ctx, "agent.list");
      let agentId = await resolveAgentId(ctx, AGENT!);
      if (!agents.some((a) => a.agent_id === agentId)) {
        // a name resolves to live agents only: a name whose agents are all stopped is the newest of them
        const stopped = agents.filter((a) => a.name === AGENT && a.state === "stopped");
        if (stopped.length) agentId = stopped.at(-1)!.agent_id;
      }
      const already = agents.find((a) => a.agent_id === agentId)?.state === "stopped";
      // the kernel answers a stopped agent's state again; stopping it twice is no error
      const r = await callWaiting<{ agent_id: string; state: string }>(ctx, "stopping", "agent.stop", {
        agent_id: agentId,
      });
      if (ctx.out.json) return ctx.out.printJson({ ...r, already_stopped: already });
      ctx.out.print(`${r.agent_id} ${ctx.out.paint(stateStyle(r.state) ?? "bold", r.state)}`);
      if (already) ctx.out.note(ctx.out.paint("dim", `${r.agent_id} was already stopped`));
    },
  },

  send: {
    summary: "queue a message in an agent's inbox; print its id (--wait: stream the run and its outcome)",
    help:
      "Queue MESSAGE (all remaining words, or '-' for stdin) in AGENT's inbox (agent.send) and print its message id " +
      "at once; the agent works through its inbox one item at a time. `aaosctl result AGENT ID` tells later how it went.\n\n" +
      "With --wait the run's words and tool activity stream as with `run` (the id and a summary line go to stderr) " +
      "and the outcome is printed when the kernel says it is done (agent.done); exit 1 when the message failed or " +
      "was cancelled. Ctrl-C stops waiting; the message stays queued. With --json --wait the agent.done outcome is printed.\n\n" +
      "Give a connection timeout before the verb (aaosctl --wait 30 send ...): after it, --wait is this verb's.\n\n" +
      AGENT_ARG_HELP,
    methods: ["agent.send"],
    params: {
      args: [
        { name: "AGENT", kind: "agent" },
        { name: "MESSAGE", kind: "text", rest: true },
      ],
      options: {
        wait: { type: "boolean", short: "w", help: "stream the run and print its outcome (agent.done)" },
      },
    },
    async run(ctx, { AGENT, MESSAGE }, opts) {
      const agentId = await resolveAgentId(ctx, AGENT!);
      const message = await textArg(ctx, MESSAGE!);
      if (!message) throw usageError("send: MESSAGE is empty");
      if (opts.wait === true) return sendAndWait(ctx, agentId, message);
      const r = await call<{ agent_id: string; message_id: string }>(ctx, "agent.send", {
        agent_id: agentId,
        message,
      });
      if (ctx.out.json) return ctx.out.printJson(r);
      ctx.out.print(r.message_id);
    },
  },

  result: {
    summary: "show how a message sent with `send` went: queued, running, done, failed or cancelled",
    help:
      "Ask about MESSAGE_ID, a message queued in AGENT's inbox (agent.result): its state (queued, running, done, " +
      "failed, cancelled) and, once it is over, the response and stop reason or the error. The kernel keeps an " +
      "agent's last 1,000 items. Exit 1 when the message failed or was cancelled.\n\n" +
      AGENT_ARG_HELP,
    methods: ["agent.result"],
    params: {
      args: [
        { name: "AGENT", kind: "agent" },
        { name: "MESSAGE_ID", kind: "word" },
      ],
    },
    async run(ctx, { AGENT, MESSAGE_ID }) {
      const agentId = await resolveAgentId(ctx, AGENT!);
      const r = await call<InboxResult>(ctx, "agent.result", { agent_id: agentId, message_id: MESSAGE_ID! });
      if (ctx.out.json) ctx.out.printJson(r);
      else printInboxResult(ctx, r);
      return inboxExit(r);
    },
  },

  "call-agent": {
    summary: "make a typed call to a method an agent serves; print the result JSON",
    help:
      "Call METHOD, one the agent's manifest lists under serves:, as the operator (agent.call) and wait for its " +
      "result, which the kernel checks against the method's result schema; it is printed as JSON. Params are " +
      "JSON_PARAMS, one JSON object ('-' reads stdin), or --param KEY=VALUE, repeated (VALUE is JSON when it " +
      "parses as JSON: 3, true, [1,2]; otherwise the text itself); default {}. The kernel checks them against the " +
      "method's params schema and names the field that does not fit (-32602) before anything is delivered.\n\n" +
      "--timeout bounds the wait (30s, 500ms, 2m; the kernel's ipc.call_timeout caps it); when it passes the call " +
      "is cancelled and fails with -32009 (exit 1).\n\n" +
      AGENT_ARG_HELP +
      " The kernel also takes the name of a manifest.",
    methods: ["agent.call"],
    params: {
      args: [
        { name: "AGENT", kind: "agent" },
        { name: "METHOD", kind: "word" },
        { name: "JSON_PARAMS", kind: "json", optional: true },
      ],
      options: {
        param: {
          type: "string",
          short: "p",
          value: "KEY=VALUE",
          multiple: true,
          help: "one param (repeat for more); VALUE is JSON if it parses, else text",
        },
        timeout: { type: "string", short: "t", value: "DURATION", help: "give up after DURATION (e.g. 30s): -32009" },
      },
    },
    async run(ctx, { AGENT, METHOD, JSON_PARAMS }, opts) {
      const pairs = Array.isArray(opts.param) ? opts.param : typeof opts.param === "string" ? [opts.param] : [];
      if (JSON_PARAMS !== undefined && pairs.length)
        throw usageError("call-agent: give JSON_PARAMS or --param, not both");
      const params = pairs.length ? paramsFromPairs(pairs) : await jsonArg(ctx, "JSON_PARAMS", JSON_PARAMS, {});
      if (!params || typeof params !== "object" || Array.isArray(params))
        throw usageError("call-agent: JSON_PARAMS must be a JSON object", `e.g. '{"city": "Oslo"}'`);
      const timeoutMs = typeof opts.timeout === "string" ? parseTimeout(opts.timeout) : undefined;
      const agentId = await resolveAgentId(ctx, AGENT!);
      const r = await callWaiting<{ result: unknown }>(ctx, `waiting for ${METHOD}`, "agent.call", {
        agent_id: agentId,
        method: METHOD!,
        params,
        ...(timeoutMs === undefined ? {} : { timeout_ms: timeoutMs }),
      });
      if (ctx.out.json) return ctx.out.printJson(r);
      ctx.out.print(JSON.stringify(r.result, null, 2));
    },
  },

  restart: {
    summary: "bring a failed agent back to ready; its inbox resumes",
    help:
      "Restart AGENT, which must be failed (agent.restart): it goes back to ready, its restart count is reset and " +
      "its queued messages run again. An agent that is not failed is refused with -32008 (exit 1); `aaosctl status` " +
      "shows why it failed.\n\n" +
      AGENT_ARG_HELP,
    methods: ["agent.restart"],
    params: { args: [{ name: "AGENT", kind: "agent" }] },
    async run(ctx, { AGENT }) {
      const agentId = await resolveAgentId(ctx, AGENT!);
      const r = await call<{ agent_id: string; state: string }>(ctx, "agent.restart", { agent_id: agentId });
      if (ctx.out.json) return ctx.out.printJson(r);
      ctx.out.print(`${r.agent_id} ${ctx.out.paint(stateStyle(r.state) ?? "bold", r.state)}`);
    },
  },

  status: {
    summary: "show one agent: state, inbox, capabilities, token usage, children",
    help:
      "Describe AGENT (agent.status): its state (ready, running, restarting, failed, stopped) and, when failed, " +
      "why; its lifecycle and restart policy, its inbox (queued items and the one being worked on), the methods " +
      "it serves, its capabilities, token usage and children.\n\n" +
      AGENT_ARG_HELP,
    methods: ["agent.status"],
    params: { args: [{ name: "AGENT", kind: "agent" }] },
    async run(ctx, { AGENT }) {
      const agentId = await resolveAgentId(ctx, AGENT!);
      const s = await call<AgentStatus>(ctx, "agent.status", { agent_id: agentId });
      if (ctx.out.json) return ctx.out.printJson(s);
      const p = ctx.out.paint;
      const known = new Set([
        "agent_id",
        "name",
        "state",
        "parent_id",
        "model",
        "capabilities",
        "usage",
        "children",
        "lifecycle",
        "restart",
        "inbox",
        "failure",
        "restarts",
        "serves",
      ]);
      const pairs: [string, string][] = [
        ["agent", s.agent_id],
        ["name", s.name],
        ["state", p(stateStyle(s.state) ?? "bold", s.state)],
      ];
      if (s.failure) pairs.push(["failure", `${s.failure.reason} (${age(s.failure.at)})`]);
      pairs.push(["parent", s.parent_id ?? "-"], ["model", s.model]);
      if (s.lifecycle !== undefined) pairs.push(["lifecycle", s.lifecycle]);
      if (s.restart !== undefined)
        pairs.push([
          "restart",
          `${s.restart}${s.restarts ? ` (${s.restarts} restart${s.restarts === 1 ? "" : "s"})` : ""}`,
        ]);
      if (s.inbox)
        pairs.push(["inbox", `${s.inbox.depth} queued${s.inbox.current ? `, working on ${s.inbox.current}` : ""}`]);
      if (s.serves) pairs.push(["serves", s.serves.length ? s.serves.join(", ") : "-"]);
      pairs.push(
        ["capabilities", s.capabilities?.length ? s.capabilities.join("\n") : "(none)"],
        ["usage", s.usage ? `${s.usage.input_tokens} input / ${s.usage.output_tokens} output tokens` : "-"],
        ["children", s.children?.length ? s.children.join("\n") : "-"],
      );
      for (const [k, v] of Object.entries(s))
        if (!known.has(k)) pairs.push([k, typeof v === "string" ? v : shortJson(v, 200)]);
      ctx.out.print(keyValues(pairs, p));
    },
  },

  tools: {
    summary: "list tools (all, or those AGENT may call)",
    help:
      "List the kernel's tools (tool.list); with AGENT, only the ones its capabilities allow. --schema prints each tool's input schema.\n\n" +
      AGENT_ARG_HELP,
    methods: ["tool.list"],
    params: {
      args: [{ name: "AGENT", kind: "agent", optional: true }],
      options: { schema: { type: "boolean", help: "print each tool's input schema" } },
    },
    async run(ctx, { AGENT }, opts) {
      const params = AGENT ? { agent_id: await resolveAgentId(ctx, AGENT) } : {};
      const { tools } = await call<{ tools: ToolDescription[] }>(ctx, "tool.list", params);
      if (ctx.out.json) return ctx.out.printJson({ tools });
      if (!tools.length) return ctx.out.note(AGENT ? "this agent may call no tools" : "no tools");
      if (opts.schema) {
        for (const t of tools) {
          ctx.out.print(`${ctx.out.paint("bold", t.name)}  ${t.description}`);
          ctx.out.print(JSON.stringify(t.input_schema, null, 2).replace(/^/gm, "  "));
        }
        return;
      }
      ctx.out.print(
        table(
          tools,
          [
            { header: "TOOL", value: (t) => t.name },
            // -o wide: what running it does (none, reversible, irreversible)
            ...(ctx.out.wide ? [{ header: "EFFECT", value: (t: ToolDescription) => t.effect }] : []),
            { header: "DESCRIPTION", value: (t) => t.description.split("\n")[0] ?? "", flexible: true },
          ],
          ctx.out.paint,
          ctx.out.width,
        ),
      );
    },
  },

  invoke: {
    summary: "call a tool as an agent, under its capabilities",
    help:
      "Call TOOL on behalf of AGENT (tool.invoke) with INPUT, a JSON object ('-' reads it from stdin; default {}). " +
      "The agent's capabilities are checked as if its model had asked; a tool that needs approval waits for one. " +
      "A string output is printed as it is, anything else as JSON.\n\n" +
      AGENT_ARG_HELP,
    methods: ["tool.invoke"],
    params: {
      args: [
        { name: "AGENT", kind: "agent" },
        { name: "TOOL", kind: "tool" },
        { name: "INPUT", kind: "json", optional: true },
      ],
    },
    async run(ctx, { AGENT, TOOL, INPUT }) {
      const agentId = await resolveAgentId(ctx, AGENT!);
      const input = await jsonArg(ctx, "INPUT", INPUT, {});
      const client = await ctx.rpc();
      let stop = ctx.out.progress(`running ${TOOL}`);
      // the console prints its own banner for every approval request
      const off = ctx.interactive
        ? () => {}
        : client.onNotification((n) => {
            if (n.method !== "approval.requested" || n.params?.agent_id !== agentId || n.params?.tool !== TOOL) return;
            stop();
            ctx.out.note(
              ctx.out.paint("yellow", `⏸ waiting for approval ${n.params.id}`) +
                ctx.out.paint("dim", ` (aaosctl approve ${n.params.id} | deny ${n.params.id})`),
            );
            stop = ctx.out.progress(`waiting for approval ${n.params.id}`);
          });
      let r: { output: unknown };
      try {
        r = await client.call(`tool.invoke`, { agent_id: agentId, tool: TOOL, input }, { signal: ctx.signal });
      } finally {
        off();
        stop();
      }
      if (ctx.out.json) return ctx.out.printJson(r);
      ctx.out.print(plainValue(r.output));
    },
  },

  rewind: {
    summary: "put back the files an agent (and its children) changed; --dry-run shows the plan",
    help:
      "Rewind AGENT (agent.rewind): every file change it and its descendants made through the kernel's tools " +
      "(file_write, file_delete, file_move, dir_create) after audit seq --to (default: since it was spawned) is " +
      "undone, newest first, from the pre-images in the kernel's journal. A path changed since by someone else " +
      "(another agent, or outside the kernel: its hash no longer matches) is a conflict, left alone with the " +
      "path's older changes, unless --force; a path whose pre-image was not kept (too large, or pruned past " +
      "kernel.yaml journal.max_bytes) is unrestorable. --no-children rewinds AGENT's own changes only. An agent " +
      "being rewound must not be running.\n\n" +
      "Prints what was (--dry-run: would be) restored, the conflicts and the unrestorable paths, and the line that " +
      "undoes the rewind (a rewind is journaled like any change: aaosctl rewind AGENT --to SEQ, SEQ the seq before " +
      "its agent.rewind audit record). --json prints the kernel's result.\n\n" +
      "Exit 0 when everything was (or would be) restored; 1 when there were conflicts or unrestorable paths.\n\n" +
      AGENT_ARG_HELP,
    methods: ["agent.rewind"],
    params: {
      args: [{ name: "AGENT", kind: "agent" }],
      options: {
        to: { type: "string", value: "SEQ", help: "undo only the changes after audit seq SEQ (default: all)" },
        "dry-run": { type: "boolean", help: "show what would be restored; change nothing" },
        force: { type: "boolean", help: "restore paths that changed since too (overwriting those changes)" },
        "no-children": { type: "boolean", help: "leave the changes of AGENT's descendants alone" },
      },
    },
    async run(ctx, { AGENT }, opts) {
      const agentId = await resolveAgentId(ctx, AGENT!);
      const toSeq = numberOpt("to", opts.to);
      const dryRun = opts["dry-run"] === true;
      const r = await callWaiting<RewindResult>(ctx, dryRun ? "planning" : "rewinding", "agent.rewind", {
        agent_id: agentId,
        ...(toSeq === undefined ? {} : { to_seq: toSeq }),
        ...(opts["no-children"] === true ? { include_children: false } : {}),
        ...(dryRun ? { dry_run: true } : {}),
        ...(opts.force === true ? { force: true } : {}),
      });
      const failed = r.conflicts.length > 0 || r.unrestorable.length > 0;
      if (ctx.out.json) {
        ctx.out.printJson(r);
        return failed ? ExitCode.failed : undefined;
      }
      ctx.out.print(formatRewind(r, agentId, ctx.out.paint, ctx.out.width));
      if (failed) return ExitCode.failed;
    },
  },

  approvals: {
    summary: "list pending approval requests (--follow: and wait for new ones)",
    help:
      "List the tool calls waiting for a person (approval.list). With --follow, keep listening and print each new " +
      "request as it arrives (approval.requested) until interrupted.",
    methods: ["approval.list"],
    params: {
      args: [],
      options: { follow: { type: "boolean", short: "f", help: "keep printing new requests as they arrive" } },
    },
    async run(ctx, _args, opts) {
      const client = await ctx.rpc();
      // subscribe before listing, so that nothing falls between the two
      const seen = new Set<string>();
      const queued: ApprovalInfo[] = [];
      let listed = false;
      const show = (a: ApprovalInfo) => {
        if (seen.has(a.id)) return;
        seen.add(a.id);
        if (ctx.out.json) ctx.out.printRecord(a);
        else ctx.out.print(formatApprovalRequest(a, ctx.out.paint, ctx.out.width));
      };
      const off = opts.follow
        ? client.onNotification((n) => {
            if (n.method !== "approval.requested") return;
            if (listed) show(n.params);
            else queued.push(n.params);
          })
        : () => {};
      try {
        const { approvals } = await call<{ approvals: ApprovalInfo[] }>(ctx, "approval.list");
        if (!opts.follow) {
          if (ctx.out.json) return ctx.out.printJson({ approvals });
          if (!approvals.length) return ctx.out.note("no pending approvals");
          ctx.out.print(
            table(
              approvals,
              [
                { header: "ID", value: (a) => a.id },
                { header: "AGENT", value: (a) => a.agent_id },
                { header: "TOOL", value: (a) => a.tool, style: () => "yellow" },
                { header: "REQUESTED", value: (a) => age(a.requested_at) },
                { header: "INPUT", value: (a) => shortJson(a.input, 200), flexible: true },
              ],
              ctx.out.paint,
              ctx.out.width,
            ),
          );
          return;
        }
        for (const a of approvals) show(a);
        listed = true;
        for (const a of queued.splice(0)) show(a);
        if (!ctx.out.json) ctx.out.note(ctx.out.paint("dim", "waiting for approval requests (Ctrl-C to stop)"));
        await untilClosedOrAborted(ctx, client);
      } finally {
        off();
      }
    },
  },

  approve: {
    summary: "approve a pending tool call",
    help: "Let the tool call APPROVAL go ahead (approval.respond). APPROVAL may be a unique prefix of the id.",
    methods: ["approval.respond"],
    params: { args: [{ name: "APPROVAL", kind: "approval" }] },
    async run(ctx, { APPROVAL }) {
      const id = await resolveApprovalId(ctx, APPROVAL!);
      const r = await call<{ id: string; decision: string }>(ctx, "approval.respond", { id, decision: "approve" });
      if (ctx.out.json) return ctx.out.printJson(r);
      ctx.out.print(`${ctx.out.paint("green", "approved")} ${r.id}`);
    },
  },

  deny: {
    summary: "deny a pending tool call",
    help: "Refuse the tool call APPROVAL (approval.respond); the agent's call fails with approval denied (-32003) and --reason.",
    methods: ["approval.respond"],
    params: {
      args: [{ name: "APPROVAL", kind: "approval" }],
      options: {
        reason: {
          type: "string",
          short: "r",
          value: "TEXT",
          help: "why, recorded in the audit log and told to the agent",
        },
      },
    },
    async run(ctx, { APPROVAL }, opts) {
      const id = await resolveApprovalId(ctx, APPROVAL!);
      const params: Record<string, string> = { id, decision: "deny" };
      if (typeof opts.reason === "string") params.reason = opts.reason;
      const r = await call<{ id: string; decision: string }>(ctx, "approval.respond", params);
      if (ctx.out.json) return ctx.out.printJson(r);
      ctx.out.print(
        `${ctx.out.paint("yellow", "denied")} ${r.id}${typeof opts.reason === "string" ? ctx.out.paint("dim", ` (${opts.reason})`) : ""}`,
      );
    },
  },

  audit: {
    summary:
      "read the audit log (--tail N, --follow; `audit export` prints it all as JSONL; `audit verify` checks the chain)",
    help:
      "Print audit events (audit.query), oldest first, one per line: seq, time, kind, agent, then the event's own " +
      "fields. Filters: --agent, --kind (a kind, or PREFIX.* for a whole group: --kind tool.*, --kind agent.spawn), " +
      "--since SEQ. Without --tail: the first --limit N events from --since (default 100; aaosctl pages past the " +
      "kernel's 1000 a query for you); stderr says when more follow. --tail N: the newest N matching events instead " +
      `(at most ${AUDIT_TAIL_MAX}), still oldest first. --follow keeps polling for new events every --interval ms ` +
      "until interrupted, after the --tail N newest if given (with --json: one JSON object per line); otherwise " +
      "--json prints {events, next_seq}.\n\n" +
      "`aaosctl audit export` prints every matching record (--agent, --kind, --since SEQ) as one JSON object per " +
      "line on stdout and nothing else, page after page up to the log's head as it was when the export began; the " +
      "count goes to stderr. `aaosctl audit export > audit.jsonl` is a copy of the log to keep or to feed to jq.\n\n" +
      "`aaosctl audit verify` checks the log's hash chain (audit.verify); exit status 1 if it is broken.\n\n" +
      auditKindsHelp(),
    methods: ["audit.query", "system.info", "audit.verify"],
    params: {
      args: [{ name: "action", kind: "word", optional: true, choices: ["verify", "export"] }],
      options: {
        agent: {
          type: "string",
          short: "a",
          value: "AGENT",
          kind: "agent",
          help: "only events of this agent (id, prefix or name)",
        },
        kind: {
          type: "string",
          short: "k",
          value: "KIND",
          help: "only events of this kind, e.g. agent.spawn, or tool.* for every tool record (the kinds: above)",
        },
        since: { type: "string", value: "SEQ", help: "only events with seq ≥ SEQ" },
        limit: {
          type: "string",
          short: "n",
          value: "N",
          help: "at most N events from the oldest (default 100; more than 1000 are fetched page by page)",
        },
        tail: { type: "string", short: "t", value: "N", help: `the newest N events (at most ${AUDIT_TAIL_MAX})` },
        follow: { type: "boolean", short: "f", help: "keep printing new events as they are logged" },
        interval: { type: "string", value: "MS", help: "poll interval for --follow (default 500)" },
      },
    },
    async run(ctx, args, opts) {
      if (args.action === "verify") return verifyAudit(ctx);
      const query: Record<string, unknown> = {};
      const since = numberOpt("since", opts.since);
      const limit = numberOpt("limit", opts.limit);
      const tail = numberOpt("tail", opts.tail);
      if (tail !== undefined && (tail < 1 || tail > AUDIT_TAIL_MAX))
        throw usageError(`--tail wants a number from 1 to ${AUDIT_TAIL_MAX}, not ${JSON.stringify(opts.tail)}`);
      if (limit === 0) throw usageError("--limit wants a number of at least 1");
      if (tail !== undefined && limit !== undefined)
        throw usageError("--tail N and --limit N do not mix: --tail counts from the newest, --limit from the oldest");
      if (args.action === "export") {
        for (const o of ["tail", "limit", "follow", "interval"] as const)
          if (opts[o] !== undefined)
            throw usageError(`audit export takes --agent, --kind and --since, not --${o}`, "it prints every record");
      }
      if (typeof opts.agent === "string") query.agent_id = await resolveAgentId(ctx, opts.agent);
      if (typeof opts.kind === "string") query.kind = opts.kind;
      const from = Math.max(1, since ?? 1);
      if (args.action === "export") return auditExport(ctx, query, from);
      const interval = numberOpt("interval", opts.interval) ?? 500;
      const printEvents = (events: AuditEvent[]) => {
        if (!events.length) return;
        const lines = ctx.out.json
          ? events.map((ev) => ctx.out.recordText(ev))
          : events.map((ev) => formatAuditEvent(ev, ctx.out.paint, ctx.out.width));
        ctx.out.endLine();
        ctx.out.write(lines.join("\n") + "\n");
      };
      let r: AuditPage;
      if (tail !== undefined) r = await auditTail(ctx, query, tail, from);
      else if (limit === undefined || limit <= AUDIT_PAGE)
        r = await call<AuditPage>(ctx, "audit.query", {
          ...query,
          ...(since === undefined ? {} : { since_seq: since }),
          ...(limit === undefined ? {} : { limit }),
        });
      else r = await auditFirst(ctx, query, from, limit);
      if (!opts.follow) {
        if (ctx.out.json) return ctx.out.printJson(r);
        if (!r.events.length) return ctx.out.note(`no audit events match${unknownKindHint(query.kind)}`);
        printEvents(r.events);
        if (tail === undefined && r.events.length === (limit ?? 100))
          ctx.out.note(
            ctx.out.paint(
              "dim",
              `stopped at --limit ${limit ?? 100}; more may follow: --since ${r.next_seq} goes on, ` +
                "--tail N shows the newest, `aaosctl audit export` prints them all",
            ),
          );
        return;
      }
      printEvents(r.events);
      const client = await ctx.rpc();
      const closed = untilClosedOrAborted(ctx, client);
      let done = false;
      closed.finally(() => (done = true)).catch(() => {});
      while (!done) {
        await Promise.race([Bun.sleep(interval), closed]);
        if (done) break;
        r = await call(ctx, "audit.query", { ...query, since_seq: r.next_seq });
        printEvents(r.events);
      }
      await closed;
    },
  },

  memory: {
    summary: "search, list, export and delete agent memory (own memories and shared namespaces)",
    help:
      "Agent memory as the operator sees it (docs/memory.md). A record lives in an agent's own memory (shown as " +
      "own:AGENT) or in a shared namespace; its kind is note (memory_store, kept until deleted) or archive (a " +
      "conversation message compaction moved out of the context window).\n\n" +
      "`memory search QUERY...` ranks records by word match (BM25, stemmed) fused with recency (memory.search); " +
      "-k N results (default 10, at most 100), --tag T (repeat: every tag must be present), --since 7d or an ISO date.\n\n" +
      "`memory ls` lists records oldest first (memory.list), --limit N of them (default 100), fetching page after " +
      "page; --kind note|archive; --after SEQ starts after that seq.\n\n" +
      "`memory export` prints every record as one JSON object per line (memory.export, page after page): the " +
      "JSONL of a backup; the count goes to stderr.\n\n" +
      "`memory rm ID` deletes one record (memory.delete; audited as memory.delete with its hash).\n\n" +
      "`memory namespaces` lists every namespace holding records, with its use and its quota (memory.namespaces).\n\n" +
      "Without --agent or --namespace, search, ls and export cover every namespace; with them, only those " +
      "(both: both). --agent takes an agent id, a unique prefix of one, or the name of exactly one live agent; a " +
      "stopped agent's memory stays readable until the kernel forgets the agent.",
    methods: ["memory.search", "memory.list", "memory.export", "memory.delete", "memory.namespaces"],
    params: {
      args: [
        { name: "ACTION", kind: "word", choices: [...MEMORY_ACTIONS] },
        { name: "QUERY|ID", kind: "text", rest: true, optional: true },
      ],
      options: {
        agent: {
          type: "string",
          short: "a",
          value: "AGENT",
          kind: "agent",
          help: "search/ls/export: this agent's own memory (id, prefix or name)",
        },
        namespace: { type: "string", value: "NS", help: "search/ls/export: this shared namespace" },
        top: { type: "string", short: "k", value: "N", help: "search: at most N results (default 10, at most 100)" },
        tag: {
          type: "string",
          short: "t",
          value: "TAG",
          multiple: true,
          help: "search: only records with this tag (repeat: every one)",
        },
        since: {
          type: "string",
          value: "WHEN",
          help: 'search: only records newer than WHEN ("7d", "12h", an ISO date)',
        },
        kind: { type: "string", value: "KIND", help: "ls: only note or only archive records" },
        limit: { type: "string", short: "n", value: "N", help: "ls: at most N records (default 100)" },
        after: { type: "string", value: "SEQ", help: "ls: only records after seq SEQ" },
      },
    },
    async run(ctx, args, opts) {
      const action = args.ACTION as MemoryAction;
      const word = args["QUERY|ID"];
      const allowed = MEMORY_OPTIONS[action];
      for (const name of ["agent", "namespace", "top", "tag", "since", "kind", "limit", "after"])
        if (opts[name] !== undefined && !allowed.includes(name))
          throw usageError(
            `memory ${action}: --${name === "top" ? "top (-k)" : name} does not apply`,
            `memory ${action} takes ${allowed.length ? allowed.map((o) => `--${o}`).join(", ") : "no options"}`,
          );
      if (action === "search" && word === undefined)
        throw usageError("memory search: missing QUERY", "usage: aaosctl memory search QUERY... [options]");
      if (action === "rm" && word === undefined)
        throw usageError(
          "memory rm: missing ID",
          "usage: aaosctl memory rm ID (ids are shown by memory ls and search)",
        );
      if ((action === "rm" && /\s/.test(word!)) || (action !== "search" && action !== "rm" && word !== undefined))
        throw usageError(`memory ${action}: unexpected argument ${JSON.stringify(word)}`);
      const scope: Record<string, unknown> = {};
      if (typeof opts.agent === "string") scope.agent_id = await resolveAgentId(ctx, opts.agent);
      if (typeof opts.namespace === "string") scope.namespace = opts.namespace;
      switch (action) {
        case "search":
          return memorySearch(ctx, await textArg(ctx, word!), scope, opts);
        case "ls":
          return memoryList(ctx, scope, opts);
        case "export":
          return memoryExport(ctx, scope);
        case "rm": {
          const r = await call<{ id: string; deleted: true }>(ctx, "memory.delete", { id: word! });
          if (ctx.out.json) return ctx.out.printJson(r);
          ctx.out.print(`${ctx.out.paint("yellow", "deleted")} ${r.id}`);
          return;
        }
        case "namespaces":
          return memoryNamespaces(ctx);
      }
    },
  },

  logs: {
    summary: "read the kernel's log (--tail N, --since 10m, -f to follow; --source init for the boot)",
    help:
      "Print the newest lines of the kernel's log (system.logs), oldest first, one per line: time, level, message, " +
      "then the record's own fields as key=value. --tail N: how many (default 100, at most 10000); --since: only " +
      "lines newer than a duration back from now (10m, 2h) or an ISO time; --source init: the appliance's boot log " +
      "instead of the kernel's. -f keeps printing new lines as they are logged until interrupted (at most 1,000 a " +
      "second; a `dropped N lines` line says when more came). --json prints {lines, truncated}, or with -f one " +
      "record per line, the parsed pino records as the kernel keeps them. A host-mode kernel started without " +
      "--log-file logs to stderr, and there is nothing to read here.",
    methods: ["system.logs"],
    params: {
      args: [],
      options: {
        follow: { type: "boolean", short: "f", help: "keep printing new lines as they are logged" },
        tail: { type: "string", short: "t", value: "N", help: "the newest N lines (default 100, at most 10000)" },
        since: { type: "string", value: "WHEN", help: "only lines since a duration back (10m, 2h) or an ISO time" },
        source: {
          type: "string",
          value: "SOURCE",
          help: "kernel (the default) or init (the appliance's boot)",
          choices: ["kernel", "init"],
        },
      },
    },
    async run(ctx, _args, opts) {
      const tail = numberOpt("tail", opts.tail);
      if (tail !== undefined && tail > 10_000)
        throw usageError(`--tail wants a number from 0 to 10000, not ${JSON.stringify(opts.tail)}`);
      const source = typeof opts.source === "string" ? opts.source : undefined;
      if (source !== undefined && source !== "kernel" && source !== "init")
        throw usageError(`--source is kernel or init, not ${JSON.stringify(source)}`);
      const params = {
        ...(source ? { source } : {}),
        ...(tail === undefined ? {} : { tail }),
        ...(typeof opts.since === "string" ? { since: opts.since } : {}),
        ...(opts.follow ? { follow: true } : {}),
      };
      const printLine = (l: Record<string, unknown>) =>
        ctx.out.json ? ctx.out.printRecord(l) : ctx.out.print(formatLogLine(l, ctx.out.paint));
      if (!opts.follow) {
        const r = await call<{ lines: Record<string, unknown>[]; truncated: boolean }>(ctx, "system.logs", params);
        if (ctx.out.json) return ctx.out.printJson(r);
        if (!r.lines.length) return ctx.out.note("no log lines match");
        for (const l of r.lines) printLine(l);
        return;
      }
      const client = await ctx.rpc();
      // lines that arrive before the tail is printed wait for it
      let early: Record<string, unknown>[] | null = [];
      const off = client.onNotification((n) => {
        if (n.method !== "system.log") return;
        const line = (n.params as { line: Record<string, unknown> }).line;
        if (early) early.push(line);
        else printLine(line);
      });
      try {
        const r = await call<{ lines: Record<string, unknown>[] }>(ctx, "system.logs", params);
        for (const l of r.lines) printLine(l);
        for (const l of early) printLine(l);
        early = null;
        await untilClosedOrAborted(ctx, client);
      } finally {
        off();
      }
    },
  },

  ls: {
    summary: "list a directory of the files agents wrote (the data disk's files/; / is its root)",
    help:
      "List a directory of the agents' area of the data disk (fs.list): /data/files in the appliance, --data's " +
      "files/ in host mode. PATH is relative to it (default /). Prints type, size in bytes and name, sorted by " +
      "name; a symlink is shown, never followed. Nothing else on the data disk is reachable: `..` out of it and " +
      "symlinks are refused. Read-only, and recorded in the audit log (fs.list).",
    methods: ["fs.list"],
    params: { args: [{ name: "PATH", kind: "word", optional: true }] },
    async run(ctx, args) {
      const r = await call<{
        path: string;
        entries: { name: string; type: string; size: number }[];
        truncated: boolean;
      }>(ctx, "fs.list", { path: args.PATH ?? "/" });
      if (ctx.out.json) return ctx.out.printJson(r);
      if (!r.entries.length) return ctx.out.note(`${r.path} is empty`);
      ctx.out.print(
        table(
          r.entries,
          [
            { header: "TYPE", value: (e) => e.type },
            { header: "SIZE", value: (e) => String(e.size) },
            { header: "NAME", value: (e) => (e.type === "dir" ? `${e.name}/` : e.name), flexible: true },
          ],
          ctx.out.paint,
          ctx.out.width,
        ),
      );
      if (r.truncated) ctx.out.note(ctx.out.paint("dim", `only the first ${r.entries.length} entries are shown`));
    },
  },

  cat: {
    summary: "print a file agents wrote (the data disk's files/), byte for byte",
    help:
      "Print a file of the agents' area of the data disk (fs.read) to stdout, exactly its bytes, reading it page " +
      "by page (kernel.yaml tools.file_read_max_bytes a call) until its end: `aaosctl cat /report.pdf > report.pdf` " +
      "copies it. PATH as for `aaosctl ls`. --json prints {path, size, encoding} with the content as text (UTF-8) " +
      "or data_base64. Read-only, and each page is recorded in the audit log (fs.read).",
    methods: ["fs.read"],
    params: { args: [{ name: "PATH", kind: "word" }] },
    async run(ctx, args) {
      const parts: Buffer[] = [];
      let offset = 0;
      let path = args.PATH!;
      let size = 0;
      for (;;) {
        const r = await call<{
          path: string;
          bytes: number;
          size: number;
          eof: boolean;
          encoding: "utf-8" | "base64";
          text?: string;
          data_base64?: string;
        }>(ctx, "fs.read", { path: args.PATH!, offset });
        path = r.path;
        size = r.size;
        const bytes = r.encoding === "base64" ? Buffer.from(r.data_base64 ?? "", "base64") : Buffer.from(r.text ?? "");
        if (ctx.out.json || ctx.interactive) parts.push(bytes);
        else await writeStdoutBytes(bytes);
        offset += r.bytes;
        if (r.eof || r.bytes === 0) break;
      }
      if (ctx.out.json) {
        const all = Buffer.concat(parts);
        let text: string | null = null;
        try {
          text = new TextDecoder("utf-8", { fatal: true }).decode(all);
        } catch {}
        return ctx.out.printJson({
          path,
          size,
          ...(text !== null
            ? { encoding: "utf-8", text }
            : { encoding: "base64", data_base64: all.toString("base64") }),
        });
      }
      // the console: as text
      if (ctx.interactive) ctx.out.write(Buffer.concat(parts).toString("utf8"));
    },
  },

  "dashboard-token": {
    summary: "print the dashboard's operator and viewer tokens and its address",
    help:
      "Ask the kernel for the web dashboard's two tokens and the address it listens on (web.tokens; " +
      "docs/dashboard.md). The operator token opens a session that may call every method; the viewer " +
      "token one that only reads. Open the address in a browser and paste a token on the login page: it is never put in a URL. " +
      "The kernel gives the tokens only on the console (serial line, unix socket), never over the " +
      "dashboard's own WebSocket, and records each request (web.tokens in the audit log).\n\n" +
      "To change a token, replace its file (kernel.yaml web.operator_token_file / viewer_token_file, or " +
      "<data>/state/web/operator.token and viewer.token) and restart the kernel. When the dashboard is off " +
      "(no kernel.yaml web.listen, no --listen http:HOST:PORT) the kernel says so and the exit code is 1.",
    methods: ["web.tokens"],
    params: { args: [] },
    async run(ctx) {
      let r: { operator: string; viewer: string; urls: string[] };
      try {
        r = await call(ctx, "web.tokens");
      } catch (e) {
        // not a failure of an agent, whatever the code says: the kernel's own words, exit 1
        if (e instanceof RpcError && /dashboard is off/.test(e.message) && !ctx.out.json)
          throw new CliError(ExitCode.failed, e.message, "docs/dashboard.md says how to turn it on");
        throw e;
      }
      if (ctx.out.json) return ctx.out.printJson(r);
      const p = ctx.out.paint;
      const pairs: [string, string][] = [
        ["operator", r.operator],
        ["viewer", r.viewer],
      ];
      for (const url of r.urls) pairs.push(["url", url]);
      ctx.out.print(keyValues(pairs, p));
      if (r.urls.some((u) => /^http:\/\/(0\.0\.0\.0|\[::\])[:/]/.test(u)))
        ctx.out.note(
          p("dim", "0.0.0.0 / [::]: the listener is on every address of the machine; open it at one of them"),
        );
      ctx.out.note(
        p("dim", "paste a token on the page's login form; the operator's may change things, the viewer's only reads"),
      );
    },
  },
  apply: {
    summary: "put a manifest on the data disk, or (--config) replace kernel.yaml, without a reboot",
    help:
      "Send FILE (a path on this machine, or '-' for stdin). A manifest goes to manifest.put under the name its " +
      "`name:` field gives: the kernel checks it as a spawn would (a mistake is shown with its line and column and " +
      "nothing is stored), keeps it on the data disk (<data>/state/manifests) across reboots, and from then on " +
      "`spawn NAME` finds it, over a config-partition manifest of the same name.\n\n" +
      "With --config FILE is kernel.yaml (config.apply): checked as the boot checks it, written to the config " +
      "directory, and the changed sections are listed as applied (in effect now) or at reboot.",
    methods: ["manifest.put", "config.apply"],
    params: {
      args: [],
      options: {
        file: { type: "string", short: "f", value: "FILE", kind: "file", help: "the YAML to apply ('-': stdin)" },
        config: { type: "boolean", help: "FILE is kernel.yaml, not a manifest" },
      },
    },
    async run(ctx, _args, opts) {
      const file = opts.file;
      if (typeof file !== "string") throw usageError("apply needs -f FILE", "aaosctl apply -f manifest.yaml");
      const text = await fileArg(ctx, file);
      if (opts.config === true) {
        const r = await call<{ applied: string[]; at_reboot: string[]; path: string }>(ctx, "config.apply", {
          yaml: text,
        });
        if (ctx.out.json) return ctx.out.printJson(r);
        const p = ctx.out.paint;
        ctx.out.print(`${r.path} ${p("bold", "written")}`);
        const list = (xs: string[]) => (xs.length ? xs.join(", ") : "-");
        const rows: [string, string][] = [
          ["applied", list(r.applied)],
          ["at reboot", list(r.at_reboot)],
        ];
        ctx.out.print(keyValues(rows, p));
        return;
      }
      const name = manifestNameOf(text, file);
      const r = await call<{ name: string; overrides: boolean; file: string }>(ctx, "manifest.put", {
        name,
        yaml: text,
      });
      if (ctx.out.json) return ctx.out.printJson(r);
      ctx.out.print(
        `manifest ${ctx.out.paint("bold", r.name)} stored (${r.file})` +
          (r.overrides ? ctx.out.paint("dim", ", over the config partition's manifest of that name") : ""),
      );
    },
  },

  delete: {
    summary: "remove a manifest put with `apply` (the config partition's are the operator's files)",
    help:
      "`aaosctl delete manifest NAME` removes the data disk's manifest NAME (manifest.delete). A config-partition " +
      "manifest of the same name shows again; one that exists only on the config partition is refused.",
    methods: ["manifest.delete"],
    params: {
      args: [
        { name: "KIND", kind: "word", choices: ["manifest"] },
        { name: "NAME", kind: "word" },
      ],
    },
    async run(ctx, args) {
      const r = await call<{ name: string; source: string | null }>(ctx, "manifest.delete", { name: args.NAME! });
      if (ctx.out.json) return ctx.out.printJson(r);
      ctx.out.print(
        `manifest ${ctx.out.paint("bold", r.name)} deleted` +
          (r.source === "config" ? ctx.out.paint("dim", "; the config partition's one shows again") : ""),
      );
    },
  },

  config: {
    summary: "print kernel.yaml as the kernel has it (key file names only, never a key)",
    help:
      "`aaosctl config get` prints kernel.yaml (config.get); when there is none, the defaults. Change it with " +
      "`aaosctl apply --config -f kernel.yaml`.",
    methods: ["config.get"],
    params: { args: [{ name: "ACTION", kind: "word", choices: ["get"] }] },
    async run(ctx) {
      const r = await call<{ yaml: string; source: string; path: string }>(ctx, "config.get");
      if (ctx.out.json) return ctx.out.printJson(r);
      ctx.out.write(r.yaml.endsWith("\n") || r.yaml === "" ? r.yaml : r.yaml + "\n");
      if (r.source === "defaults") ctx.out.note(ctx.out.paint("dim", `no ${r.path}: these are the defaults`));
    },
  },

  secret: {
    summary: "write a secret (a provider's API key) from stdin into the config directory's secrets/",
    help:
      "`aaosctl secret set NAME` reads the value from stdin (never from the command line, where `ps` and the " +
      "shell's history would show it; one trailing newline is dropped) and writes <config>/secrets/NAME, mode " +
      "0600 (secret.set). No method ever shows it again. kernel.yaml names it, e.g. " +
      "inference.providers.anthropic.api_key_file: secrets/anthropic_api_key; a provider that had no key uses " +
      "it at its next call, without a reboot.",
    methods: ["secret.set"],
    params: {
      args: [
        { name: "ACTION", kind: "word", choices: ["set"] },
        { name: "NAME", kind: "word" },
      ],
    },
    async run(ctx, args) {
      const value = (await ctx.readStdin()).replace(/\r?\n$/, "");
      if (!value) throw usageError("no value on stdin", `printf %s "$KEY" | aaosctl secret set ${args.NAME}`);
      const r = await call<{ name: string; bytes: number; file: string }>(ctx, "secret.set", {
        name: args.NAME!,
        value,
      });
      if (ctx.out.json) return ctx.out.printJson(r);
      ctx.out.print(`secret ${ctx.out.paint("bold", r.name)} written (${r.file}, ${r.bytes} bytes)`);
    },
  },

  upgrade: {
    summary: "install a new system into the inactive slot (A/B) and reboot into it",
    help:
      "`aaosctl upgrade BUNDLE` sends the bundle `make upgrade-bundle` wrote (out/aaos-upgrade.bundle) over this " +
      "connection in chunks, for a machine without a network (system.upgrade {sha256, size, offset, data}); over " +
      "a UART that is slow (docs/operations.md has the rates). `aaosctl upgrade --url URL --sha256 HEX` has the " +
      "appliance fetch it from your HTTP(S) server instead (system.upgrade {url, sha256}); the sha256 is in " +
      "BUNDLE.sha256 beside the bundle. The appliance checks it (sha256s, the ed25519 signature when AAOS-CFG holds " +
      "upgrade.pub, the slot read back), gives it one try, and reboots; a system that does not come up falls back " +
      "by itself (`aaosctl info` shows the attempt). --no-reboot installs and stays up.",
    methods: ["system.upgrade"],
    params: {
      args: [{ name: "BUNDLE", kind: "file", optional: true }],
      options: {
        url: { type: "string", value: "URL", help: "the appliance fetches the bundle from here (http or https)" },
        sha256: { type: "string", value: "HEX", help: "the bundle's sha256 (default: BUNDLE.sha256, or computed)" },
        "no-reboot": { type: "boolean", help: "install, but do not reboot" },
      },
    },
    async run(ctx, args, opts) {
      const reboot = opts["no-reboot"] !== true;
      const url = typeof opts.url === "string" ? opts.url : undefined;
      let sha256 = typeof opts.sha256 === "string" ? opts.sha256 : undefined;
      let r: any;
      if (url) {
        if (args.BUNDLE) throw usageError("give BUNDLE or --url, not both");
        if (!sha256)
          throw usageError("--url needs --sha256", "aaosctl upgrade --url URL --sha256 $(cut -c1-64 F.sha256)");
        ctx.out.note(ctx.out.paint("dim", `the appliance fetches ${url}`));
        r = await call(ctx, "system.upgrade", { url, sha256, reboot });
      } else {
        const file = args.BUNDLE;
        if (!file) throw usageError("upgrade needs BUNDLE or --url", "aaosctl upgrade out/aaos-upgrade.bundle");
        const bytes = readFileSync(file);
        if (!sha256 && existsSync(file + ".sha256")) sha256 = readFileSync(file + ".sha256", "utf8").slice(0, 64);
        sha256 ??= new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
        // within the kernel's default rpc.max_line_bytes (1 MiB) once in base64
        const CHUNK = 512 * 1024;
        const t0 = Date.now();
        for (let off = 0; off < bytes.length; off += CHUNK) {
          r = await call(ctx, "system.upgrade", {
            sha256,
            size: bytes.length,
            offset: off,
            data: bytes.subarray(off, off + CHUNK).toString("base64"),
            reboot,
          });
          const done = Math.min(off + CHUNK, bytes.length);
          const rate = done / Math.max(0.001, (Date.now() - t0) / 1000);
          if (!ctx.out.json)
            ctx.out.note(
              ctx.out.paint(
                "dim",
                `sent ${formatBytes(done)} of ${formatBytes(bytes.length)} (${formatBytes(rate)}/s, ` +
                  `${formatDuration(((bytes.length - done) / rate) * 1000)} left)`,
              ),
            );
        }
      }
      if (ctx.out.json) return ctx.out.printJson(r);
      const p = ctx.out.paint;
      ctx.out.print(
        `aaOS ${p("bold", r.version)} installed in slot ${r.slot} (generation ${r.generation}, ` +
          `${r.signed ? "signature verified" : "unsigned"})` +
          (r.rebooting ? "; rebooting into it: it has one try to come up" : "; it boots at the next reboot"),
      );
    },
  },

  rollback: {
    summary: "boot the other slot's system again (the one before the last upgrade)",
    help:
      "Make the other slot's system the default again and reboot into it (system.rollback). It gets one try, as " +
      "an upgrade does: if it does not come up, this one comes back. Refused when that slot holds no system that " +
      "booted (e.g. an upgrade into it failed). --no-reboot switches at the next reboot.",
    methods: ["system.rollback"],
    params: { args: [], options: { "no-reboot": { type: "boolean", help: "switch, but do not reboot now" } } },
    async run(ctx, _args, opts) {
      const r = await call(ctx, "system.rollback", { reboot: opts["no-reboot"] !== true });
      if (ctx.out.json) return ctx.out.printJson(r);
      ctx.out.print(
        `slot ${r.slot} (aaOS ${r.version ?? "?"}, generation ${r.generation})` +
          (r.rebooting ? ": rebooting into it" : ": at the next reboot"),
      );
    },
  },

  shutdown: {
    summary: "power the machine off (sync, unmount, poweroff)",
    help: "Ask the kernel to stop cleanly and power off (system.shutdown {action: poweroff}).",
    methods: ["system.shutdown"],
    params: { args: [] },
    async run(ctx) {
      const r = await call(ctx, "system.shutdown", { action: "poweroff" });
      if (ctx.out.json) return ctx.out.printJson(r);
      ctx.out.print("powering off");
    },
  },

  reboot: {
    summary: "reboot the machine",
    help: "Ask the kernel to stop cleanly and reboot (system.shutdown {action: reboot}).",
    methods: ["system.shutdown"],
    params: { args: [] },
    async run(ctx) {
      const r = await call(ctx, "system.shutdown", { action: "reboot" });
      if (ctx.out.json) return ctx.out.printJson(r);
      ctx.out.print("rebooting");
    },
  },

  console: {
    summary: "interactive console: history, completion, approval requests as they arrive",
    help:
      "Open an interactive session on the kernel. Type any verb without `aaosctl` (ps, run AGENT MESSAGE, approve ID, ...). " +
      "Tab completes verbs, method names (after `call`), agent ids, approval ids and tool names; ↑/↓ walk the history, " +
      "which is kept in ~/.aaosctl_history (AAOSCTL_HISTORY overrides). Approval requests are printed the moment " +
      "the kernel announces them. Ctrl-C stops waiting for the current verb (the kernel carries on); Ctrl-D or `exit` leaves.",
    methods: [],
    params: { args: [] },
    async run(ctx) {
      const { runConsole } = await import("./console.ts");
      return runConsole(ctx);
    },
  },

  mcp: {
    summary: "serve MCP on stdin/stdout as an MCP client of kernel.yaml (a desktop client launches it)",
    help:
      "The stdio bridge a desktop MCP client launches: MCP (2026-07-28, or 2025-11-25 for a client that opens with " +
      "initialize) on stdin and stdout, and behind it the kernel's surface for the principal NAME " +
      "(kernel.yaml mcp.clients.NAME): the tools, served methods, agent_run and resources its manifest allows, " +
      "nothing more. Denials are tool errors and audited; a call that needs an approval waits for " +
      "`aaosctl approve`. The line to the kernel is the operator's (--socket, --serial, --tty, --context), so no " +
      "token is needed. stdout carries MCP only; notes go to stderr. A NAME the kernel does not know exits 2 " +
      "before serving; a lost kernel connection ends the session with exit 3. docs/mcp.md has a Claude Desktop " +
      "configuration.\n\n" +
      "  aaosctl mcp --as desk --socket /run/aaos.sock",
    methods: ["mcp.clients", "system.info", "mcp.surface", "mcp.call", "mcp.read", "mcp.prompt", "mcp.complete"],
    params: {
      args: [],
      options: {
        as: { type: "string", value: "NAME", help: "the MCP client (kernel.yaml mcp.clients.NAME) to serve as" },
      },
    },
    async run(ctx, _args, opts) {
      if (ctx.interactive)
        throw usageError("mcp serves a desktop client on stdin/stdout: run it as `aaosctl mcp --as NAME`, not here");
      if (typeof opts.as !== "string" || opts.as === "")
        throw usageError("mcp needs --as NAME, a client of kernel.yaml mcp.clients", "aaosctl mcp --as desk");
      const { runMcp } = await import("./mcp.ts");
      return runMcp(ctx, opts.as);
    },
  },

  help: {
    summary: "show help for aaosctl or for one verb",
    help: "Same as aaosctl --help, or aaosctl VERB --help.",
    methods: [],
    params: { args: [{ name: "VERB", kind: "word", optional: true }] },
    async run(ctx, { VERB }) {
      const { globalHelp, verbHelp } = await import("./help.ts");
      if (VERB === undefined) return ctx.out.print(globalHelp(ctx.interactive));
      if (!VERBS[VERB]) throw usageError(`no verb ${JSON.stringify(VERB)}`, "aaosctl help lists them");
      ctx.out.print(verbHelp(VERB));
    },
  },

  completion: {
    summary: "print a bash, zsh or fish completion script",
    help:
      "Print the shell completion for aaosctl, generated from this verb table: verbs, their options, -o's formats, " +
      "fixed choices (audit export, memory search) and for `call` every method of the contract.\n\n" +
      "  bash: source <(aaosctl completion bash)\n" +
      "  zsh:  source <(aaosctl completion zsh)\n" +
      "  fish: aaosctl completion fish | source\n\n" +
      "Agent and approval ids are completed by `aaosctl console`, which is connected to the kernel.",
    methods: [],
    params: { args: [{ name: "SHELL", kind: "word", choices: [...SHELLS] }] },
    async run(ctx, { SHELL }) {
      ctx.out.write(completionScript(SHELL as Shell, VERBS));
    },
  },

  context: {
    summary: "list the config file's named kernels (ls), or choose the current one (use NAME)",
    help:
      "The config file ($AAOSCONFIG, else ${XDG_CONFIG_HOME:-~/.config}/aaos/config.yaml) names kernels, like a " +
      "kubeconfig or talosconfig:\n\n" +
      "  current-context: vm\n" +
      "  contexts:\n" +
      "    host: {socket: /tmp/aaos.sock}\n" +
      "    vm: {serial: out/serial.sock}\n" +
      "    board: {tty: /dev/ttyUSB0, baud: 115200}\n\n" +
      "`aaosctl --context NAME VERB` talks to NAME; without --socket, --serial, --tty, --context or AAOS_SOCKET " +
      "(AAOS_SERIAL, AAOS_TTY), the current context is used. `context ls` lists the contexts, * marking the " +
      "current one (-q: the names only); `context use NAME` rewrites current-context and nothing else in the " +
      "file, comments included. Relative paths are relative to the file's directory.",
    methods: [],
    params: {
      args: [
        { name: "ACTION", kind: "word", choices: ["ls", "use"], optional: true },
        { name: "NAME", kind: "context", optional: true },
      ],
      options: { quiet: { type: "boolean", short: "q", help: "context ls: the names only, one a line" } },
    },
    async run(ctx, { ACTION, NAME }, opts) {
      const { configPath, describeEndpoint, loadContexts, useContext } = await import("./contexts.ts");
      if (ACTION === "use") {
        if (NAME === undefined) throw usageError("context use: missing NAME", "usage: aaosctl context use NAME");
        const f = useContext(NAME);
        if (ctx.out.json) return ctx.out.printJson({ config: f.path, current_context: NAME });
        ctx.out.print(`current context: ${NAME} (${f.path})`);
        return;
      }
      if (NAME !== undefined) throw usageError(`context ls: unexpected argument ${JSON.stringify(NAME)}`);
      const f = loadContexts();
      const contexts = (f?.contexts ?? []).map((c) => ({
        name: c.name,
        current: c.name === f?.current,
        ...c.endpoint,
      }));
      if (ctx.out.json)
        return ctx.out.printJson({ config: f?.path ?? configPath(), current_context: f?.current ?? null, contexts });
      if (opts.quiet) {
        for (const c of contexts) ctx.out.print(c.name);
        return;
      }
      if (!f) return ctx.out.note(`no config file ${configPath()} (aaosctl context --help shows one)`);
      if (!contexts.length) return ctx.out.note(`no contexts in ${f.path}`);
      ctx.out.print(
        table(
          f.contexts,
          [
            { header: "CURRENT", value: (c) => (c.name === f.current ? "*" : "") },
            { header: "NAME", value: (c) => c.name },
            { header: "ENDPOINT", value: (c) => describeEndpoint(c.endpoint), flexible: true },
          ],
          ctx.out.paint,
          ctx.out.width,
        ),
      );
    },
  },

  version: {
    summary: "print aaosctl's version (and the kernel's, if one is given)",
    help: "Print aaosctl's version; with a connection (--socket, --serial, --tty or AAOS_*), the kernel's too.",
    methods: ["system.info"],
    params: { args: [] },
    async run(ctx) {
      const { cliVersion } = await import("./help.ts");
      let kernel: string | undefined;
      try {
        kernel = (await call<{ version?: string }>(ctx, "system.info")).version;
      } catch (e) {
        if (!(e instanceof CliError) || e.exitCode !== ExitCode.usage) throw e;
      }
      if (ctx.out.json) return ctx.out.printJson({ aaosctl: cliVersion(), kernel: kernel ?? null });
      ctx.out.print(`aaosctl ${cliVersion()}`);
      if (kernel) ctx.out.print(`kernel  ${kernel}`);
    },
  },

  call: {
    summary: "call any JSON-RPC method with JSON params, print the JSON result",
    help:
      "The escape hatch: send METHOD with PARAMS (a JSON object or array; '-' reads stdin; default {}) and print " +
      "the result as JSON. Errors exit like any verb's. Known methods: " +
      KNOWN_METHODS.join(", ") +
      ".",
    methods: [],
    params: {
      args: [
        { name: "METHOD", kind: "method" },
        { name: "PARAMS", kind: "json", optional: true },
      ],
    },
    async run(ctx, { METHOD, PARAMS }) {
      const params = await jsonArg(ctx, "PARAMS", PARAMS, {});
      const r = await callWaiting(ctx, METHOD!, METHOD!, params);
      // JSON whatever -o says, but YAML with -o yaml
      ctx.out.printJson(r);
    },
  },
};

function memoryTable(ctx: Ctx, rows: MemoryRecordInfo[], withScore: boolean): string {
  return table(
    rows,
    [
      { header: "ID", value: (r) => r.id },
      { header: "NAMESPACE", value: (r) => memoryWhere(r), style: (r) => (r.namespace === null ? "cyan" : undefined) },
      { header: "KIND", value: (r) => r.kind, style: (r) => (r.kind === "archive" ? "dim" : undefined) },
      { header: "CREATED", value: (r) => timestamp(r.created_at) },
      ...(withScore ? [{ header: "SCORE", value: (r: MemoryRecordInfo) => (r.score ?? 0).toFixed(4) }] : []),
      { header: "TEXT", value: (r) => firstLine(r.text), flexible: true },
    ],
    ctx.out.paint,
    ctx.out.width,
  );
}

async function memorySearch(ctx: Ctx, query: string, scope: Record<string, unknown>, opts: Opts): Promise<void> {
  if (!query.trim()) throw usageError("memory search: QUERY is empty");
  const params: Record<string, unknown> = { query, ...scope };
  const k = numberOpt("top", opts.top);
  if (k !== undefined) {
    if (k < 1 || k > 100) throw usageError(`-k wants 1 to 100 results, not ${k}`);
    params.k = k;
  }
  const tags = Array.isArray(opts.tag) ? opts.tag : typeof opts.tag === "string" ? [opts.tag] : [];
  if (tags.length) params.tags = tags;
  if (typeof opts.since === "string") params.since = opts.since;
  const r = await callWaiting<{ results: MemoryRecordInfo[] }>(ctx, "searching", "memory.search", params);
  if (ctx.out.json) return ctx.out.printJson(r);
  if (!r.results.length) return ctx.out.note("no memory records match");
  ctx.out.print(memoryTable(ctx, r.results, true));
}

async function memoryList(ctx: Ctx, scope: Record<string, unknown>, opts: Opts): Promise<void> {
  let kind: string | undefined;
  if (typeof opts.kind === "string") {
    if (opts.kind !== "note" && opts.kind !== "archive")
      throw usageError(`--kind is note or archive, not ${JSON.stringify(opts.kind)}`);
    kind = opts.kind;
  }
  const limit = numberOpt("limit", opts.limit) ?? 100;
  if (limit < 1) throw usageError("--limit wants at least 1");
  let after = numberOpt("after", opts.after);
  const records: MemoryRecordInfo[] = [];
  let more = false;
  // one more than wanted tells whether anything is left after the last one shown
  while (records.length < limit) {
    const want = Math.min(limit - records.length + 1, 1000);
    const page = await call<{ records: MemoryRecordInfo[]; next_seq: number | null }>(ctx, "memory.list", {
      ...scope,
      ...(kind ? { kind } : {}),
      ...(after === undefined ? {} : { after_seq: after }),
      limit: want,
    });
    const room = limit - records.length;
    records.push(...page.records.slice(0, room));
    if (page.records.length > room) {
      more = true;
      break;
    }
    if (page.next_seq === null || page.records.length === 0) break;
    after = page.next_seq;
  }
  const next = more ? records[records.length - 1]!.seq : null;
  if (ctx.out.json) return ctx.out.printJson({ records, next_seq: next });
  if (!records.length) return ctx.out.note("no memory records");
  ctx.out.print(memoryTable(ctx, records, false));
  if (next !== null)
    ctx.out.note(ctx.out.paint("dim", `more records after seq ${next}: aaosctl memory ls --after ${next}`));
}

async function memoryExport(ctx: Ctx, scope: Record<string, unknown>): Promise<void> {
  let after: number | undefined;
  let count = 0;
  const stop = ctx.out.progress("exporting");
  try {
    for (;;) {
      const page = await call<{ jsonl: string; records: number; next_seq: number | null }>(ctx, "memory.export", {
        ...scope,
        ...(after === undefined ? {} : { after_seq: after }),
      });
      // JSONL whatever --json says: it is JSON already, one record a line
      ctx.out.write(page.jsonl);
      count += page.records;
      if (page.next_seq === null || page.records === 0) break;
      after = page.next_seq;
    }
  } finally {
    stop();
  }
  ctx.out.note(ctx.out.paint("dim", `${count} record${count === 1 ? "" : "s"} exported`));
}

async function memoryNamespaces(ctx: Ctx): Promise<void> {
  type Ns = {
    namespace: string | null;
    owner: string | null;
    records: number;
    bytes: number;
    quota: { records: number; bytes: number };
  };
  const r = await call<{ namespaces: Ns[] }>(ctx, "memory.namespaces");
  if (ctx.out.json) return ctx.out.printJson(r);
  if (!r.namespaces.length) return ctx.out.note("no memory records in any namespace");
  const full = (n: Ns) => n.records >= n.quota.records || n.bytes >= n.quota.bytes;
  ctx.out.print(
    table(
      r.namespaces,
      [
        {
          header: "NAMESPACE",
          value: (n) => memoryWhere(n),
          style: (n) => (n.namespace === null ? "cyan" : undefined),
        },
        {
          header: "RECORDS",
          value: (n) => `${n.records}/${n.quota.records}`,
          style: (n) => (full(n) ? "red" : undefined),
        },
        {
          header: "BYTES",
          value: (n) => `${formatBytes(n.bytes)}/${formatBytes(n.quota.bytes)}`,
          style: (n) => (full(n) ? "red" : undefined),
        },
      ],
      ctx.out.paint,
      ctx.out.width,
    ),
  );
}

async function verifyAudit(ctx: Ctx): Promise<number | void> {
  const r = await callWaiting<{ ok: boolean; events: number; head?: string; [k: string]: unknown }>(
    ctx,
    "verifying audit chain",
    "audit.verify",
  );
  if (ctx.out.json) ctx.out.printJson(r);
  else {
    const p = ctx.out.paint;
    // what is worth a person's eye: the reason it broke, and every non-empty finding
    const broken = r.broken as { seq?: number; reason?: string } | undefined;
    const extra = Object.entries(r)
      .filter(
        ([k, v]) =>
          !["ok", "events", "head", "anchor", "broken"].includes(k) &&
          !(Array.isArray(v) && v.length === 0) &&
          v !== null &&
          v !== undefined,
      )
      .map(([k, v]) => `${k}=${shortJson(v, 120)}`)
      .join(" ");
    if (r.ok)
      ctx.out.print(
        `${p("green", "audit chain intact")}: ${r.events} events, head ${r.head ?? "-"}${extra ? " " + extra : ""}`,
      );
    else {
      const why = broken ? `: seq ${broken.seq}: ${broken.reason}` : "";
      ctx.out.print(`${p("red", "audit chain BROKEN")}${why} (${r.events} events checked)${extra ? " " + extra : ""}`);
    }
  }
  if (!r.ok) return ExitCode.failed;
}

/** the seq of the newest durable audit record (system.info's audit_head) */
async function auditHeadSeq(ctx: Ctx): Promise<number> {
  const info = await call<{ audit_head: { seq: number } }>(ctx, "system.info");
  return info.audit_head.seq;
}

/**
 * audit.query page after page over seqs from..upto, each page's events (none
 * past upto) handed to `each`; returns the since_seq that goes on after upto.
 * A page stops where its 1000th match is, so the next starts right after.
 */
async function auditPages(
  ctx: Ctx,
  query: Record<string, unknown>,
  from: number,
  upto: number,
  each: (events: AuditEvent[]) => void | Promise<void>,
): Promise<number> {
  let since = Math.max(1, from);
  while (since <= upto) {
    const r = await call<AuditPage>(ctx, "audit.query", { ...query, since_seq: since, limit: AUDIT_PAGE });
    await each(r.events.filter((e) => e.seq <= upto));
    if (r.next_seq <= since) break; // cannot happen; never loop forever
    since = r.next_seq;
  }
  return Math.max(since, upto + 1);
}

/** the first `limit` matching events from seq `from`, more than one query's worth */
async function auditFirst(ctx: Ctx, query: Record<string, unknown>, from: number, limit: number): Promise<AuditPage> {
  const events: AuditEvent[] = [];
  let since = from;
  while (events.length < limit) {
    const want = Math.min(AUDIT_PAGE, limit - events.length);
    const r = await call<AuditPage>(ctx, "audit.query", { ...query, since_seq: since, limit: want });
    events.push(...r.events);
    since = r.next_seq;
    if (r.events.length < want) break; // the query reached the head
  }
  return { events, next_seq: since };
}

/**
 * The newest n matching events, oldest first: from the head back, a span of
 * seqs at a time (n seqs, doubling while filters leave it short), each span
 * read forward page by page, until n events or seq `floor`.
 */
async function auditTail(ctx: Ctx, query: Record<string, unknown>, n: number, floor: number): Promise<AuditPage> {
  const head = await auditHeadSeq(ctx);
  const stop = ctx.out.progress("reading the audit log");
  try {
    let found: AuditEvent[] = [];
    let hi = head;
    let span = n;
    while (hi >= floor && found.length < n) {
      const lo = Math.max(floor, hi - span + 1);
      const chunk: AuditEvent[] = [];
      await auditPages(ctx, query, lo, hi, (events) => void chunk.push(...events));
      found = chunk.concat(found).slice(-n);
      hi = lo - 1;
      span = Math.min(span * 2, 1_000_000);
    }
    return { events: found, next_seq: head + 1 };
  } finally {
    stop();
  }
}

/** every matching record from seq `from` to the head as it is now, one JSON object a line */
async function auditExport(ctx: Ctx, query: Record<string, unknown>, from: number): Promise<void> {
  const head = await auditHeadSeq(ctx);
  let count = 0;
  let drained: Promise<void> = Promise.resolve();
  const stop = ctx.out.progress("exporting the audit log");
  try {
    await auditPages(ctx, query, from, head, async (events) => {
      if (!events.length) return;
      // one page in flight on stdout at a time: memory stays a page or two
      await drained;
      ctx.out.write(events.map((e) => JSON.stringify(e)).join("\n") + "\n");
      drained = flushStdout();
      count += events.length;
    });
    await drained;
  } finally {
    stop();
  }
  ctx.out.note(
    ctx.out.paint(
      "dim",
      `${count} audit record${count === 1 ? "" : "s"} exported (up to seq ${head})${count ? "" : unknownKindHint(query.kind)}`,
    ),
  );
}

/** ": no record kind is named X" when --kind names no kind of this kernel (the log may hold older ones) */
function unknownKindHint(kind: unknown): string {
  if (typeof kind !== "string" || kind === "*") return "";
  const known: readonly string[] = AUDIT_KINDS;
  const ok = kind.endsWith(".*") ? known.some((k) => k.startsWith(kind.slice(0, -1))) : known.includes(kind);
  return ok ? "" : `; no record kind is named ${JSON.stringify(kind)} (aaosctl audit --help lists them)`;
}

/** the record kinds for `audit --help`, a line per group (what PREFIX.* matches), as kernel/audit/kinds.ts lists them */
function auditKindsHelp(): string {
  const groups = new Map<string, string[]>();
  for (const kind of AUDIT_KINDS) {
    const g = `${kind.slice(0, kind.indexOf("."))}.*`;
    groups.set(g, [...(groups.get(g) ?? []), kind]);
  }
  const w = Math.max(...[...groups.keys()].map((g) => g.length));
  const lines = ["Record kinds (--kind takes one of these, or a group's PREFIX.*):"];
  for (const [g, kinds] of groups) {
    let line = `  ${g.padEnd(w)}  `;
    const indent = " ".repeat(line.length);
    let first = true;
    for (const k of kinds) {
      if (!first && line.length + 1 + k.length > 78) {
        lines.push(line);
        line = indent + k;
      } else line += (first ? "" : " ") + k;
      first = false;
    }
    lines.push(line);
  }
  return lines.join("\n");
}

const NO_AGENTS = "no agents (spawn one: aaosctl spawn NAME)";

function psTable(ctx: Ctx, agents: (AgentInfo & Partial<PsDetails>)[]): string {
  return table(
    agents,
    [
      { header: "AGENT ID", value: (a) => a.agent_id },
      { header: "NAME", value: (a) => a.name },
      { header: "STATE", value: (a) => a.state, style: (a) => stateStyle(a.state) },
      { header: "PARENT", value: (a) => a.parent_id ?? "-" },
      ...(ctx.out.wide
        ? [
            { header: "LIFECYCLE", value: (a: AgentInfo & Partial<PsDetails>) => a.lifecycle ?? "-" },
            { header: "RESTARTS", value: (a: AgentInfo & Partial<PsDetails>) => String(a.restarts ?? "-") },
            {
              header: "INBOX",
              value: (a: AgentInfo & Partial<PsDetails>) =>
                a.inbox ? `${a.inbox.depth}${a.inbox.current ? " (1 running)" : ""}` : "-",
            },
            {
              header: "TOKENS IN/OUT",
              value: (a: AgentInfo & Partial<PsDetails>) =>
                a.usage ? `${a.usage.input_tokens}/${a.usage.output_tokens}` : "-",
            },
          ]
        : []),
      { header: "MODEL", value: (a) => a.model, flexible: true },
    ],
    ctx.out.paint,
    ctx.out.width,
  );
}

/** how often ps -w redraws on its own, and at most how often an agent.* record makes it redraw */
export const PS_WATCH_EVERY_MS = 2000;
export const PS_WATCH_MIN_MS = 200;

/**
 * ps -w: draw, then wait for the next tick (2 s) or an agent.* audit record
 * (no sooner than 200 ms after the last draw), until Ctrl-C. On a terminal
 * the screen is redrawn in place; otherwise a list is printed only when it
 * changed, each after a blank line, with no cursor codes.
 */
async function watchPs(ctx: Ctx, list: () => Promise<(AgentInfo & Partial<PsDetails>)[]>): Promise<void> {
  const client = await ctx.rpc();
  const inPlace = !ctx.interactive && !ctx.out.json && Boolean(process.stdout.isTTY);
  let dirty = false;
  let wake: (() => void) | null = null;
  const off = client.onNotification((n) => {
    if (n.method !== "audit.record" || typeof n.params?.kind !== "string" || !n.params.kind.startsWith("agent."))
      return;
    dirty = true;
    wake?.();
  });
  const stopped = untilClosedOrAborted(ctx, client).then(() => "stop" as const);
  // (the connection closes after we return: that rejection is nobody's)
  stopped.catch(() => {});
  let last: string | undefined;
  try {
    await call(ctx, "events.subscribe", { topics: ["audit"] });
    while (!ctx.signal?.aborted) {
      const drawnAt = Date.now();
      dirty = false;
      const agents = await Promise.race([list(), stopped]);
      if (agents === "stop") break;
      const text = ctx.out.json ? ctx.out.recordText({ agents }) : agents.length ? psTable(ctx, agents) : NO_AGENTS;
      if (inPlace) {
        const head = ctx.out.paint(
          "dim",
          `every ${PS_WATCH_EVERY_MS / 1000}s: aaosctl ps  ${new Date().toISOString()}`,
        );
        ctx.out.write(`\x1b[H\x1b[2J${head}\n\n${text}\n`);
      } else if (text !== last) {
        if (last !== undefined && !ctx.out.json) ctx.out.print("");
        ctx.out.print(text);
      }
      last = text;
      const next = await Promise.race([
        stopped,
        new Promise<"tick">((res) => {
          const tick = setTimeout(() => res("tick"), PS_WATCH_EVERY_MS);
          wake = () => {
            wake = null;
            clearTimeout(tick);
            setTimeout(() => res("tick"), Math.max(0, PS_WATCH_MIN_MS - (Date.now() - drawnAt)));
          };
          if (dirty) wake();
        }),
      ]);
      wake = null;
      if (next === "stop") break;
    }
  } catch (e) {
    // Ctrl-C while a call was on its way: a clean stop all the same
    if (!ctx.signal?.aborted) throw e;
  } finally {
    off();
  }
}

/** resolves on Ctrl-C (console) or SIGINT (one-shot); rejects when the kernel goes away */
function untilClosedOrAborted(ctx: Ctx, client: RpcClient): Promise<void> {
  return new Promise((resolve, reject) => {
    if (ctx.signal?.aborted) return resolve();
    const offClose = client.onClosed(() => {
      cleanup();
      reject(new ConnectionLost());
    });
    const onAbort = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      offClose();
      ctx.signal?.removeEventListener("abort", onAbort);
    };
    ctx.signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** bytes to stdout as they are (aaosctl cat), after whatever was written before them */
async function writeStdoutBytes(bytes: Uint8Array): Promise<void> {
  await flushStdout();
  let n = 0;
  while (n < bytes.length) {
    const w = await Bun.write(Bun.stdout, bytes.subarray(n));
    if (w <= 0) throw new CliError(ExitCode.failed, "stdout would take no more bytes");
    n += w;
  }
}

/** one system.logs line for a person: TIME LEVEL msg key=value… */
export function formatLogLine(l: Record<string, unknown>, paint: Ctx["out"]["paint"]): string {
  const level = typeof l.level === "string" ? l.level : "-";
  const style =
    level === "error" || level === "fatal" ? "red" : level === "warn" ? "yellow" : level === "info" ? undefined : "dim";
  const lv = level.toUpperCase().padEnd(5);
  const rest: string[] = [];
  for (const [k, v] of Object.entries(l)) {
    if (k === "level" || k === "time" || k === "msg" || k === "pid") continue;
    const text = typeof v === "string" && !/[\s="]/.test(v) && v !== "" ? v : JSON.stringify(v);
    rest.push(`${k}=${text}`);
  }
  const msg = typeof l.msg === "string" ? l.msg : "";
  return [paint("dim", timestamp(l.time)), style ? paint(style, lv) : lv, msg, ...rest]
    .filter((s) => s !== "")
    .join(" ");
}
