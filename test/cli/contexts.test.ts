// Named contexts (a config file like a kubeconfig) and ps -w, against real
// host-mode kernels, each aaosctl run as its own process with a temporary
// XDG_CONFIG_HOME.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanup, startKernel, type RunningKernel } from "../host/harness.ts";
import { aaosctl, CliProcess } from "./run-cli.ts";

setDefaultTimeout(30_000);

const MODEL = "claude-haiku-4-5-20251001";
let a: RunningKernel;
let b: RunningKernel;
let home: string;
let configFile: string;

beforeAll(async () => {
  [a, b] = await Promise.all([
    startKernel({ manifests: { base: `name: base\nmodel: ${MODEL}\n` } }),
    startKernel({ manifests: { base: `name: base\nmodel: ${MODEL}\n` } }),
  ]);
  // tell the kernels apart: only b has an agent named only-on-b
  await b.client.call("agent.spawn", { manifest: `name: only-on-b\nmodel: ${MODEL}\n` });
  home = mkdtempSync(join(tmpdir(), "aaosctl-contexts-"));
  mkdirSync(join(home, "xdg", "aaos"), { recursive: true });
  configFile = join(home, "xdg", "aaos", "config.yaml");
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  if (a) cleanup(a);
  if (b) cleanup(b);
  rmSync(home, { recursive: true, force: true });
});

const env = () => ({ HOME: home, XDG_CONFIG_HOME: join(home, "xdg") });
const cli = (args: string[], extra: Record<string, string | undefined> = {}) =>
  aaosctl(args, { env: { ...env(), ...extra } });

function writeConfig(current = "a") {
  writeFileSync(
    configFile,
    `# the kernels of this test\ncurrent-context: ${current} # the default\ncontexts:\n` +
      `  a: {socket: ${a.socket}}\n  b:\n    socket: ${b.socket}\n  vm: {serial: out/serial.sock}\n`,
  );
}

describe("contexts", () => {
  test("--context b reaches the second kernel; current-context is the default; --socket wins", async () => {
    writeConfig("a");
    const viaB = await cli(["--context", "b", "ps"]);
    expect(viaB.code).toBe(0);
    expect(viaB.stdout).toContain("only-on-b");

    const current = await cli(["ps"]);
    expect(current.code).toBe(0);
    expect(current.stdout).not.toContain("only-on-b");

    const explicit = await cli(["--context", "a", "--socket", b.socket, "ps"]);
    expect(explicit.code).toBe(0);
    expect(explicit.stdout).toContain("only-on-b");

    // AAOS_SOCKET goes before current-context, --context before AAOS_SOCKET
    expect((await cli(["ps"], { AAOS_SOCKET: b.socket })).stdout).toContain("only-on-b");
    expect((await cli(["--context", "a", "ps"], { AAOS_SOCKET: b.socket })).stdout).not.toContain("only-on-b");

    // $AAOSCONFIG names another file
    const other = join(home, "other.yaml");
    writeFileSync(other, `current-context: b\ncontexts:\n  b: {socket: ${b.socket}}\n`);
    expect((await cli(["ps"], { AAOSCONFIG: other })).stdout).toContain("only-on-b");

    const missing = await cli(["--context", "nope", "ps"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("no such context");
    expect(missing.stderr).toContain("a, b, vm");
  });

  test("context ls marks the current one; context use rewrites only current-context", async () => {
    writeConfig("a");
    const ls = await cli(["context", "ls"]);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/\*\s+a\s+socket /);
    expect(ls.stdout).toMatch(/\n\s+b\s+socket /);
    expect(ls.stdout).toContain(`serial ${join(home, "xdg", "aaos", "out/serial.sock")}`);
    expect((await cli(["context", "ls", "-q"])).stdout).toBe("a\nb\nvm\n");
    const j = JSON.parse((await cli(["context", "ls", "--json"])).stdout);
    expect(j.current_context).toBe("a");
    expect(j.contexts[1]).toEqual({ name: "b", current: false, socket: b.socket });

    const before = readFileSync(configFile, "utf8");
    const use = await cli(["context", "use", "b"]);
    expect(use.code).toBe(0);
    const after = readFileSync(configFile, "utf8");
    expect(after).toBe(before.replace("current-context: a #", "current-context: b #"));
    expect(after).toContain("# the kernels of this test");
    expect(after).toContain("# the default");
    expect((await cli(["ps"])).stdout).toContain("only-on-b");

    const bad = await cli(["context", "use", "nope"]);
    expect(bad.code).toBe(2);
    expect(readFileSync(configFile, "utf8")).toBe(after);
  });

  test("a wrong file: the file, the line and exit 2", async () => {
    writeFileSync(configFile, `current-context: a\ncontexts:\n  a:\n    socket: ${a.socket}\n    sokcet: typo\n`);
    const r = await cli(["ps"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${configFile}: contexts.a.sokcet: unknown key "sokcet"`);
    expect(r.stderr).toContain("line 5, column 5");

    writeFileSync(configFile, `contexts:\n  a: {socket: x, serial: y}\n`);
    const two = await cli(["context", "ls"]);
    expect(two.code).toBe(2);
    expect(two.stderr).toContain("line 2");

    // an explicit target never reads the file
    writeFileSync(configFile, `contexts: [\n`);
    expect((await cli(["--socket", a.socket, "ps"])).code).toBe(0);
    const broken = await cli(["ps"]);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain(configFile);
    expect(broken.stderr).toMatch(/line \d+/);
  });

  test("--context completes from the file in bash", async () => {
    writeConfig("a");
    const script = join(home, "aaosctl.bash");
    writeFileSync(script, (await cli(["completion", "bash"])).stdout);
    const wrapper = join(home, "aaosctl");
    writeFileSync(
      wrapper,
      `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(join(import.meta.dir, "../../cli/main.ts"))} "$@"\n`,
      {
        mode: 0o755,
      },
    );
    const run = Bun.spawn(
      [
        "bash",
        "-c",
        `source ${script}\nCOMP_WORDS=(${JSON.stringify(wrapper)} --context '')\nCOMP_CWORD=2\n_aaosctl\nprintf '%s\\n' "\${COMPREPLY[@]}"`,
      ],
      { env: { ...process.env, ...env() }, stdout: "pipe", stderr: "pipe" },
    );
    const out = await new Response(run.stdout).text();
    await run.exited;
    expect(out.split("\n").filter(Boolean).sort()).toEqual(["a", "b", "vm"]);
  });
});

describe("ps -w", () => {
  test("into a pipe: a new table when an agent is spawned; SIGINT exits 0", async () => {
    const p = new CliProcess(["--socket", a.socket, "ps", "-w"], { env: env() });
    try {
      await p.waitFor(/AGENT ID|no agents/);
      const t0 = Date.now();
      await a.client.call("agent.spawn", { manifest: `name: watched-one\nmodel: ${MODEL}\n` });
      await p.waitFor("watched-one", 5000);
      // on the audit record, not the 2 s tick
      expect(Date.now() - t0).toBeLessThan(1800);
      expect(p.stdout).not.toContain("\x1b[");
      // the tables are separated by a blank line
      expect(p.stdout).toMatch(/\n\n[^\n]*AGENT ID[^\n]*\n(?:.*\n)*.*watched-one/);
      p.signal("SIGINT");
      expect(await p.exited).toBe(0);
    } finally {
      p.signal("SIGKILL");
    }
  });
});
