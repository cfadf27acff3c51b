// `aaosctl completion bash|zsh|fish`: shell completion generated from the
// verb table and the global options, so that it cannot drift from what the
// parser accepts. Verbs, their options, option values with fixed choices
// (-o json|yaml|wide), fixed positional choices (audit export, memory
// search), file arguments, and for `call` the contract's method names
// (kernel/rpc/names.ts). Agent ids and approval ids are not completed by the
// shell (that needs the kernel); the console completes them. Context names
// (--context, context use) come from `aaosctl context ls -q` as you type.
import { GLOBAL_OPTIONS, type ArgSpec, type OptionSpec } from "./args.ts";
import { METHOD_NAMES } from "../kernel/rpc/names.ts";

export const SHELLS = ["bash", "zsh", "fish"] as const;
export type Shell = (typeof SHELLS)[number];

/** the part of a verb the completion needs (a Verb from cli/verbs.ts is one) */
export interface CompletableVerb {
  summary: string;
  params: { args: ArgSpec[]; options?: Record<string, OptionSpec> };
}

/** what a word completes to: a word list, files, or nothing */
type Reply = { words: string[] } | "files" | "contexts" | "none";

function argReply(verb: string, a: ArgSpec, verbs: string[]): Reply {
  if (a.choices) return { words: a.choices };
  if (verb === "help") return { words: verbs };
  if (a.kind === "method") return { words: [...METHOD_NAMES] };
  if (a.kind === "file") return "files";
  if (a.kind === "context") return "contexts";
  return "none";
}

function optionReply(o: OptionSpec): Reply {
  if (o.choices) return { words: o.choices };
  if (o.kind === "method") return { words: [...METHOD_NAMES] };
  if (o.kind === "file") return "files";
  if (o.kind === "context") return "contexts";
  return "none";
}

/** the spellings of an option: --name and -s */
function spellings(name: string, o: OptionSpec): string[] {
  return [`--${name}`, ...(o.short ? [`-${o.short}`] : [])];
}

/** a Reply as the shell scripts' spec string: w:WORDS, f, c (contexts), n */
function spec(r: Reply): string {
  return r === "files" ? "f" : r === "contexts" ? "c" : r === "none" ? "n" : `w:${r.words.join(" ")}`;
}

/** a word for a shell script, in double quotes (the table's names and choices are plain words) */
function dq(s: string): string {
  return `"${s.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`;
}

interface Plan {
  verbs: string[];
  /** per verb (and "" before the verb): options, value options' specs, positional specs, last one takes the rest */
  scopes: { verb: string; flags: string[]; values: [string, string][]; args: string[]; rest: boolean }[];
}

function plan(VERBS: Record<string, CompletableVerb>): Plan {
  const verbs = Object.keys(VERBS);
  const scope = (verb: string, options: Record<string, OptionSpec>, args: ArgSpec[]) => ({
    verb,
    flags: Object.entries(options).flatMap(([n, o]) => spellings(n, o)),
    values: Object.entries(options)
      .filter(([, o]) => o.type === "string")
      .flatMap(([n, o]) => spellings(n, o).map((s) => [s, spec(optionReply(o))] as [string, string])),
    args: args.map((a) => spec(argReply(verb, a, verbs))),
    rest: Boolean(args.at(-1)?.rest),
  });
  return {
    verbs,
    scopes: [
      scope("", GLOBAL_OPTIONS, []),
      ...verbs.map((v) => scope(v, { ...GLOBAL_OPTIONS, ...(VERBS[v]!.params.options ?? {}) }, VERBS[v]!.params.args)),
    ],
  };
}

/** the case arms both bash and zsh read: `verb) flags=...; vals=(...); args=(...); rest=...;;` */
function caseArms(p: Plan): string {
  return p.scopes
    .map((s) =>
      [
        `    ${s.verb === "" ? '""' : dq(s.verb)})`,
        `      flags=${dq(s.flags.join(" "))}`,
        `      vals=(${s.values.map(([o, r]) => dq(`${o}=${r}`)).join(" ")})`,
        `      args=(${s.args.map(dq).join(" ")})`,
        `      rest=${s.rest ? "1" : '""'}`,
        "      ;;",
      ].join("\n"),
    )
    .join("\n");
}

