// Turning kernel results into text a person reads: tables, key/value blocks,
// colour, one-line renderings of agent output events and audit records.
// Pure functions of their input (colour is a parameter), so they unit-test
// without a terminal.
import { ErrorCode } from "../kernel/errors.ts";
import type { AgentOutputEvent } from "../kernel/services.ts";
import { RpcError } from "./client.ts";
import { CliError, RPC_ERROR_NAMES } from "./exit.ts";

export type Style = "bold" | "dim" | "red" | "green" | "yellow" | "blue" | "magenta" | "cyan";

const SGR: Record<Style, [number, number]> = {
  bold: [1, 22],
  dim: [2, 22],
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
  blue: [34, 39],
  magenta: [35, 39],
  cyan: [36, 39],
};

export type Paint = (style: Style, text: string) => string;

export function painter(enabled: boolean): Paint {
  if (!enabled) return (_s, t) => t;
  return (s, t) => `\x1b[${SGR[s][0]}m${t}\x1b[${SGR[s][1]}m`;
}

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

export function stripAnsi(text: string): string {
  return text.replace(ANSI, "");
}

/** printed width of a string: ANSI codes take no room */
export function visibleLength(text: string): number {
  return [...stripAnsi(text)].length;
}

export function truncate(text: string, max: number): string {
  if (max <= 0) return "";
  const chars = [...text];
  if (chars.length <= max) return text;
  return (
    chars
      .slice(0, Math.max(0, max - 1))
      .join("")
      .trimEnd() + "…"
  );
}

/** compact one-line JSON, cut to max characters */
export function shortJson(value: unknown, max = 80): string {
  let text: string;
  try {
    text = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return truncate(text.replace(/\s*\n\s*/g, " "), max);
}

export interface Column<Row> {
  header: string;
  value: (row: Row) => string;
  /** colour for the cell, from its row */
  style?: (row: Row) => Style | undefined;
  /** this column absorbs the cut when the table is wider than the terminal */
  flexible?: boolean;
}

/**
 * A plain table: upper-case headers, columns two spaces apart, no borders
 * (the kubectl look). The flexible column is cut so that lines fit width.
 */
export function table<Row>(rows: Row[], columns: Column<Row>[], paint: Paint, width = Infinity): string {
  const cells = rows.map((r) => columns.map((c) => c.value(r).replace(/\s*\n\s*/g, " ")));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((row) => [...row[i]!].length)));
  const flex = columns.findIndex((c) => c.flexible);
  const total = widths.reduce((a, b) => a + b, 0) + 2 * (columns.length - 1);
  if (flex >= 0 && total > width) {
    widths[flex] = Math.max(columns[flex]!.header.length, widths[flex]! - (total - width));
  }
  const line = (values: string[], styleOf: (i: number) => Style | undefined) =>
    values
      .map((v, i) => {
        const cut = truncate(v, widths[i]!);
        const last = i === values.length - 1;
        const padded = last ? cut : cut + " ".repeat(widths[i]! - [...cut].length);
        const style = styleOf(i);
        return style ? paint(style, padded) : padded;
      })
      .join("  ")
      .trimEnd();
  const out = [
    line(
      columns.map((c) => c.header),
      () => "bold",
    ),
  ];
  rows.forEach((r, ri) => out.push(line(cells[ri]!, (i) => columns[i]!.style?.(r))));
  return out.join("\n");
}

