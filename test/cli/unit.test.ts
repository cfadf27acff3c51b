// aaosctl's pure parts: argument parsing, target selection, formatting,
// exit-code mapping, help text generated from the verb table.
import { describe, expect, test } from "bun:test";
import { ConnectionLost, RpcClient, RpcError, type ByteStream } from "../../cli/client.ts";
import { ErrorCode } from "../../kernel/errors.ts";
import { METHOD_NAMES } from "../../kernel/rpc/methods.ts";
import { bindArgs, findVerb, nearest, parseCommand, splitWords } from "../../cli/args.ts";
import { targetFrom } from "../../cli/connect.ts";
import { CliError, ExitCode, exitCodeFor } from "../../cli/exit.ts";
import {
  formatApprovalRequest,
  formatAuditEvent,
  formatDuration,
  formatError,
  formatOutputEvent,
  keyValues,
  painter,
  stripAnsi,
  table,
  timestamp,
} from "../../cli/format.ts";
import { globalHelp, verbHelp } from "../../cli/help.ts";
import { waitMs } from "../../cli/main.ts";
import { Output } from "../../cli/output.ts";
import { formatLogLine, KNOWN_METHODS, paramsFromPairs, parseTimeout, VERBS } from "../../cli/verbs.ts";

const plain = painter(false);
const paramsOf = (v: string) => VERBS[v]?.params;

function exitOf(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    return exitCodeFor(e);
  }
  return 0;
}

