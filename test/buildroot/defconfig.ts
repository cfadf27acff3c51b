// Helpers for the Buildroot checks: read a Kconfig defconfig/.config into
// symbol → value, and resolve our $(BR2_EXTERNAL_AAOS_PATH) references.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const REPO = resolve(import.meta.dir, "../..");
export const EXTERNAL = join(REPO, "buildroot");
export const DEFCONFIG_NAME = "aaos_x86_64_defconfig";
export const DEFCONFIG = join(EXTERNAL, "configs", DEFCONFIG_NAME);

/** value as written after '=' (strings keep their quotes); unset symbols map to "n" */
export type Symbols = Map<string, string>;

export interface Line {
  symbol: string;
  value: string; // "n" for "# SYM is not set"
  text: string;
  line: number;
}

/** every BR2_ line of a defconfig/.config, in order (set and "is not set") */
export function parseConfig(text: string): Line[] {
  const out: Line[] = [];
  text.split("\n").forEach((raw, i) => {
    const t = raw.trim();
    let m = /^(BR2_[A-Za-z0-9_]+)=(.*)$/.exec(t);
    if (m) return void out.push({ symbol: m[1]!, value: m[2]!, text: t, line: i + 1 });
    m = /^# (BR2_[A-Za-z0-9_]+) is not set$/.exec(t);
    if (m) out.push({ symbol: m[1]!, value: "n", text: t, line: i + 1 });
  });
  return out;
}

export function symbols(text: string): Symbols {
  return new Map(parseConfig(text).map((l) => [l.symbol, l.value]));
}

export function readDefconfig(): Line[] {
  return parseConfig(readFileSync(DEFCONFIG, "utf8"));
}

/** a quoted Kconfig string value → its content */
export function unquote(v: string): string {
  if (!v.startsWith('"') || !v.endsWith('"')) throw new Error(`not a string value: ${v}`);
  return v.slice(1, -1).replace(/\\(.)/g, "$1");
}

/** expand $(BR2_EXTERNAL_AAOS_PATH) as Buildroot's make does */
export function expandExternal(v: string, external = EXTERNAL): string {
  return v.replaceAll("$(BR2_EXTERNAL_AAOS_PATH)", external);
}

/**
 * Compare what we asked for with what Kconfig made of it. A symbol set in the
 * defconfig but absent or different in .config is reported; "# X is not set"
 * fails when .config has X set to anything.
 */
export function compare(wanted: Line[], got: Symbols): string[] {
  const bad: string[] = [];
  for (const w of wanted) {
    const g = got.get(w.symbol);
    if (w.value === "n") {
      if (g !== undefined && g !== "n")
        bad.push(`${w.symbol}: defconfig line ${w.line} wants it unset, .config has ${w.symbol}=${g}`);
    } else if (g === undefined) {
      bad.push(
        `${w.symbol}: defconfig line ${w.line} sets ${w.text}, .config does not have the symbol (dropped: unknown or unmet dependency)`,
      );
    } else if (g !== w.value) {
      bad.push(
        `${w.symbol}: defconfig line ${w.line} sets ${w.value}, .config has ${g === "n" ? "it unset" : g} (changed)`,
      );
    }
  }
  return bad;
}
