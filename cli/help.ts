// Help text, generated from the verb table and the global options so that
// it cannot drift from what the parser accepts.
import pkg from "../package.json" with { type: "json" };
import { GLOBAL_OPTIONS, optionLines, usageLine } from "./args.ts";
import { VERBS } from "./verbs.ts";

/** the version of this aaosctl (package.json, bundled into a compiled binary) */
export function cliVersion(): string {
  return pkg.version ?? "unknown";
}

export const EXIT_CODES: [number, string][] = [
  [0, "ok"],
  [
    1,
    "failed: the kernel refused for another reason (no such agent, invalid manifest, budget...), audit verify found a broken chain, or rewind left conflicts or unrestorable paths",
  ],
  [2, "usage: the command line was wrong"],
  [3, "unreachable: nothing answered at the socket, serial line or device, or the connection was lost"],
  [4, "denied: a capability check (-32001) or a person (-32003) said no"],
  [130, "interrupted (Ctrl-C)"],
];

const ORDER = [
  "info",
  "stats",
  "ping",
  "ps",
  "spawn",
  "run",
  "send",
  "result",
  "call-agent",
  "stop",
  "restart",
  "status",
  "tools",
  "invoke",
  "rewind",
  "approvals",
  "approve",
  "deny",
  "audit",
  "memory",
  "logs",
  "ls",
  "cat",
  "dashboard-token",
  "upgrade",
  "rollback",
  "shutdown",
  "reboot",
  "call",
  "console",
  "mcp",
  "help",
  "version",
  "completion",
  "context",
];

export function verbOrder(): string[] {
  return [...ORDER.filter((v) => VERBS[v]), ...Object.keys(VERBS).filter((v) => !ORDER.includes(v))];
}

export function globalHelp(interactive = false): string {
  const names = verbOrder().filter((v) => !(interactive && (v === "console" || v === "mcp")));
  const w = Math.max(...names.map((n) => n.length));
  const lines = interactive
    ? ["Type a verb and its arguments; Tab completes. exit or Ctrl-D leaves.", ""]
    : [
        "aaosctl: the aaOS operator's command line",
        "",
        "usage: aaosctl [--socket PATH | --serial PATH | --tty DEVICE [--baud N] | --context NAME] VERB [args] [options]",
        "",
      ];
  lines.push("verbs:");
  for (const n of names) lines.push(`  ${n.padEnd(w)}  ${VERBS[n]!.summary}`);
  if (interactive) {
    lines.push(
      "",
      "Add --json (or -o json|yaml|wide) to a verb for JSON, YAML or wider tables; VERB --help for its help.",
    );
    return lines.join("\n");
  }
  lines.push("", "global options:", ...optionLines(GLOBAL_OPTIONS));
  lines.push("", "exit codes:");
  for (const [code, what] of EXIT_CODES) lines.push(`  ${String(code).padStart(3)}  ${what}`);
  lines.push(
    "",
    "examples:",
    "  aaosctl --socket /tmp/aaos.sock ps",
    "  aaosctl --serial out/serial.sock spawn assistant",
    "  aaosctl run ag-3f2a 'summarise /data/files/notes.md'",
    "  aaosctl send --wait assistant 'note that the backup ran'",
    "  aaosctl call-agent weather forecast --param city=Oslo --timeout 30s",
    "  aaosctl audit --follow --kind capability.denied",
    "  aaosctl rewind ag-3f2a --dry-run",
    "  aaosctl memory search 'backup schedule' --namespace team",
    "  aaosctl --serial out/serial.sock console",
    "  aaosctl --context vm ps -w",
    "",
    "aaosctl VERB --help shows a verb's arguments and options. See docs/aaosctl.md.",
  );
  return lines.join("\n");
}

export function verbHelp(name: string): string {
  const v = VERBS[name]!;
  const lines = [
    `usage: aaosctl ${usageLine(name, v.params.args, v.params.options)}`,
    "",
    v.summary[0]!.toUpperCase() + v.summary.slice(1) + ".",
    "",
  ];
  for (const para of v.help.split("\n\n")) lines.push(...paragraph(para), "");
  if (v.methods.length) lines.push(`calls: ${v.methods.join(", ")}`, "");
  if (v.params.options && Object.keys(v.params.options).length)
    lines.push("options:", ...optionLines(v.params.options), "");
  lines.push("global options (--socket, --serial, --tty, -o json|yaml|wide, --json, ...): aaosctl --help");
  return lines.join("\n");
}

/** a help paragraph wrapped to 78 columns; its lines indented by two spaces (a list) are kept as written */
function paragraph(para: string): string[] {
  const out: string[] = [];
  let text: string[] = [];
  for (const line of para.split("\n")) {
    if (!line.startsWith("  ")) {
      text.push(line);
      continue;
    }
    out.push(...wrap(text.join(" "), 78), line);
    text = [];
  }
  return [...out, ...wrap(text.join(" "), 78)];
}

function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out;
}