describe("command line", () => {
  test("global options before the verb, with values, are skipped to find it", () => {
    expect(findVerb(["--socket", "/tmp/k.sock", "--json", "ps"])).toBe(3);
    expect(findVerb(["--socket=/tmp/k.sock", "ps"])).toBe(1);
    expect(findVerb(["--json"])).toBe(-1);
  });

  test("options may follow the verb; verb options and global ones mix", () => {
    const p = parseCommand(["deny", "ap-1", "--reason", "not today", "--json", "--socket", "/s"], paramsOf);
    expect(p).toEqual({ verb: "deny", args: ["ap-1"], options: { reason: "not today", json: true, socket: "/s" } });
  });

  test("a verb option of a global's name (send --wait) is the verb's after it, the global's before it", () => {
    const p = parseCommand(["--wait", "30", "send", "a", "hi", "--wait", "--json"], paramsOf);
    expect(p).toEqual({
      verb: "send",
      args: ["a", "hi"],
      options: { wait: true, json: true },
      shadowed: { wait: "30" },
    });
    const q = parseCommand(["send", "a", "hi"], paramsOf);
    expect(q).toEqual({ verb: "send", args: ["a", "hi"], options: {} });
    const r = parseCommand(["call-agent", "a", "m", "-p", "x=1", "--param", "y=[2]"], paramsOf);
    expect(r.options.param).toEqual(["x=1", "y=[2]"]);
  });

  test("call-agent: --param values are JSON when they parse, else text; --timeout takes durations", () => {
    expect(paramsFromPairs(["city=Oslo", "days=3", "ok=true", "ids=[1,2]", "code=007", "eq=a=b"])).toEqual({
      city: "Oslo",
      days: 3,
      ok: true,
      ids: [1, 2],
      code: "007",
      eq: "a=b",
    });
    expect(exitOf(() => paramsFromPairs(["=x"]))).toBe(ExitCode.usage);
    expect(exitOf(() => paramsFromPairs(["a=1", "a=2"]))).toBe(ExitCode.usage);
    expect(parseTimeout("30s")).toBe(30_000);
    expect(parseTimeout("500ms")).toBe(500);
    expect(parseTimeout("2m")).toBe(120_000);
    expect(parseTimeout("1.5")).toBe(1500);
    for (const bad of ["soon", "0s", "-1s", "25h"]) expect(exitOf(() => parseTimeout(bad))).toBe(ExitCode.usage);
  });

  test("a message keeps its words; -- lets it start with a dash", () => {
    const p = parseCommand(["run", "ag-1", "--", "-v", "means", "verbose"], paramsOf);
    expect(bindArgs("run", VERBS.run!.params.args, p.args)).toEqual({ AGENT: "ag-1", MESSAGE: "-v means verbose" });
  });

  test("unknown option, missing or extra argument, bad choice: usage errors (exit 2)", () => {
    expect(exitOf(() => parseCommand(["ps", "--bogus"], paramsOf))).toBe(ExitCode.usage);
    expect(exitOf(() => bindArgs("run", VERBS.run!.params.args, ["ag-1"]))).toBe(ExitCode.usage);
    expect(exitOf(() => bindArgs("stop", VERBS.stop!.params.args, ["a", "b"]))).toBe(ExitCode.usage);
    expect(exitOf(() => bindArgs("audit", VERBS.audit!.params.args, ["verfy"]))).toBe(ExitCode.usage);
    try {
      parseCommand(["ps", "--bogus"], paramsOf);
    } catch (e) {
      expect((e as Error).message).toBe("ps: unknown option '--bogus'");
    }
  });

  test("console words split like a shell's", () => {
    expect(splitWords(`run ag-1 "say \\"hi\\"" 'it''s' a\\ b`).words).toEqual([
      "run",
      "ag-1",
      'say "hi"',
      "its",
      "a b",
    ]);
    expect(splitWords(`call x '{"a": 1}'`).words).toEqual(["call", "x", '{"a": 1}']);
    expect(splitWords(`run "open`).open).toBe(true);
    // the console is not a shell: bare JSON is one word, brackets inside strings included
    expect(splitWords(`invoke a file_read {"path":"/data/a b"}`).words).toEqual([
      "invoke",
      "a",
      "file_read",
      '{"path":"/data/a b"}',
    ]);
    expect(splitWords(`call m {"x":"} \\" ]","y":[1,{"z":2}]} --json`).words).toEqual([
      "call",
      "m",
      '{"x":"} \\" ]","y":[1,{"z":2}]}',
      "--json",
    ]);
    expect(splitWords(`call m [1, 2]`).words).toEqual(["call", "m", "[1, 2]"]);
    expect(splitWords(`call m {"open": 1`).open).toBe(true);
    expect(splitWords("status ").trailingSpace).toBe(true);
    expect(splitWords("status").trailingSpace).toBe(false);
  });

  test("did you mean", () => {
    expect(nearest("stauts", Object.keys(VERBS))).toBe("status");
    expect(nearest("aprove", Object.keys(VERBS))).toBe("approve");
    expect(nearest("xyzzy", Object.keys(VERBS))).toBeUndefined();
  });

  test("the kernel: one of --socket, --serial, --tty, else the environment", () => {
    expect(targetFrom({ socket: "/a" }, {})).toEqual({ kind: "socket", path: "/a" });
    expect(targetFrom({ tty: "/dev/ttyUSB0", baud: "9600" }, {})).toEqual({
      kind: "tty",
      path: "/dev/ttyUSB0",
      baud: 9600,
    });
    expect(targetFrom({ tty: "/dev/ttyS0" }, {})).toEqual({ kind: "tty", path: "/dev/ttyS0", baud: 115200 });
    expect(targetFrom({}, { AAOS_SERIAL: "/run/s" })).toEqual({ kind: "serial", path: "/run/s" });
    expect(targetFrom({ socket: "/x" }, { AAOS_SERIAL: "/run/s" })).toEqual({ kind: "socket", path: "/x" });
    expect(exitOf(() => targetFrom({}, {}))).toBe(ExitCode.usage);
    expect(exitOf(() => targetFrom({ socket: "/a", serial: "/b" }, {}))).toBe(ExitCode.usage);
    expect(exitOf(() => targetFrom({ tty: "/d", baud: "fast" }, {}))).toBe(ExitCode.usage);
  });

  test("--wait in seconds", () => {
    expect(waitMs("2.5", {})).toBe(2500);
    expect(waitMs(undefined, {})).toBe(10_000);
    expect(waitMs(undefined, {}, "serial")).toBe(60_000);
    expect(waitMs(undefined, { AAOS_WAIT: "60" })).toBe(60_000);
    expect(exitOf(() => waitMs("soon", {}))).toBe(ExitCode.usage);
  });
});

