// aaosctl console: an interactive session on one kernel connection. Each
// line is a verb, run by the same dispatch as the one-shot command. What the
// kernel announces on its own (approval requests, a reboot's system.ready,
// the line going away) is printed above the prompt the moment it arrives.
import { appendFileSync, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, basename, join } from "node:path";
import * as readline from "node:readline";
import type { AgentInfo, ApprovalInfo, ToolDescription } from "../kernel/services.ts";
import type { InferenceSummary } from "../kernel/llm/router.ts";
import type { RpcClient } from "./client.ts";
import { GLOBAL_OPTIONS, splitWords, type ArgKind, type ArgSpec, type OptionSpec, type OutputFormat } from "./args.ts";
import { dispatch, type DispatchEnv } from "./dispatch.ts";
import { ExitCode } from "./exit.ts";
import { formatApprovalRequest, formatError, painter, type Paint } from "./format.ts";
import { Output } from "./output.ts";
import { KNOWN_METHODS, VERBS, type Ctx } from "./verbs.ts";

const LEAVE = new Set(["exit", "quit", "logout"]);
/** what may be typed while a verb runs, run beside it: quick, and never waiting on the person */
const SIDE_VERBS = new Set(["approve", "deny", "approvals", "ps", "status", "info", "ping", "help"]);
const FOLLOW_FLAGS = new Set(["--follow", "-f", "--watch", "-w"]);
/** Ctrl-]: leave the console without a word to the kernel, as telnet's escape does */
export const DETACH_KEY = "\x1d";
const HISTORY_MAX = 1000;

export function historyPath(env: Record<string, string | undefined> = process.env): string {
  return env.AAOSCTL_HISTORY || join(homedir(), ".aaosctl_history");
}

/** newest first, as readline wants it */
export function loadHistory(path: string): string[] {
  try {
    return readFileSync(path, "utf8").split("\n").filter(Boolean).reverse().slice(0, HISTORY_MAX);
  } catch {
    return [];
  }
}

