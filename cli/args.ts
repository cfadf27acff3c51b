// The command line: `aaosctl [global options] VERB [args] [options]`.
// Global options may also follow the verb (`aaosctl ps --json`). Parsing is
// node:util's parseArgs over the union of global and verb options; this file
// only finds the verb and checks the positional arguments against the verb's
// params, so every verb's usage line and --help come from its table entry.
import { parseArgs } from "node:util";
import { usageError } from "./exit.ts";

export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  /** placeholder in help: --reason TEXT */
  value?: string;
  help: string;
  /** what the value is, for completion */
  kind?: ArgKind;
  /** may be given more than once (the value is then a list) */
  multiple?: boolean;
  /** the values it takes, for checking and completion */
  choices?: string[];
}

/** what a positional argument is: drives completion in the console */
export type ArgKind = "agent" | "approval" | "method" | "tool" | "file" | "json" | "text" | "word" | "context";

export interface ArgSpec {
  name: string;
  kind: ArgKind;
  optional?: boolean;
  /** takes all remaining words (a message) */
  rest?: boolean;
  /** fixed choices, for completion and checking */
  choices?: string[];
}

export interface Params {
  args: ArgSpec[];
  options?: Record<string, OptionSpec>;
}

export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  socket: { type: "string", value: "PATH", help: "host-mode kernel's unix socket (env AAOS_SOCKET)" },
  serial: {
    type: "string",
    value: "PATH",
    help: "QEMU's serial chardev socket, as `make run` starts it (env AAOS_SERIAL)",
  },
  tty: { type: "string", value: "DEVICE", help: "real serial device, e.g. /dev/ttyUSB0 (env AAOS_TTY)" },
  baud: { type: "string", value: "N", help: "line speed for --tty (default 115200)" },
  context: {
    type: "string",
    value: "NAME",
    help: "a kernel named in the config file ($AAOSCONFIG or ~/.config/aaos/config.yaml; see aaosctl context ls)",
    kind: "context",
  },
  wait: {
    type: "string",
    value: "SECONDS",
    help: "how long to wait for the kernel to answer (default 10 for --socket, 60 for --serial/--tty; env AAOS_WAIT)",
  },
  output: {
    type: "string",
    short: "o",
    value: "FORMAT",
    help: "json, yaml (results for programs), wide (tables with more columns) or text (the default)",
    choices: ["json", "yaml", "wide", "text"],
  },
  json: { type: "boolean", help: "print results as JSON, for programs (the same as -o json)" },
  "no-color": { type: "boolean", help: "no colour even on a terminal (also NO_COLOR=1)" },
  help: { type: "boolean", short: "h", help: "show help (for a verb: aaosctl VERB --help)" },
  version: { type: "boolean", help: "print aaosctl's version" },
};

export interface ParsedCommand {
  /** undefined when only global options were given */
  verb?: string;
  args: string[];
  options: Record<string, string | boolean | string[] | undefined>;
  /**
   * present when the verb has an option of a global option's name (send
   * --wait): the global's value given before the verb, for connecting
   */
  shadowed?: Record<string, string | boolean>;
}

/** index of the verb: the first word that is neither an option nor a global option's value */
export function findVerb(argv: string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") return i + 1 < argv.length ? i + 1 : -1;
    if (!a.startsWith("-") || a === "-") return i;
    if (a.startsWith("--") && !a.includes("=") && GLOBAL_OPTIONS[a.slice(2)]?.type === "string") i++;
    else if (/^-[^-]$/.test(a) && Object.values(GLOBAL_OPTIONS).some((s) => s.short === a[1] && s.type === "string"))
      i++;
  }
  return -1;
}

/** how results are printed: -o FORMAT, --json (= -o json) */
export type OutputFormat = "text" | "json" | "yaml" | "wide";