describe("exit codes", () => {
  test("capability and approval denials are 4; other kernel errors 1; lost connections 3", () => {
    expect(exitCodeFor(new RpcError(-32001, "capability denied"))).toBe(4);
    expect(exitCodeFor(new RpcError(-32003, "approval denied"))).toBe(4);
    expect(exitCodeFor(new RpcError(-32002, "no such agent"))).toBe(1);
    expect(exitCodeFor(new RpcError(-32601, "method not found"))).toBe(1);
    expect(exitCodeFor(new ConnectionLost())).toBe(3);
    expect(exitCodeFor(new ConnectionLost(new Error("ECONNRESET")))).toBe(3);
    expect(exitCodeFor(new CliError(ExitCode.usage, "x"))).toBe(2);
  });

  test("the kind of error decides, not its words: a message that reads like a lost connection is still 1", () => {
    expect(exitCodeFor(new Error("connection closed"))).toBe(1);
    expect(exitCodeFor(new RpcError(ErrorCode.InternalError, "connection lost: upstream"))).toBe(1);
  });

  /** a stream the test drives: what the client writes is kept, close() ends it like the peer going away */
  function fakeStream() {
    let onClose: (err?: Error) => void = () => {};
    const written: string[] = [];
    const stream: ByteStream = {
      write: (d) => void written.push(d),
      onData: () => {},
      onClose: (cb) => void (onClose = cb),
      close: () => onClose(),
    };
    return { stream, written, drop: (err?: Error) => onClose(err) };
  }

  test("a call pending when the line drops rejects with ConnectionLost, and so does a call after it", async () => {
    const { stream, written, drop } = fakeStream();
    const client = new RpcClient(stream);
    const pending = client.call("system.ping").catch((e) => e);
    expect(written.length).toBe(1);
    drop(new Error("ECONNRESET"));
    const e = await pending;
    expect(e).toBeInstanceOf(ConnectionLost);
    expect(e.message).toBe("connection lost: ECONNRESET");
    expect(exitCodeFor(e)).toBe(ExitCode.unreachable);
    const later = await client.call("system.ping").catch((e) => e);
    expect(later).toBeInstanceOf(ConnectionLost);
    expect(later.message).toBe("connection closed");
  });

  test("a clean close with calls pending is a lost connection too", async () => {
    const { stream, drop } = fakeStream();
    const client = new RpcClient(stream);
    const pending = client.call("agent.run", { agent_id: "a", message: "m" }).catch((e) => e);
    drop();
    expect(await pending).toBeInstanceOf(ConnectionLost);
  });

  test("a kernel error is an RpcError with the kernel's code, not a lost connection", async () => {
    let feed: (chunk: Buffer) => void = () => {};
    const written: string[] = [];
    const client = new RpcClient({
      write: (d) => void written.push(d),
      onData: (cb) => void (feed = cb),
      onClose: () => {},
      close: () => {},
    });
    const pending = client.call("agent.stop", { agent_id: "x" }).catch((e) => e);
    const { id } = JSON.parse(written[0]!);
    feed(
      Buffer.from(
        JSON.stringify({ jsonrpc: "2.0", id, error: { code: ErrorCode.NoSuchAgent, message: "no such agent: x" } }) +
          "\n",
      ),
    );
    const e = await pending;
    expect(e).toBeInstanceOf(RpcError);
    expect(e).not.toBeInstanceOf(ConnectionLost);
    expect(exitCodeFor(e)).toBe(ExitCode.failed);
  });
});

describe("the method list", () => {
  test("aaosctl's known methods are the kernel's method names, manifest.list included", () => {
    expect(KNOWN_METHODS).toEqual([...METHOD_NAMES]);
    expect(KNOWN_METHODS).toContain("manifest.list");
    expect(new Set(KNOWN_METHODS).size).toBe(KNOWN_METHODS.length);
  });
});