/** the options that take a value anywhere, for finding the verb: `aaosctl --socket S ps` */
function globalValueOptions(): string[] {
  return Object.entries(GLOBAL_OPTIONS)
    .filter(([, o]) => o.type === "string")
    .flatMap(([n, o]) => spellings(n, o));
}

export function bashScript(VERBS: Record<string, CompletableVerb>): string {
  const p = plan(VERBS);
  return `# aaosctl completion for bash, generated from aaosctl's verb table.
# Load it now:      source <(aaosctl completion bash)
# or for good:      aaosctl completion bash > ~/.local/share/bash-completion/completions/aaosctl

_aaosctl_reply() {
  case $1 in
    w:*) COMPREPLY=($(compgen -W "\${1#w:}" -- "$cur")) ;;
    f) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")) ;;
    c) COMPREPLY=($(compgen -W "$("\${COMP_WORDS[0]}" context ls -q 2>/dev/null)" -- "$cur")) ;;
    *) COMPREPLY=() ;;
  esac
}

_aaosctl() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=
  ((COMP_CWORD > 0)) && prev=\${COMP_WORDS[COMP_CWORD-1]}
  local verbs=${dq(p.verbs.join(" "))}
  local i j w v verb="" vi=0 flags rest pos=0
  local -a vals args
  # the verb: the first word that is neither an option nor a global option's value
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    case $w in
      ${globalValueOptions().join("|")}) ((i++)) ;;
      -*) ;;
      *) verb=$w; vi=$i; break ;;
    esac
  done
  case $verb in
${caseArms(p)}
    *) return 0 ;;
  esac
  if [[ $prev == -* ]]; then
    for v in "\${vals[@]}"; do
      if [[ \${v%%=*} == "$prev" ]]; then _aaosctl_reply "\${v#*=}"; return 0; fi
    done
  fi
  if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "$flags" -- "$cur")); return 0; fi
  if [[ -z $verb ]]; then COMPREPLY=($(compgen -W "$verbs" -- "$cur")); return 0; fi
  # which positional argument this word is
  for ((j = vi + 1; j < COMP_CWORD; j++)); do
    w=\${COMP_WORDS[j]}
    if [[ $w == -* ]]; then
      for v in "\${vals[@]}"; do
        if [[ \${v%%=*} == "$w" ]]; then ((j++)); break; fi
      done
      continue
    fi
    ((pos++))
  done
  if ((pos >= \${#args[@]})); then
    [[ -n $rest ]] || return 0
    pos=$((\${#args[@]} - 1))
  fi
  _aaosctl_reply "\${args[pos]}"
}

complete -F _aaosctl aaosctl
`;
}