/** key/value block, keys padded to one column, like `kubectl describe` */
export function keyValues(pairs: [string, string][], paint: Paint): string {
  const w = Math.max(0, ...pairs.map(([k]) => k.length));
  return pairs
    .map(([k, v]) => {
      const indent = " ".repeat(w + 2);
      const value = v.split("\n").join("\n" + indent);
      return paint("bold", (k + ":").padEnd(w + 1)) + " " + value;
    })
    .join("\n");
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "-";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.floor(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${Math.floor(s % 60)}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${m % 60}m`;
  return `${Math.floor(h / 24)}d${h % 24}h`;
}

/** "12s ago" from an ISO timestamp (or as given, if it is not one) */
export function age(iso: string, now = Date.now()): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return formatDuration(Math.max(0, now - t)) + " ago";
}

/**
 * A time as ISO 8601 in UTC with its zone written out ("2026-11-24T20:39:04.118Z"), whatever zone the
 * kernel or this machine is in: audit records, log lines and tables all show times this way.
 */
export function timestamp(ts: unknown): string {
  const t = typeof ts === "number" ? ts : typeof ts === "string" ? Date.parse(ts) : NaN;
  if (Number.isNaN(t)) return typeof ts === "string" ? ts : "-";
  return new Date(t).toISOString();
}

/** 1536 → "1.5 KiB" */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return "-";
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1).replace(/\.0$/, "") : Math.round(v)} ${units[i]}`;
}

/** where a memory record or namespace lives: a shared namespace by name, an agent's own memory as own:AGENT */
export function memoryWhere(r: { namespace: string | null; owner?: string | null }): string {
  return r.namespace ?? `own:${r.owner ?? "?"}`;
}

/** the first non-empty line of a text, for a table cell */
export function firstLine(text: string): string {
  const line = text.split("\n").find((l) => l.trim() !== "") ?? "";
  return line.trim();
}

export function stateStyle(state: string): Style | undefined {
  if (state === "running") return "green";
  if (state === "ready") return "cyan";
  if (state === "stopped") return "dim";
  if (state === "restarting") return "yellow";
  if (state === "failed") return "red";
  return undefined;
}

/** `value` as text for a person: strings verbatim, everything else as indented JSON */
export function plainValue(value: unknown): string {
  if (typeof value === "string") return value;
  if (value === undefined) return "";
  return JSON.stringify(value, null, 2);
}

/**
 * One agent.output event as text. Text events are returned as they are (the
 * model's words, streamed); tool activity becomes one indented line.
 */
export function formatOutputEvent(ev: AgentOutputEvent, paint: Paint, width = 100): string {
  const room = Math.max(20, width - 8);
  switch (ev.type) {
    case "text":
      return ev.text;
    case "tool_use":
      return paint("cyan", `  ▸ ${ev.tool} `) + paint("dim", shortJson(ev.input, room - ev.tool.length));
    case "tool_result":
      if (ev.ok)
        return paint("green", `  ✓ ${ev.tool} `) + paint("dim", shortJson(ev.output ?? "", room - ev.tool.length));
      return paint("red", `  ✗ ${ev.tool}: ${ev.error?.message ?? "failed"}${ev.error ? ` (${ev.error.code})` : ""}`);
    case "approval_pending":
      return (
        paint("yellow", `  ⏸ ${ev.tool} waits for approval ${ev.approval_id}`) +
        paint("dim", ` (aaosctl approve ${ev.approval_id} | deny ${ev.approval_id})`)
      );
    case "turn":
      return paint("dim", `  · turn ${ev.turn}: ${ev.usage.input_tokens} in / ${ev.usage.output_tokens} out`);
    default:
      return paint("dim", `  · ${shortJson(ev, room)}`);
  }
}

export interface ApprovalLike {
  id: string;
  agent_id: string;
  tool: string;
  input: unknown;
  requested_at?: string;
}

/** the banner the console and `approvals --follow` print when a request arrives */
export function formatApprovalRequest(a: ApprovalLike, paint: Paint, width = 100): string {
  const head =
    paint("yellow", paint("bold", `approval requested ${a.id}`)) +
    `: agent ${a.agent_id} wants ${paint("bold", a.tool)}`;
  const input = paint("dim", "  input " + shortJson(a.input, Math.max(20, width - 8)));
  const how = paint("dim", `  approve ${a.id}  |  deny ${a.id} --reason "..."`);
  return [head, input, how].join("\n");
}

/** what agent.rewind answers (kernel/journal/rewind.ts RewindResult, with the agent.rewind record's seq) */
export interface RewindResult {
  rewind_id: string;
  dry_run: boolean;
  restored: { path: string; to: string; seq: number; tool: string }[];
  conflicts: { path: string; seq: number; reason: string }[];
  unrestorable: { path: string; seq: number; reason: string }[];
  /** the agent.rewind audit record (null: a dry run) */
  audit_seq: number | null;
}

/** the command that undoes a rewind: rewind the agent again, back to just before its agent.rewind record */
export function rewindUndoCommand(agent: string, auditSeq: number): string {
  return `aaosctl rewind ${agent} --to ${auditSeq - 1}`;
}

/**
 * agent.rewind for a person: a headline, then tables of what was (would be)
 * restored, the conflicts and the unrestorable paths, then the undo line.
 */
export function formatRewind(r: RewindResult, agent: string, paint: Paint, width = Infinity): string {
  const out: string[] = [];
  const n = (k: number, what: string) => `${k} ${what}${k === 1 ? "" : "s"}`;
  const verb = r.dry_run ? "would restore" : "restored";
  const trouble = r.conflicts.length + r.unrestorable.length;
  const head = `${r.dry_run ? "dry run " : "rewind "}${r.rewind_id}: ${verb} ${n(r.restored.length, "path")}`;
  const tail = trouble
    ? `, ${n(r.conflicts.length, "conflict")}, ${r.unrestorable.length} unrestorable`
    : r.restored.length
      ? ""
      : " (nothing to rewind)";
  out.push(paint(trouble ? "yellow" : "green", head + tail));
  if (r.restored.length)
    out.push(
      "",
      table(
        r.restored,
        [
          { header: "CHANGE", value: (x) => `#${x.seq}` },
          { header: "TOOL", value: (x) => x.tool },
          { header: r.dry_run ? "WOULD BECOME" : "NOW", value: (x) => x.to, style: () => "cyan" },
          { header: "PATH", value: (x) => x.path, flexible: true },
        ],
        paint,
        width,
      ),
    );
  const problems = (title: string, rows: { path: string; seq: number; reason: string }[], style: Style) => {
    if (!rows.length) return;
    out.push(
      "",
      paint(style, title),
      table(
        rows,
        [
          { header: "CHANGE", value: (x) => `#${x.seq}` },
          { header: "PATH", value: (x) => x.path },
          { header: "REASON", value: (x) => x.reason, flexible: true },
        ],
        paint,
        width,
      ),
    );
  };
  problems("conflicts (left alone; --force restores them anyway):", r.conflicts, "red");
  problems("unrestorable (the journal no longer holds their pre-images):", r.unrestorable, "red");
  if (r.audit_seq !== null && r.restored.length)
    out.push("", paint("dim", `undo: ${rewindUndoCommand(agent, r.audit_seq)}`));
  return out.join("\n");
}

const AUDIT_FIXED = new Set(["seq", "ts", "kind", "agent_id", "hash", "prev", "prev_hash"]);

/** one audit record on one line: seq, time, kind, agent, then the other fields as key=value */
export function formatAuditEvent(ev: Record<string, unknown>, paint: Paint, width = Infinity): string {
  const seq = String(ev.seq ?? "?").padStart(5);
  const kind = String(ev.kind ?? "?");
  const agent = ev.agent_id ? String(ev.agent_id) : "-";
  const rest = Object.entries(ev)
    .filter(([k]) => !AUDIT_FIXED.has(k))
    .map(([k, v]) => `${k}=${typeof v === "string" ? (/[\s"=]/.test(v) ? JSON.stringify(v) : v) : shortJson(v, 200)}`)
    .join(" ");
  const head = `${paint("dim", seq)}  ${paint("dim", timestamp(ev.ts))}  ${paint(kindStyle(kind, ev), kind.padEnd(18))}  ${agent}`;
  const room = width - visibleLength(head) - 2;
  return rest ? `${head}  ${truncate(rest, room)}` : head;
}

/** red: a refusal or failure (an approval is one record, approval.decided, whatever the decision) */
function kindStyle(kind: string, ev: Record<string, unknown>): Style {
  if (/denied|fail|error|crash/.test(kind) || ev.decision === "deny") return "red";
  if (/approv/.test(kind)) return "yellow";
  if (/spawn|start/.test(kind)) return "green";
  return "cyan";
}

/** An error as a person reads it: "capability denied: ... (tool x, capability y)". */
export function formatError(err: unknown, paint: Paint): string {
  const lines: string[] = [];
  if (err instanceof RpcError) {
    const name = RPC_ERROR_NAMES[err.code];
    let msg = err.message;
    if (name && !msg.toLowerCase().startsWith(name)) msg = `${name}: ${msg}`;
    lines.push(paint("red", "error: ") + msg + paint("dim", ` (${err.code})`));
    const detail = errorDetail(err.code, err.data);
    if (detail) lines.push("  " + detail);
  } else if (err instanceof CliError) {
    lines.push(paint("red", "error: ") + err.message);
    if (err.hint) lines.push(paint("dim", "  " + err.hint));
  } else {
    lines.push(paint("red", "error: ") + (err instanceof Error ? err.message : String(err)));
  }
  return lines.join("\n");
}

function errorDetail(code: number, data: unknown): string | undefined {
  if (!data || typeof data !== "object") return undefined;
  const d = data as Record<string, unknown>;
  if (code === ErrorCode.InvalidManifest && (d.line !== undefined || d.path !== undefined)) {
    const where = [d.path, d.line, d.column].filter((x) => x !== undefined).join(":");
    return `at ${where}`;
  }
  return Object.entries(d)
    .map(([k, v]) => `${k}: ${typeof v === "string" ? v : shortJson(v, 200)}`)
    .join(", ");
}

/** the JSON form of an error, for --json */
export function errorJson(err: unknown): { error: { code: number | string; message: string; data?: unknown } } {
  if (err instanceof RpcError) return { error: { code: err.code, message: err.message, data: err.data } };
  if (err instanceof CliError) return { error: { code: `exit ${err.exitCode}`, message: err.message } };
  return { error: { code: "error", message: err instanceof Error ? err.message : String(err) } };
}