export async function runConsole(ctx: Ctx): Promise<number> {
  const client = await ctx.rpc();
  const stdout = process.stdout;
  const terminal = Boolean(process.stdin.isTTY && stdout.isTTY);
  const color = terminal && process.env.NO_COLOR === undefined;
  const paint = painter(color);
  const width = () => stdout.columns || 100;

  const histFile = historyPath();
  const rl = readline.createInterface({
    input: process.stdin,
    output: stdout,
    terminal,
    prompt: "",
    historySize: HISTORY_MAX,
    history: terminal ? loadHistory(histFile) : [],
    removeHistoryDuplicates: true,
    completer: (line: string, cb: (err: Error | null, result: [string[], string]) => void) => {
      complete(client, line)
        .then((r) => cb(null, r))
        .catch(() => cb(null, [[], line]));
    },
  } as readline.ReadLineOptions);
  const normalPrompt = color ? paint("bold", paint("cyan", "aaos")) + "> " : "aaos> ";
  const busyPrompt = (verb: string) =>
    color ? paint("bold", paint("cyan", "aaos")) + paint("dim", ` (${verb})`) + "> " : `aaos (${verb})> `;
  // Lines are taken from the moment readline exists: lines piped in arrive while the greeting
  // is still being fetched, and so may the end of the input.
  const queue: string[] = [];
  let ended = false;
  let wake: (() => void) | null = null;

  // The verb running now, if any: its Output clears its own spinner before
  // we print over it. With none running the prompt is showing.
  let current: Output | null = null;
  let running: AbortController | null = null;
  /** the words of the verb running now (the one the prompt waits for) */
  let runningVerb = "";
  let leaving = false;
  /** Ctrl-] left the console: the kernel (and make run's VM) carries on */
  let detached = false;
  /** the person asked for shutdown or reboot: the line going away is expected */
  let expectClose = false;
  let exitCode: number = ExitCode.ok;
  /** the prompt is on the screen (not while greeting, not while a verb runs) */
  let prompting = false;
  /** while a verb runs: a line being typed (and its prompt) is drawn on the cursor's row */
  let draftShown = false;
  const draft = () => (rl as unknown as { line: string }).line;

  /**
   * What a running verb prints, on a terminal: the line being typed meanwhile
   * is taken off its row first and drawn again below once the output is back
   * at the start of a line. The spinner is not drawn over a line being typed.
   */
  const guarded = (w: NodeJS.WriteStream) => ({
    write: (text: string) => {
      if (!terminal || !running) return void w.write(text);
      if (draftShown || draft()) {
        if (w === process.stderr && text.startsWith("\r\x1b[K")) return; // a spinner frame, or its clearing
        if (draftShown) stdout.write("\r\x1b[K");
        draftShown = false;
      }
      w.write(text);
      if (draft() && text.endsWith("\n")) drawDraft();
    },
  });
  const drawDraft = () => {
    rl.setPrompt(busyPrompt(runningVerb));
    rl.prompt(true);
    draftShown = true;
  };

  /** print a block above the prompt without losing what the person is typing */
  const announce = (text: string) => {
    if (current) return current.print(text);
    if (terminal) {
      readline.clearLine(stdout, 0);
      readline.cursorTo(stdout, 0);
    }
    stdout.write(text + "\n");
    if (prompting && !leaving) rl.prompt(true);
  };
  const showPrompt = () => {
    if (leaving) return;
    prompting = true;
    rl.setPrompt(normalPrompt);
    draftShown = false;
    if (terminal) rl.prompt();
  };

  const offNotify = client.onNotification((n) => {
    if (n.method === "approval.requested") {
      announce((terminal ? "\x07" : "") + formatApprovalRequest(n.params as ApprovalInfo, paint, width()));
    } else if (n.method === "system.ready") {
      expectClose = false; // a reboot on a serial line: the kernel is back
      announce(
        paint("green", `kernel ready`) +
          paint("dim", ` version ${n.params?.version ?? "?"}, boot ${n.params?.boot_id ?? "?"}`),
      );
    }
  });
  const offClose = client.onClosed((err) => {
    if (leaving) return;
    leaving = true;
    if (expectClose) {
      announce(paint("dim", "the kernel closed the connection (leaving the console)"));
    } else {
      running?.abort();
      announce(
        paint("red", "connection closed") + (err ? `: ${err.message}` : "") + paint("dim", " (leaving the console)"),
      );
      exitCode = ExitCode.unreachable;
    }
    rl.close();
  });

  rl.on("SIGINT", () => {
    if (running) {
      running.abort();
      if (draft()) rl.write(null as unknown as string, { ctrl: true, name: "u" });
      if (draftShown) stdout.write("\r\x1b[K");
      draftShown = false;
      return;
    }
    // at the prompt: forget the line, like a shell
    stdout.write("^C\n");
    (rl as unknown as { line: string }).line = "";
    rl.write(null as unknown as string, { ctrl: true, name: "u" });
    rl.prompt();
  });

  // Ctrl-]: leave the kernel be, as telnet's escape does. Seen before readline (which would
  // insert the character); a key typed while a verb runs brings up the prompt it is typed at.
  if (terminal)
    process.stdin.prependListener("keypress", (s: string | undefined, key: { name?: string; ctrl?: boolean }) => {
      if (leaving) return;
      if (s === DETACH_KEY) {
        leaving = true;
        detached = true;
        running?.abort();
        if (draftShown) stdout.write("\r\x1b[K");
        announce(paint("dim", "detached: the kernel carries on; `console` again to re-attach"));
        rl.close();
        return;
      }
      if (!running || draftShown || key?.ctrl || ["return", "enter", "tab"].includes(key?.name ?? "")) return;
      // a streamed line still open ends here; a spinner's row is taken for the prompt
      if (current && !current.atStartOfLine) current.endLine();
      else stdout.write("\r\x1b[K");
      drawDraft();
    });

  rl.on("line", (raw: string) => {
    draftShown = false;
    // on a terminal a verb that is waiting does not hold the keyboard: approve, deny... work meanwhile
    if (terminal && running) return void sideLine(raw);
    queue.push(raw);
    wake?.();
  });
  rl.on("close", () => {
    ended = true;
    // Ctrl-D on a terminal leaves now; piped input that ends leaves once the last line is done
    if (terminal) running?.abort();
    wake?.();
  });

  const makeOutput =
    (w: { out: { write(t: string): void }; err: { write(t: string): void } }) =>
    ({ json, noColor, format }: { json: boolean; noColor: boolean; format: OutputFormat }) =>
      new Output({
        stdout: w.out,
        stderr: w.err,
        color: color && !noColor,
        json,
        format,
        progress: terminal,
        width: width(),
      });
  const dispatchEnv = (signal: AbortSignal | undefined, output: DispatchEnv["makeOutput"]): DispatchEnv => ({
    interactive: true,
    signal,
    makeOutput: output,
    rpc: async () => client,
    targetName: () => ctx.targetName,
    readStdin: async () => {
      throw new Error("'-' reads stdin, which is the console's keyboard here; give the text on the line");
    },
  });

  /** a line typed while a verb runs: one of the quick verbs, run beside it, its output among the running one's */
  const sideLine = async (raw: string) => {
    const line = raw.trim();
    if (line) appendHistory(histFile, line);
    if (!line || line.startsWith("#")) return;
    const { words, open } = splitWords(line);
    const say = (t: string) => (current ? current.note(t) : announce(t));
    if (open) return say(paint("red", "error: ") + "unclosed quote");
    if (!SIDE_VERBS.has(words[0]!) || words.some((w) => FOLLOW_FLAGS.has(w))) {
      return say(
        paint("yellow", `${runningVerb} is still running: `) +
          `meanwhile ${[...SIDE_VERBS].join(", ")} work (not --follow or -w); Ctrl-C stops waiting`,
      );
    }
    // through the running verb's Output (which closes a streamed line and clears its spinner first),
    // or above the prompt once it is done
    const out = {
      write: (t: string) => (current ? (current.endLine(), current.write(t)) : announce(t.replace(/\n$/, ""))),
    };
    const err = {
      write: (t: string) => (current ? current.note(t.replace(/\n$/, "")) : announce(t.replace(/\n$/, ""))),
    };
    const code = await dispatch(words, dispatchEnv(undefined, makeOutput({ out, err })));
    if (code !== ExitCode.ok) expectClose = false;
  };

  /** one line, with nothing else running; false when the person wants to leave */
  const runLine = async (raw: string): Promise<boolean> => {
    const line = raw.trim();
    if (line && terminal) appendHistory(histFile, line);
    if (!line || line.startsWith("#")) return true;
    const { words, open } = splitWords(line);
    if (open) {
      stdout.write(paint("red", "error: ") + "unclosed quote\n");
      return true;
    }
    if (LEAVE.has(words[0]!)) return false;
    if (words[0] === "console") {
      stdout.write("already in the console\n");
      return true;
    }
    prompting = false;
    running = new AbortController();
    runningVerb = words[0]!;
    expectClose = words[0] === "shutdown" || words[0] === "reboot";
    const w = { out: guarded(stdout), err: guarded(process.stderr) };
    const code = await dispatch(
      words,
      dispatchEnv(running.signal, (o) => (current = makeOutput(w)(o))),
    );
    current = null;
    running = null;
    if (code !== ExitCode.ok) expectClose = false;
    // piped into the console (a script): its status is the last failure's
    if (!terminal && code !== ExitCode.ok) exitCode = code;
    return true;
  };

  await greet(client, ctx, paint, announce, width(), () => leaving);
  showPrompt();
  while (!leaving) {
    const raw = queue.shift();
    if (raw === undefined) {
      if (ended) break;
      await new Promise<void>((r) => (wake = r));
      wake = null;
      continue;
    }
    if (!(await runLine(raw)) || leaving) break;
    if (ended && terminal) break;
    showPrompt();
  }
  leaving = true;
  offNotify();
  offClose();
  rl.close();
  if (detached) return Number(process.env.AAOSCTL_DETACH_STATUS ?? ExitCode.ok);
  return exitCode;
}