/** the output format the options ask for; a usage error for an unknown one */
export function outputFormat(options: ParsedCommand["options"]): OutputFormat {
  const o = options.output;
  if (typeof o === "string") {
    const choices = GLOBAL_OPTIONS.output!.choices!;
    if (!choices.includes(o))
      throw usageError(`-o is one of ${choices.join(", ")}, not ${JSON.stringify(o)}`, "e.g. aaosctl ps -o wide");
    if (options.json === true && o !== "json") throw usageError(`--json and -o ${o} disagree; give one`);
    return o as OutputFormat;
  }
  return options.json === true ? "json" : "text";
}

/** the output format asked for in raw argv, for errors before the command line parses */
export function outputFormatOfArgv(argv: string[]): OutputFormat {
  let f: OutputFormat = "text";
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") break;
    const v =
      a === "--json"
        ? "json"
        : a === "-o" || a === "--output"
          ? argv[i + 1]
          : a.startsWith("--output=")
            ? a.slice(9)
            : a.startsWith("-o") && a.length > 2
              ? a.slice(2).replace(/^=/, "")
              : undefined;
    if (v === "json" || v === "yaml" || v === "wide" || v === "text") f = v;
  }
  return f;
}

export function toParseArgsOptions(specs: Record<string, OptionSpec>) {
  const out: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {};
  for (const [name, s] of Object.entries(specs))
    out[name] = {
      type: s.type,
      ...(s.short ? { short: s.short } : {}),
      ...(s.multiple ? { multiple: true } : {}),
    };
  return out;
}

/**
 * Split argv into verb, positional args and options. `params` is looked up
 * by verb name; an unknown verb is left to the caller (it has the table and
 * can suggest a near one).
 */
export function parseCommand(argv: string[], paramsOf: (verb: string) => Params | undefined): ParsedCommand {
  const vi = findVerb(argv);
  const verb = vi >= 0 ? argv[vi] : undefined;
  const params = verb !== undefined ? paramsOf(verb) : undefined;
  // before the verb a global option wins over a verb option of the same
  // name, after it the verb's (`aaosctl --wait 30 send A M --wait`)
  const before = vi >= 0 ? argv.slice(0, vi > 0 && argv[vi - 1] === "--" ? vi - 1 : vi) : argv;
  const after = vi >= 0 ? argv.slice(vi + 1) : [];
  const verbSpecs = params?.options ?? {};
  const parse = (args: string[], specs: Record<string, OptionSpec>) => {
    try {
      return parseArgs({ args, options: toParseArgsOptions(specs), allowPositionals: true, strict: true });
    } catch (e) {
      throw usageError(cleanParseError((e as Error).message, verb));
    }
  };
  const pre = parse(before, { ...verbSpecs, ...GLOBAL_OPTIONS });
  const post = parse(after, { ...GLOBAL_OPTIONS, ...verbSpecs });
  const options = { ...pre.values, ...post.values } as ParsedCommand["options"];
  const shadowed: Record<string, string | boolean> = {};
  for (const name of Object.keys(verbSpecs)) {
    if (!(name in GLOBAL_OPTIONS)) continue;
    const g = (pre.values as Record<string, unknown>)[name];
    if (typeof g === "string" || typeof g === "boolean") shadowed[name] = g;
    const v = (post.values as Record<string, unknown>)[name];
    if (v === undefined) delete options[name];
    else options[name] = v as string | boolean;
  }
  const parsed: ParsedCommand = { verb, args: [...pre.positionals, ...post.positionals], options };
  if (Object.keys(shadowed).length) parsed.shadowed = shadowed;
  return parsed;
}

function cleanParseError(msg: string, verb?: string): string {
  // parseArgs says: "Unknown option '--x'. To specify a positional argument starting with a '-', place it at the end of the command after '--', as in '-- \"--x\"'"
  const first = msg.split(". ")[0] ?? msg;
  return first.replace(/^Unknown option/, verb ? `${verb}: unknown option` : "unknown option");
}

