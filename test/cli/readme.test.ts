// The README's host-mode commands, run as written. The blocks are read from
// README.md at test time (the ```sh blocks under "## Host mode"), so editing
// the README is what this tests: the first block starts the kernel, each line
// of the second runs in a shell from the repository root, the console under a
// real pty. The README says its socket path and data directory are examples
// to choose, so, and only so, /tmp/aaos.sock and /tmp/aaos-data become paths
// in a fresh temp dir (a developer's own kernel or data there stays untouched).
// HOME is a temp dir too (the console's history, aaosctl's config file).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Keys, Terminal } from "./terminal.ts";

const ROOT = resolve(import.meta.dir, "../..");

/** the ```sh blocks of README.md's "## Host mode" section */
export function hostModeBlocks(readme: string): string[][] {
  const start = readme.indexOf("\n## Host mode\n");
  if (start < 0) throw new Error('README.md has no "## Host mode" section');
  const rest = readme.slice(start + 1);
  const next = rest.indexOf("\n## ", 1);
  const section = next < 0 ? rest : rest.slice(0, next);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) =>
    m[1]!
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#")),
  );
}

const blocks = hostModeBlocks(readFileSync(join(ROOT, "README.md"), "utf8"));
const dir = mkdtempSync(join(tmpdir(), "aaos-readme-"));
const SOCK = join(dir, "aaos.sock");
const DATA = join(dir, "aaos-data");
const HOME = join(dir, "home");
const choose = (line: string) => line.replaceAll("/tmp/aaos.sock", SOCK).replaceAll("/tmp/aaos-data", DATA);

const env: Record<string, string> = {};
for (const [k, v] of Object.entries({
  ...process.env,
  HOME,
  AAOS_SOCKET: undefined,
  AAOS_SERIAL: undefined,
  AAOS_TTY: undefined,
  AAOS_WAIT: undefined,
  AAOSCONFIG: undefined,
  AAOSCTL_HISTORY: undefined,
  NO_COLOR: undefined,
  FORCE_COLOR: undefined,
}))
  if (v !== undefined) env[k] = v;

/** what each command must print: the first pattern whose `when` matches the command line */
const EXPECT: { when: RegExp; out: (stdout: string) => void }[] = [
  { when: /^make aaosctl$/, out: () => expect(existsSync(join(ROOT, "out/aaosctl"))).toBe(true) },
  { when: / info$/, out: (o) => expect(o).toMatch(/^mode:\s+host$/m) },
  {
    when: / apply -f -$/,
    out: (o) => expect(o).toContain("manifest assistant stored (state/manifests/assistant.yaml)"),
  },
  {
    when: / spawn assistant$/,
    out: (o) => {
      expect(o).toMatch(/^spawned assistant ag-[0-9a-f]{16}$/m);
      // the stored copy's grants: the host-mode agents' area, not /data/files
      expect(o).toContain(`capabilities: file_read: ${DATA}/files/*, file_write: ${DATA}/files/*`);
    },
  },
  {
    when: / invoke assistant file_list /,
    out: (o) => expect(JSON.parse(o)).toEqual({ path: `${DATA}/files`, entries: [], truncated: false }),
  },
  { when: / shutdown(\s|$)/, out: (o) => expect(o).toContain("powering off") },
];

let kernel: ReturnType<typeof Bun.spawn> | undefined;
let kernelLog = "";

async function until(what: () => boolean, ms: number, why: string) {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error(`${why}; kernel output:\n${kernelLog}`);
    await Bun.sleep(50);
  }
}

beforeAll(async () => {
  expect(blocks.length).toBe(2);
  expect(blocks[0]!.length).toBe(1);
  const line = blocks[0]![0]!;
  expect(line).toStartWith("node_modules/.bin/bun kernel/main.ts ");
  // exec: the kernel is the shell's process, so stopping it stops the kernel
  kernel = Bun.spawn(["sh", "-c", `exec ${choose(line)}`], {
    cwd: ROOT,
    env,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  for (const s of [kernel.stdout, kernel.stderr] as ReadableStream<Uint8Array>[])
    void (async () => {
      const d = new TextDecoder();
      for await (const c of s) kernelLog += d.decode(c, { stream: true });
    })();
  await until(() => existsSync(SOCK), 30_000, `no socket at ${SOCK}`);
}, 40_000);

afterAll(async () => {
  if (kernel && kernel.exitCode === null) {
    kernel.kill("SIGKILL");
    await kernel.exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe("README.md, Host mode, as written", () => {
  test("the kernel line starts a host-mode kernel on the chosen socket", () => {
    expect(kernel!.exitCode).toBeNull();
  });

  for (const raw of blocks[1] ?? []) {
    const line = raw.replace(/\s+#.*$/, "");
    test(
      line,
      async () => {
        if (/ console$/.test(line)) {
          const t = new Terminal(["sh", "-c", choose(raw)], { cwd: ROOT, env });
          try {
            await t.waitFor("aaos>", 20_000);
            t.line("ps");
            await t.waitFor(/ag-[0-9a-f]{16}\s+assistant\s+ready/, 10_000);
            t.type(Keys.ctrlD);
            expect(await t.exited).toBe(0);
          } finally {
            t.kill();
          }
          return;
        }
        const want = EXPECT.find((e) => e.when.test(line));
        if (!want) throw new Error(`README host-mode line with no expected output in this test: ${line}`);
        const p = Bun.spawn(["sh", "-c", choose(raw)], {
          cwd: ROOT,
          env,
          stdin: "ignore",
          stdout: "pipe",
          stderr: "pipe",
        });
        const [stdout, stderr, code] = await Promise.all([
          new Response(p.stdout).text(),
          new Response(p.stderr).text(),
          p.exited,
        ]);
        if (code !== 0) throw new Error(`exit ${code}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
        want.out(stdout);
        if (/ shutdown(\s|$)/.test(line)) {
          expect(await kernel!.exited).toBe(0);
          expect(existsSync(SOCK)).toBe(false);
        }
      },
      /^make /.test(line) ? 180_000 : 30_000,
    );
  }

  test("the README ends by stopping the kernel", () => {
    expect(blocks[1]!.at(-1)).toMatch(/ shutdown(\s|#|$)/);
  });
});