describe("formatting", () => {
  test("tables: bold headers, aligned columns, the flexible column cut to the width", () => {
    const rows = [
      { id: "ag-1", desc: "short" },
      { id: "ag-22222", desc: "a description that is much too long to fit" },
    ];
    const cols = [
      { header: "ID", value: (r: (typeof rows)[0]) => r.id },
      { header: "DESCRIPTION", value: (r: (typeof rows)[0]) => r.desc, flexible: true },
    ];
    expect(table(rows, cols, plain, 30).split("\n")).toEqual([
      "ID        DESCRIPTION",
      "ag-1      short",
      "ag-22222  a description that…",
    ]);
    expect(table(rows, cols, painter(true))).toContain("\x1b[1mID");
  });

  test("key/value blocks indent continuation lines under the value", () => {
    expect(
      keyValues(
        [
          ["name", "x"],
          ["capabilities", "a\nb"],
        ],
        plain,
      ),
    ).toBe("name:         x\ncapabilities: a\n              b");
  });

  test("durations", () => {
    expect(formatDuration(250)).toBe("250ms");
    expect(formatDuration(2500)).toBe("2.5s");
    expect(formatDuration(75_000)).toBe("1m15s");
    expect(formatDuration(3 * 3600_000 + 60_000)).toBe("3h1m");
  });

  test("agent output events: text verbatim, tool activity one line each", () => {
    const id = "ag-1";
    expect(formatOutputEvent({ agent_id: id, type: "text", text: "hello" }, plain)).toBe("hello");
    expect(
      formatOutputEvent(
        { agent_id: id, type: "tool_use", tool: "file_write", input: { path: "/d/x" }, id: "t1" },
        plain,
      ),
    ).toBe('  ▸ file_write {"path":"/d/x"}');
    expect(
      formatOutputEvent({ agent_id: id, type: "tool_result", tool: "echo", id: "t1", ok: true, output: "hi" }, plain),
    ).toBe("  ✓ echo hi");
    expect(
      formatOutputEvent(
        {
          agent_id: id,
          type: "tool_result",
          tool: "echo",
          id: "t1",
          ok: false,
          error: { code: -32001, message: "capability denied" },
        },
        plain,
      ),
    ).toBe("  ✗ echo: capability denied (-32001)");
    expect(
      formatOutputEvent({ agent_id: id, type: "approval_pending", approval_id: "ap-1", tool: "file_write" }, plain),
    ).toContain("⏸ file_write waits for approval ap-1");
  });

  test("approval banner names the request, the agent, the tool, the input and what to type", () => {
    const text = formatApprovalRequest(
      { id: "ap-9", agent_id: "ag-1", tool: "file_write", input: { path: "/data/x" } },
      plain,
    );
    expect(text).toContain("approval requested ap-9: agent ag-1 wants file_write");
    expect(text).toContain('input {"path":"/data/x"}');
    expect(text).toContain("approve ap-9");
  });

  test("audit lines: seq, time, kind, agent, then the event's own fields", () => {
    const line = formatAuditEvent(
      { seq: 7, ts: "2026-01-02T03:04:05.678Z", kind: "tool.call", agent_id: "ag-1", tool: "echo", note: "two words" },
      plain,
    );
    expect(line).toBe('    7  2026-01-02T03:04:05.678Z  tool.call           ag-1  tool=echo note="two words"');
  });

  test("times carry their zone: UTC with Z in audit lines and log lines alike, whatever the record's offset", () => {
    const ev = { seq: 1, ts: "2026-01-02T05:04:05.678+02:00", kind: "clock.step", agent_id: null };
    expect(formatAuditEvent(ev, plain)).toContain("  2026-01-02T03:04:05.678Z  clock.step");
    const log = formatLogLine({ level: "info", time: "2026-01-02T03:04:05.678Z", msg: "up" }, plain);
    expect(log).toBe("2026-01-02T03:04:05.678Z INFO  up");
    expect(timestamp(Date.UTC(2026, 0, 2, 3, 4, 5))).toBe("2026-01-02T03:04:05.000Z");
    expect(timestamp(undefined)).toBe("-");
  });

  test("audit lines: a refusal is red, an approval yellow, whatever the kind says of the decision", () => {
    const styleOf = (ev: Record<string, unknown>) => {
      let style = "";
      formatAuditEvent(
        { seq: 1, ts: "2026-01-02T03:04:05.678Z", agent_id: "ag-1", ...ev },
        (s, t) => (t.trim() === ev.kind ? (style = s) : "", t),
      );
      return style;
    };
    expect(styleOf({ kind: "capability.denied" })).toBe("red");
    expect(styleOf({ kind: "approval.decided", decision: "deny" })).toBe("red");
    expect(styleOf({ kind: "approval.decided", decision: "approve" })).toBe("yellow");
    expect(styleOf({ kind: "agent.spawn" })).toBe("green");
  });

  test("errors say what the kernel said, its name, code and data", () => {
    const denied = formatError(
      new RpcError(-32001, "capability denied: no file_write on /etc", {
        tool: "file_write",
        capability: "file_write: /data/*",
      }),
      plain,
    );
    expect(denied).toBe(
      "error: capability denied: no file_write on /etc (-32001)\n  tool: file_write, capability: file_write: /data/*",
    );
    const manifest = formatError(
      new RpcError(-32005, "unknown key", { path: "aproval_required", line: 3, column: 1 }),
      plain,
    );
    expect(manifest).toBe("error: invalid manifest: unknown key (-32005)\n  at aproval_required:3:1");
    expect(formatError(new CliError(3, "no answer", "try --wait"), plain)).toBe("error: no answer\n  try --wait");
  });
});