/** check the count of positional args against the spec; returns them by name */
export function bindArgs(verb: string, specs: ArgSpec[], args: string[]): Record<string, string | undefined> {
  const bound: Record<string, string | undefined> = {};
  let i = 0;
  for (const s of specs) {
    if (s.rest) {
      const words = args.slice(i);
      i = args.length;
      if (!words.length && !s.optional)
        throw usageError(`${verb}: missing ${s.name}`, `usage: aaosctl ${usageLine(verb, specs)}`);
      bound[s.name] = words.length ? words.join(" ") : undefined;
      continue;
    }
    const v = args[i];
    if (v === undefined) {
      if (!s.optional) throw usageError(`${verb}: missing ${s.name}`, `usage: aaosctl ${usageLine(verb, specs)}`);
      continue;
    }
    if (s.choices && !s.choices.includes(v))
      throw usageError(`${verb}: ${s.name} is one of ${s.choices.join(", ")}, not ${JSON.stringify(v)}`);
    bound[s.name] = v;
    i++;
  }
  if (i < args.length)
    throw usageError(
      `${verb}: unexpected argument ${JSON.stringify(args[i])}`,
      `usage: aaosctl ${usageLine(verb, specs)}`,
    );
  return bound;
}

export function usageLine(verb: string, specs: ArgSpec[], options?: Record<string, OptionSpec>): string {
  const parts = [verb];
  for (const s of specs) {
    const name = s.choices ? s.choices.join("|") : s.name;
    const word = s.rest ? `${name}...` : name;
    parts.push(s.optional ? `[${word}]` : word);
  }
  if (options && Object.keys(options).length) parts.push("[options]");
  return parts.join(" ");
}

/** the help lines for a set of options, aligned */
export function optionLines(specs: Record<string, OptionSpec>): string[] {
  const left = Object.entries(specs).map(([name, s]) => {
    const short = s.short ? `-${s.short}, ` : "    ";
    return `  ${short}--${name}${s.type === "string" ? ` ${s.value ?? "VALUE"}` : ""}`;
  });
  const w = Math.max(0, ...left.map((l) => l.length));
  return Object.values(specs).map((s, i) => `${left[i]!.padEnd(w)}  ${s.help}`);
}

/** parse a JSON argument, with a usage error a person can act on */
export function parseJsonArg(what: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw usageError(
      `${what} is not valid JSON: ${(e as Error).message}`,
      `give one JSON object, e.g. {"path": "/data/x"} (in a shell, inside single quotes)`,
    );
  }
}

/** nearest word by edit distance, for "did you mean" */
export function nearest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = c.startsWith(word) ? 0 : editDistance(word, c);
    // a tie goes to the word of the typed length (a swap of two letters, "stauts": status, not stats)
    if (d < bestD || (d === bestD && best !== undefined && c.length === word.length && best.length !== word.length))
      [best, bestD] = [c, d];
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** optimal string alignment distance: an insertion, deletion, change or swap of two neighbours costs 1 */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * Split a console line into words like a shell would: whitespace separates,
 * '...' is literal, "..." allows \" and \\, a backslash escapes outside quotes.
 * Returns the words and whether a quote was left open (for completion).
 */
/** index just past the JSON object or array starting at `start`, or -1 when it is not closed */
function jsonEnd(line: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < line.length; i++) {
    const c = line[i]!;
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{" || c === "[") depth++;
    else if ((c === "}" || c === "]") && --depth === 0) return i + 1;
  }
  return -1;
}

export function splitWords(line: string): { words: string[]; open: boolean; trailingSpace: boolean } {
  const words: string[] = [];
  let cur = "";
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote === "'") {
      if (c === "'") quote = null;
      else cur += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === "\\" && (line[i + 1] === '"' || line[i + 1] === "\\")) cur += line[++i];
      else cur += c;
    } else if (!inWord && (c === "{" || c === "[")) {
      // the console is not a shell: a word that starts a JSON value is taken
      // verbatim up to its matching bracket, so `invoke a echo {"message":"hi"}` works
      const end = jsonEnd(line, i);
      if (end < 0) return { words: [...words, line.slice(i)], open: true, trailingSpace: false };
      words.push(line.slice(i, end));
      i = end - 1;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < line.length) {
      cur += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return { words, open: quote !== null, trailingSpace: !inWord && /\s$/.test(line) };
}
