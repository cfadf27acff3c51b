// Named contexts, like talosconfig and kubeconfig: a YAML file that names
// the kernels an operator talks to, so that `aaosctl --context lab ps` (or,
// with current-context set, plain `aaosctl ps`) needs no --socket.
//
//   current-context: vm
//   contexts:
//     host: {socket: /tmp/aaos.sock}
//     vm: {serial: out/serial.sock}
//     board: {tty: /dev/ttyUSB0, baud: 115200}
//
// The file is $AAOSCONFIG, else ${XDG_CONFIG_HOME:-~/.config}/aaos/config.yaml.
// It is read strictly: an unknown key or a wrong value is a usage error
// naming the file, line and column. Relative paths are relative to the
// file's directory, `~/` is the home directory.
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { isMap, isScalar, parseDocument } from "yaml";
import { describe, PositionedYaml, type YamlPath } from "../kernel/manifest/yaml.ts";
import { usageError } from "./exit.ts";

type Env = Record<string, string | undefined>;

export type ContextEndpoint = { socket: string } | { serial: string } | { tty: string; baud?: number };

export interface ContextsFile {
  path: string;
  current?: string;
  /** in the file's order */
  contexts: { name: string; endpoint: ContextEndpoint }[];
}

/** where the config file is: $AAOSCONFIG, else ${XDG_CONFIG_HOME:-~/.config}/aaos/config.yaml */
export function configPath(env: Env = process.env): string {
  if (env.AAOSCONFIG) return env.AAOSCONFIG;
  const home = env.HOME || homedir();
  const xdg = env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : join(home, ".config");
  return join(xdg, "aaos", "config.yaml");
}

/** the config file, or undefined when there is none; a usage error (file:line) when it is wrong */
export function loadContexts(env: Env = process.env): ContextsFile | undefined {
  const path = configPath(env);
  if (!existsSync(path)) return undefined;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw usageError(`${path}: cannot read it: ${(e as Error).message}`);
  }
  return parseContexts(path, text, env);
}

const ENDPOINT_KEYS = ["socket", "serial", "tty"] as const;

export function parseContexts(path: string, text: string, env: Env = process.env): ContextsFile {
  const parsed = PositionedYaml.parse(text);
  if ("error" in parsed) throw usageError(describe(path, parsed.error));
  const { yaml, value } = parsed;
  const bad = (p: YamlPath, message: string): never => {
    throw usageError(describe(path, yaml.at(p, message)), "see docs/aaosctl.md, Contexts");
  };
  const badKey = (p: YamlPath, key: string, message: string): never => {
    throw usageError(describe(path, yaml.atKey(p, key, message)), "see docs/aaosctl.md, Contexts");
  };
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  if (value === null || value === undefined) return { path, contexts: [] };
  if (!isObj(value)) return bad([], "the file is a mapping with current-context and contexts");
  for (const k of Object.keys(value))
    if (k !== "current-context" && k !== "contexts")
      badKey([], k, `unknown key ${JSON.stringify(k)} (the keys are current-context and contexts)`);
  const cur = value["current-context"];
  if (cur !== undefined && cur !== null && typeof cur !== "string")
    bad(["current-context"], "current-context is a context's name");
  const raw = value.contexts ?? {};
  if (!isObj(raw)) bad(["contexts"], "contexts maps each name to {socket: PATH}, {serial: PATH} or {tty: DEVICE}");
  const base = dirname(resolve(path));
  const home = env.HOME || homedir();
  const fix = (p: string) => (p === "~" ? home : p.startsWith("~/") ? join(home, p.slice(2)) : resolve(base, p));
  const contexts: ContextsFile["contexts"] = [];
  for (const [name, entry] of Object.entries(raw as Record<string, unknown>)) {
    const at: YamlPath = ["contexts", name];
    if (!isObj(entry)) bad(at, `context ${name} is {socket: PATH}, {serial: PATH} or {tty: DEVICE, baud: N}`);
    const e = entry as Record<string, unknown>;
    for (const k of Object.keys(e))
      if (!(ENDPOINT_KEYS as readonly string[]).includes(k) && k !== "baud")
        badKey(at, k, `unknown key ${JSON.stringify(k)} (a context has one of socket, serial, tty; baud with tty)`);
    const given = ENDPOINT_KEYS.filter((k) => e[k] !== undefined);
    if (given.length !== 1)
      bad(
        at,
        given.length
          ? `context ${name} has ${given.join(" and ")}: give only one`
          : `context ${name} has none of socket, serial, tty`,
      );
    const kind = given[0]!;
    const p = e[kind];
    if (typeof p !== "string" || p === "") bad([...at, kind], `${kind} is a path`);
    if (e.baud !== undefined && kind !== "tty") badKey(at, "baud", "baud goes with tty only");
    if (e.baud !== undefined && (typeof e.baud !== "number" || !Number.isInteger(e.baud) || e.baud <= 0))
      bad([...at, "baud"], "baud is a positive whole number");
    const endpoint: ContextEndpoint =
      kind === "tty"
        ? { tty: p as string, ...(e.baud !== undefined ? { baud: e.baud as number } : {}) }
        : kind === "socket"
          ? { socket: fix(p as string) }
          : { serial: fix(p as string) };
    contexts.push({ name, endpoint });
  }
  const current = typeof cur === "string" ? cur : undefined;
  if (current !== undefined && !contexts.some((c) => c.name === current))
    bad(["current-context"], `current-context ${JSON.stringify(current)} is not one of the contexts`);
  return { path, current, contexts };
}