describe("output", () => {
  function capture(progress = false) {
    let out = "";
    let err = "";
    const o = new Output({
      stdout: { write: (t) => void (out += t) },
      stderr: { write: (t) => void (err += t) },
      color: false,
      json: false,
      progress,
      width: 80,
    });
    return { o, out: () => out, err: () => err };
  }

  test("a line printed after streamed text starts on a fresh line", () => {
    const c = capture();
    c.o.write("The model says");
    c.o.print("  ▸ echo");
    c.o.note("summary");
    expect(c.out()).toBe("The model says\n  ▸ echo\n");
    expect(c.err()).toBe("summary\n");
  });

  test("the spinner draws only on a terminal and is cleared before output", async () => {
    const quiet = capture(false);
    quiet.o.progress("waiting");
    await Bun.sleep(250);
    expect(quiet.err()).toBe("");
    const c = capture(true);
    const stop = c.o.progress("waiting");
    await Bun.sleep(250);
    expect(c.err()).toContain("waiting");
    c.o.print("done");
    stop();
    expect(c.err().endsWith("\r\x1b[K")).toBe(true);
    c.o.close();
  });
});

describe("help", () => {
  test("every verb has a usage line, a summary and help text; the global help lists them all and the exit codes", () => {
    const help = globalHelp();
    for (const [name, v] of Object.entries(VERBS)) {
      expect(v.summary.length).toBeGreaterThan(5);
      expect(help).toContain(`  ${name} `);
      expect(verbHelp(name)).toStartWith(`usage: aaosctl ${name}`);
    }
    for (const code of ["0", "1", "2", "3", "4"]) expect(help).toMatch(new RegExp(`^\\s+${code}  `, "m"));
  });

  test("the issue's verbs are all there", () => {
    for (const v of [
      "info",
      "ps",
      "spawn",
      "run",
      "stop",
      "status",
      "tools",
      "invoke",
      "approvals",
      "approve",
      "deny",
      "audit",
      "shutdown",
      "reboot",
      "call",
      "console",
    ])
      expect(VERBS[v]).toBeDefined();
  });

  test("verb help shows arguments, methods and options", () => {
    const h = stripAnsi(verbHelp("deny"));
    expect(h).toContain("usage: aaosctl deny APPROVAL [options]");
    expect(h).toContain("calls: approval.respond");
    expect(h).toMatch(/-r, --reason TEXT/);
    expect(verbHelp("audit")).toContain("usage: aaosctl audit [verify|export] [options]");
  });
});