async function greet(
  client: RpcClient,
  ctx: Ctx,
  paint: Paint,
  announce: (t: string) => void,
  width: number,
  gone: () => boolean,
) {
  try {
    const info = await client.call<Record<string, unknown>>("system.info", {}, { timeoutMs: 5000 });
    const where = ctx.targetName ? ` on ${ctx.targetName}` : "";
    announce(
      `${paint("bold", "aaOS")} ${info.version ?? ""}${paint("dim", `, ${info.mode ?? "?"} mode, boot ${info.boot_id ?? "?"}${where}`)}\n` +
        paint("dim", "help lists the verbs; Tab completes; Ctrl-D or exit leaves."),
    );
    if (info.inference) announce(providerLines(info.inference as InferenceSummary, paint).join("\n"));
    const { approvals } = await client.call<{ approvals: ApprovalInfo[] }>("approval.list", {}, { timeoutMs: 5000 });
    if (approvals.length) announce(paint("yellow", `${approvals.length} approval request(s) pending:`));
    for (const a of approvals) announce(formatApprovalRequest(a, paint, width));
  } catch (e) {
    if (!gone()) announce(formatError(e, paint));
  }
}

/**
 * The greeting's word on models: each provider the kernel can reach, or, when
 * there is none, the one line that configures one. Under `make run`
 * (qemu/run.ts sets AAOS_MAKE_RUN) that line is the host's environment.
 */