/** the named context's endpoint; a usage error when there is no file or no such context */
export function contextEndpoint(name: string, env: Env = process.env): ContextEndpoint {
  const file = loadContexts(env);
  if (!file) throw usageError(`--context ${name}: there is no config file ${configPath(env)}`, CONFIG_HINT);
  const c = file.contexts.find((c) => c.name === name);
  if (!c)
    throw usageError(
      `--context ${name}: no such context in ${file.path}`,
      file.contexts.length ? `the contexts: ${file.contexts.map((c) => c.name).join(", ")}` : CONFIG_HINT,
    );
  return c.endpoint;
}

/** the current context's endpoint, when the file names one */
export function currentEndpoint(env: Env = process.env): { name: string; endpoint: ContextEndpoint } | undefined {
  const file = loadContexts(env);
  if (!file?.current) return undefined;
  const c = file.contexts.find((c) => c.name === file.current)!;
  return { name: c.name, endpoint: c.endpoint };
}

export const CONFIG_HINT = "a config file names kernels: see docs/aaosctl.md, Contexts";

export function describeEndpoint(e: ContextEndpoint): string {
  if ("socket" in e) return `socket ${e.socket}`;
  if ("serial" in e) return `serial ${e.serial}`;
  return `tty ${e.tty}${e.baud !== undefined ? ` at ${e.baud} baud` : ""}`;
}

/**
 * Make NAME the current context: only current-context changes in the file;
 * its comments, order and layout stay as they were (the yaml Document API).
 */
export function useContext(name: string, env: Env = process.env): ContextsFile {
  const file = loadContexts(env);
  if (!file) throw usageError(`there is no config file ${configPath(env)}`, CONFIG_HINT);
  if (!file.contexts.some((c) => c.name === name))
    throw usageError(
      `no context ${JSON.stringify(name)} in ${file.path}`,
      file.contexts.length ? `the contexts: ${file.contexts.map((c) => c.name).join(", ")}` : CONFIG_HINT,
    );
  const text = readFileSync(file.path, "utf8");
  const doc = parseDocument(text);
  let out: string | undefined;
  if (isMap(doc.contents)) {
    const pair = doc.contents.items.find((p) => isScalar(p.key) && p.key.value === "current-context");
    // the value's own bytes replaced, the rest of the file byte for byte
    if (pair && isScalar(pair.value) && pair.value.range) {
      const [from, to] = pair.value.range;
      const word = /^[A-Za-z0-9_][A-Za-z0-9_.\/-]*$/.test(name) ? name : JSON.stringify(name);
      out = text.slice(0, from) + word + text.slice(to);
    } else if (!pair && !doc.contents.flow && isScalar(doc.contents.items[0]?.key) && doc.contents.items[0].key.range) {
      // a new first line of the mapping, under the file's opening comments
      const at = doc.contents.items[0].key.range[0];
      const word = /^[A-Za-z0-9_][A-Za-z0-9_.\/-]*$/.test(name) ? name : JSON.stringify(name);
      out = `${text.slice(0, at)}current-context: ${word}\n${text.slice(at)}`;
    }
  }
  if (out === undefined) {
    doc.set("current-context", name);
    out = doc.toString();
  }
  // write beside it, then rename: a crash never leaves half a file
  const tmp = `${file.path}.${process.pid}.tmp`;
  writeFileSync(tmp, out);
  renameSync(tmp, file.path);
  return { ...file, current: name };
}