export function zshScript(VERBS: Record<string, CompletableVerb>): string {
  const p = plan(VERBS);
  const summaries = p.verbs.map((v) => dq(`${v}:${VERBS[v]!.summary.replace(/:/g, "\\:")}`)).join(" \\\n    ");
  return `#compdef aaosctl
# aaosctl completion for zsh, generated from aaosctl's verb table.
# Load it now:      source <(aaosctl completion zsh)
# or for good:      aaosctl completion zsh > "\${fpath[1]}/_aaosctl"   (then compinit)

_aaosctl_reply() {
  case $1 in
    w:*) compadd -- \${=\${1#w:}} ;;
    f) _files ;;
    c) compadd -- \${(f)"$(\${words[1]} context ls -q 2>/dev/null)"} ;;
  esac
}

_aaosctl() {
  local cur=\${words[CURRENT]} prev=\${words[CURRENT-1]}
  local i j w v verb="" vi=0 flags rest pos=0
  local -a vals args verbs
  verbs=(
    ${summaries}
  )
  for ((i = 2; i < CURRENT; i++)); do
    w=\${words[i]}
    case $w in
      ${globalValueOptions().join("|")}) ((i++)) ;;
      -*) ;;
      *) verb=$w; vi=$i; break ;;
    esac
  done
  case $verb in
${caseArms(p)}
    *) return 0 ;;
  esac
  if [[ $prev == -* ]]; then
    for v in "\${vals[@]}"; do
      if [[ \${v%%=*} == "$prev" ]]; then _aaosctl_reply "\${v#*=}"; return 0; fi
    done
  fi
  if [[ $cur == -* ]]; then compadd -- \${=flags}; return 0; fi
  if [[ -z $verb ]]; then _describe -t verbs 'aaosctl verb' verbs; return 0; fi
  for ((j = vi + 1; j < CURRENT; j++)); do
    w=\${words[j]}
    if [[ $w == -* ]]; then
      for v in "\${vals[@]}"; do
        if [[ \${v%%=*} == "$w" ]]; then ((j++)); break; fi
      done
      continue
    fi
    ((pos++))
  done
  if ((pos >= \${#args})); then
    [[ -n $rest ]] || return 0
    pos=$((\${#args} - 1))
  fi
  _aaosctl_reply "\${args[pos+1]}"
}

if [[ \${funcstack[1]} == _aaosctl ]]; then
  _aaosctl "$@"
else
  compdef _aaosctl aaosctl
fi
`;
}

/** a word in single quotes for fish */
function sq(s: string): string {
  return `'${s.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

export function fishScript(VERBS: Record<string, CompletableVerb>): string {
  const verbs = Object.keys(VERBS);
  const lines = [
    "# aaosctl completion for fish, generated from aaosctl's verb table.",
    "# Load it now:      aaosctl completion fish | source",
    "# or for good:      aaosctl completion fish > ~/.config/fish/completions/aaosctl.fish",
    "",
    "complete -c aaosctl -f",
  ];
  const option = (cond: string | null, name: string, o: OptionSpec) => {
    const parts = ["complete -c aaosctl"];
    if (cond) parts.push("-n", sq(cond));
    if (o.short) parts.push("-s", o.short);
    parts.push("-l", name);
    if (o.type === "string") {
      const r = optionReply(o);
      if (r === "files") parts.push("-r", "-F");
      else if (r === "contexts") parts.push("-x", "-a", sq("(aaosctl context ls -q 2>/dev/null)"));
      else if (r === "none") parts.push("-x");
      else parts.push("-x", "-a", sq(r.words.join(" ")));
    }
    parts.push("-d", sq(o.help));
    return parts.join(" ");
  };
  for (const [n, o] of Object.entries(GLOBAL_OPTIONS)) lines.push(option(null, n, o));
  for (const v of verbs)
    lines.push(`complete -c aaosctl -n '__fish_use_subcommand' -a ${sq(v)} -d ${sq(VERBS[v]!.summary)}`);
  for (const v of verbs) {
    const cond = `__fish_seen_subcommand_from ${v}`;
    for (const [n, o] of Object.entries(VERBS[v]!.params.options ?? {})) lines.push(option(cond, n, o));
    // positional words: choices, methods, verbs (help) and files, wherever they stand
    for (const a of VERBS[v]!.params.args) {
      const r = argReply(v, a, verbs);
      if (r === "files") lines.push(`complete -c aaosctl -n ${sq(cond)} -F`);
      else if (r === "contexts")
        lines.push(`complete -c aaosctl -n ${sq(cond)} -a ${sq("(aaosctl context ls -q 2>/dev/null)")}`);
      else if (r !== "none") lines.push(`complete -c aaosctl -n ${sq(cond)} -a ${sq(r.words.join(" "))}`);
    }
  }
  return lines.join("\n") + "\n";
}

export function completionScript(shell: Shell, VERBS: Record<string, CompletableVerb>): string {
  return shell === "bash" ? bashScript(VERBS) : shell === "zsh" ? zshScript(VERBS) : fishScript(VERBS);
}