export function providerLines(
  inf: InferenceSummary,
  paint: Paint,
  env: Record<string, string | undefined> = process.env,
): string[] {
  const out: string[] = [];
  const a = inf.anthropic;
  if (a.key_source !== "none")
    out.push(
      `model: Anthropic at ${a.base_url}` +
        paint("dim", ` (key: ${a.key_source === "api_key_file" ? a.api_key_file : "$ANTHROPIC_API_KEY"})`),
    );
  for (const ep of inf.openai_compatible)
    out.push(
      `model: OpenAI-compatible "${ep.name}" at ${ep.base_url}` +
        paint(
          "dim",
          ` (${ep.key ? "with a key" : "no key"}; manifests use model openai:${ep.name}/MODEL` +
            `${ep.models.length ? ` or ${ep.models.join(", ")}` : ""})`,
        ),
    );
  if (out.length) return out;
  const secret = /^secrets\/([a-z0-9_.-]{1,64})$/.exec(a.api_key_file ?? "")?.[1];
  const how = env.AAOS_MAKE_RUN
    ? "leave, then on the host: ANTHROPIC_API_KEY=sk-ant-… make run"
    : secret
      ? `printf %s "$ANTHROPIC_API_KEY" | aaosctl secret set ${secret}`
      : "name a key file in kernel.yaml: inference.providers.anthropic.api_key_file (docs/inference.md)";
  return [paint("yellow", "no model provider configured: ") + how];
}

function appendHistory(path: string, line: string) {
  try {
    appendFileSync(path, line.replace(/\n/g, " ") + "\n", { mode: 0o600 });
  } catch {
    // history is a comfort, not a duty
  }
}

