// `aaosctl completion bash|zsh|fish`, generated from the verb table: the bash
// script is sourced in a real bash and its function driven through
// COMP_WORDS; the console's Tab completes every method after `call`, on a
// real pty against a real kernel.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { METHOD_NAMES } from "../../kernel/rpc/names.ts";
import { GLOBAL_OPTIONS } from "../../cli/args.ts";
import { complete } from "../../cli/console.ts";
import type { RpcClient } from "../../cli/client.ts";
import { VERBS } from "../../cli/verbs.ts";
import { cleanup, startKernel, type RunningKernel } from "../host/harness.ts";
import { aaosctl, MAIN } from "./run-cli.ts";
import { Keys, Terminal } from "./terminal.ts";

setDefaultTimeout(30_000);

let dir: string;
const scripts: Record<string, string> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "aaosctl-completion-"));
  for (const shell of ["bash", "zsh", "fish"]) {
    const r = await aaosctl(["completion", shell]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    scripts[shell] = r.stdout;
    writeFileSync(join(dir, `aaosctl.${shell}`), r.stdout);
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** what the bash completion offers for the words typed so far (the last one is being completed) */
async function bashComplete(...words: string[]): Promise<string[]> {
  const script = `source ${JSON.stringify(join(dir, "aaosctl.bash"))}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")})
COMP_CWORD=$((\${#COMP_WORDS[@]} - 1))
COMPREPLY=()
_aaosctl
printf '%s\\n' "\${COMPREPLY[@]}"`;
  const p = Bun.spawn(["bash", "--norc", "--noprofile", "-c", script], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  expect(err).toBe("");
  expect(code).toBe(0);
  return out.split("\n").filter(Boolean);
}

describe("aaosctl completion bash", () => {
  test("sources in a real bash and registers _aaosctl", async () => {
    const p = Bun.spawn(
      [
        "bash",
        "--norc",
        "--noprofile",
        "-c",
        `source <(${process.execPath} ${MAIN} completion bash); complete -p aaosctl`,
      ],
      {
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
    expect(await p.exited).toBe(0);
    expect(err).toBe("");
    expect(out.trim()).toBe("complete -F _aaosctl aaosctl");
  });

  test("verbs: st<TAB> offers status and stop; an empty word offers every verb", async () => {
    const st = (await bashComplete("aaosctl", "st")).sort();
    expect(st).toEqual(expect.arrayContaining(["status", "stop"]));
    expect(st).toEqual(
      Object.keys(VERBS)
        .filter((v) => v.startsWith("st"))
        .sort(),
    );
    expect((await bashComplete("aaosctl", "")).sort()).toEqual(Object.keys(VERBS).sort());
    // after a global option and its value
    expect(await bashComplete("aaosctl", "--socket", "/tmp/aaos.sock", "pin")).toEqual(["ping"]);
  });

  test("call agent.<TAB> offers the agent.* methods; call <TAB> every method", async () => {
    expect(await bashComplete("aaosctl", "call", "agent.")).toEqual(METHOD_NAMES.filter((m) => m.startsWith("agent.")));
    expect(await bashComplete("aaosctl", "call", "")).toEqual([...METHOD_NAMES]);
    expect(await bashComplete("aaosctl", "call", "system.ping", "")).toEqual([]);
  });

  test("options of the verb and the global ones, -o's formats, fixed choices", async () => {
    const audit = await bashComplete("aaosctl", "audit", "--");
    for (const o of [...Object.keys(VERBS.audit!.params.options!), ...Object.keys(GLOBAL_OPTIONS)])
      expect(audit).toContain(`--${o}`);
    expect(await bashComplete("aaosctl", "ps", "-o", "")).toEqual(["json", "yaml", "wide", "text"]);
    expect(await bashComplete("aaosctl", "ps", "--output", "y")).toEqual(["yaml"]);
    expect(await bashComplete("aaosctl", "completion", "")).toEqual(["bash", "zsh", "fish"]);
    expect(await bashComplete("aaosctl", "help", "sp")).toEqual(["spawn"]);
    // audit's first word is a choice, after an option that takes a value
    const choices = VERBS.audit!.params.args[0]!.choices!;
    expect(await bashComplete("aaosctl", "audit", "--kind", "agent.stop", "")).toEqual(choices);
  });
});

describe("aaosctl completion zsh and fish", () => {
  test("zsh: a #compdef script with every verb and method", async () => {
    const z = scripts.zsh!;
    expect(z.startsWith("#compdef aaosctl\n")).toBe(true);
    expect(z).toContain("compdef _aaosctl aaosctl");
    for (const v of Object.keys(VERBS)) expect(z).toContain(`"${v}:`);
    for (const m of METHOD_NAMES) expect(z).toContain(m);
    // zsh is not installed here everywhere: parse it when it is
    if (Bun.which("zsh")) {
      const p = Bun.spawn(["zsh", "-n", join(dir, "aaosctl.zsh")], { stderr: "pipe" });
      expect(await p.exited).toBe(0);
    }
    // the shared case arms are plain shell: bash parses the zsh script too
    const p = Bun.spawn(["bash", "-n", join(dir, "aaosctl.zsh")], { stderr: "pipe" });
    expect(await p.exited).toBe(0);
  });

  test("fish: one complete line per verb, option and choice", async () => {
    const lines = scripts.fish!.split("\n").filter((l) => l && !l.startsWith("#"));
    for (const l of lines) expect(l).toMatch(/^complete -c aaosctl( |$)/);
    for (const v of Object.keys(VERBS))
      expect(lines).toContainEqual(expect.stringContaining(`-n '__fish_use_subcommand' -a '${v}' -d `));
    expect(lines).toContainEqual(
      `complete -c aaosctl -n '__fish_seen_subcommand_from call' -a '${METHOD_NAMES.join(" ")}'`,
    );
    expect(lines).toContainEqual(expect.stringContaining("-s o -l output -x -a 'json yaml wide text'"));
    // single quotes balanced on every line
    for (const l of lines) expect(l.replace(/\\./g, "").split("'").length % 2).toBe(1);
    if (Bun.which("fish")) {
      const p = Bun.spawn(["fish", "-n", join(dir, "aaosctl.fish")], { stderr: "pipe" });
      expect(await p.exited).toBe(0);
    }
  });

  test("an unknown shell is a usage error", async () => {
    const r = await aaosctl(["completion", "tcsh"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("bash, zsh, fish");
  });
});

describe("the console completes `call` and -o", () => {
  const noKernel = {} as RpcClient;

  test("complete(): call <Tab> is every method, ps -o <Tab> the formats", async () => {
    expect(await complete(noKernel, "call ")).toEqual([[...METHOD_NAMES].sort(), ""]);
    expect(await complete(noKernel, "call memory.")).toEqual([
      METHOD_NAMES.filter((m) => m.startsWith("memory.")).sort(),
      "memory.",
    ]);
    expect(await complete(noKernel, "ps -o ")).toEqual([["json", "text", "wide", "yaml"], ""]);
    expect((await complete(noKernel, "ps --o"))[0]).toEqual(["--output"]);
  });

  describe("on a real pty", () => {
    let k: RunningKernel;
    let term: Terminal;
    let home: string;
    beforeAll(async () => {
      home = mkdtempSync(join(tmpdir(), "aaosctl-completion-console-"));
      k = await startKernel({ env: { ANTHROPIC_API_KEY: "sk-ant-api03-CLITEST-completion-00000" } });
      term = new Terminal([process.execPath, MAIN, "--socket", k.socket, "console"], {
        env: { AAOSCTL_HISTORY: join(home, "history") },
      });
      await term.waitFor("aaos>");
    });
    afterAll(async () => {
      term?.kill();
      await k?.stop();
      if (k) cleanup(k);
      rmSync(home, { recursive: true, force: true });
    });

    test("call <Tab><Tab> lists every method; a unique prefix completes", async () => {
      term.type("call " + Keys.tab);
      await Bun.sleep(200);
      term.type(Keys.tab);
      await term.waitFor((t) => METHOD_NAMES.every((m) => t.includes(m)));
      term.type(Keys.ctrlU);
      term.type("call web.t" + Keys.tab);
      await term.waitFor(() => term.screen.cursorLine() === "aaos> call web.tokens");
      term.type(Keys.ctrlU + "call sched" + Keys.tab);
      await term.waitFor(() => term.screen.cursorLine() === "aaos> call sched.status");
      term.type(Keys.enter);
      await term.waitFor(() => term.screen.cursorLine() === "aaos>");
    });
  });
});