/** [candidates, the word they replace] for readline */
export async function complete(client: RpcClient, line: string): Promise<[string[], string]> {
  const { words, trailingSpace } = splitWords(line);
  const word = trailingSpace || words.length === 0 ? "" : words[words.length - 1]!;
  const index = trailingSpace ? words.length : Math.max(0, words.length - 1);
  const pick = (cands: string[]) =>
    [[...new Set(cands)].filter((c) => c.startsWith(word)).sort(), word] as [string[], string];

  if (index === 0) return pick([...Object.keys(VERBS).filter((v) => v !== "console"), ...LEAVE]);
  const verb = VERBS[words[0]!];
  if (!verb) return [[], word];
  const options: Record<string, OptionSpec> = {
    ...(verb.params.options ?? {}),
    json: GLOBAL_OPTIONS.json!,
    output: GLOBAL_OPTIONS.output!,
    help: GLOBAL_OPTIONS.help!,
  };
  const byShort = (w: string) => Object.keys(options).find((o) => options[o]!.short === w.slice(1));
  if (word.startsWith("-")) return pick(Object.keys(options).map((o) => `--${o}`));

  // the value of an option: `audit --agent <Tab>`, `ps -o <Tab>`
  const prev = words[index - 1];
  const prevName = prev?.startsWith("--") ? prev.slice(2) : prev && /^-[^-]$/.test(prev) ? byShort(prev) : undefined;
  if (prevName !== undefined) {
    const spec = options[prevName];
    if (spec?.type === "string") {
      if (spec.choices) return pick(spec.choices);
      return spec.kind ? pick(await candidates(client, spec.kind, word, words)) : [[], word];
    }
  }

  // which positional this word is: count the earlier words that are not options or their values
  let pos = 0;
  for (let i = 1; i < index; i++) {
    const w = words[i]!;
    if (w.startsWith("-")) {
      const name = w.startsWith("--") ? w.slice(2) : byShort(w);
      if (name !== undefined && options[name]?.type === "string" && !w.includes("=")) i++;
      continue;
    }
    pos++;
  }
  const specs = verb.params.args;
  const spec: ArgSpec | undefined = specs[pos] ?? (specs.at(-1)?.rest ? specs.at(-1) : undefined);
  if (!spec) return [[], word];
  if (spec.choices) return pick(spec.choices);
  if (words[0] === "help") return pick(Object.keys(VERBS));
  return pick(await candidates(client, spec.kind, word, words));
}

async function candidates(client: RpcClient, kind: ArgKind, word: string, words: string[]): Promise<string[]> {
  const ask = <T>(method: string, params: unknown = {}) => client.call<T>(method, params, { timeoutMs: 2000 });
  switch (kind) {
    case "agent": {
      const { agents } = await ask<{ agents: AgentInfo[] }>("agent.list");
      return agents.map((a) => a.agent_id);
    }
    case "approval": {
      const { approvals } = await ask<{ approvals: ApprovalInfo[] }>("approval.list");
      return approvals.map((a) => a.id);
    }
    case "method":
      return [...KNOWN_METHODS];
    case "tool": {
      // `invoke AGENT TOOL`: the tools that agent may call, if it exists
      const agent = words[1];
      const { agents } = await ask<{ agents: AgentInfo[] }>("agent.list");
      const match = agents.filter((a) => a.agent_id.startsWith(agent ?? "\0"));
      const params = match.length === 1 ? { agent_id: match[0]!.agent_id } : {};
      const { tools } = await ask<{ tools: ToolDescription[] }>("tool.list", params);
      return tools.map((t) => t.name);
    }
    case "file":
      return fileCandidates(word);
    default:
      return [];
  }
}

function fileCandidates(word: string): string[] {
  const dir = word.endsWith("/") ? word : dirname(word);
  const prefix = word.endsWith("/") ? "" : basename(word);
  const base = dir === "." && !word.startsWith("./") ? "" : dir.endsWith("/") ? dir : dir + "/";
  try {
    if (!existsSync(dir || ".")) return [];
    return readdirSync(dir || ".")
      .filter((f) => f.startsWith(prefix) && !f.startsWith("."))
      .map((f) => {
        const full = base + f;
        try {
          return statSync(full).isDirectory() ? full + "/" : full;
        } catch {
          return full;
        }
      });
  } catch {
    return [];
  }
}
