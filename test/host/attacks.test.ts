// The attacks of the host-mode issue, each through the JSON-RPC socket of a
// running kernel against real files: every one must be refused, and a
// refused write must leave nothing behind.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { cleanup, rpcError, startKernel, type RunningKernel } from "./harness.ts";

let k: RunningKernel;
let root: string; // plays the role of /data
let agent: string;

beforeAll(async () => {
  k = await startKernel();
  root = join(k.dir, "files", "data");
  mkdirSync(join(root, "project"), { recursive: true });
  mkdirSync(join(root, "output"), { recursive: true });
  mkdirSync(join(k.dir, "files", "data-x"), { recursive: true });
  mkdirSync(join(k.dir, "files", "secret"), { recursive: true });
  writeFileSync(join(root, "project", "notes.txt"), "project notes");
  writeFileSync(join(k.dir, "files", "data-x", "x.txt"), "not yours");
  writeFileSync(join(k.dir, "files", "secret", "key"), "TOP SECRET");
  const s = await k.client.call("agent.spawn", {
    manifest: [
      "name: worker",
      "model: claude-haiku-4-5-20251001",
      "capabilities:",
      `  - "file_read: ${root}/*"`,
      `  - "file_write: ${root}/output/*"`,
      "",
    ].join("\n"),
  });
  agent = s.agent_id;
});
afterAll(async () => {
  await k.stop();
  cleanup(k);
});

const invoke = (tool: string, input: object, agent_id = agent) =>
  k.client.call("tool.invoke", { agent_id, tool, input });

describe("granted paths work", () => {
  test("read inside the grant", async () => {
    const r = await invoke("file_read", { path: `${root}/project/notes.txt` });
    expect(r.output.content).toBe("project notes");
  });
  test("write inside the grant creates missing directories", async () => {
    await invoke("file_write", { path: `${root}/output/a/b/report.md`, content: "# report" });
    expect(readFileSync(join(root, "output/a/b/report.md"), "utf8")).toBe("# report");
  });
  test("list inside the grant", async () => {
    const r = await invoke("file_list", { path: `${root}/project` });
    expect(JSON.stringify(r.output)).toContain("notes.txt");
  });
});

describe("refused", () => {
  test("`..` out of a grant", async () => {
    await rpcError(invoke("file_read", { path: `${root}/project/../../secret/key` }), -32001);
    await rpcError(invoke("file_write", { path: `${root}/output/../../escape.txt`, content: "x" }), -32001);
    expect(existsSync(join(k.dir, "files", "escape.txt"))).toBe(false);
  });

  test("/data/* does not grant /data-x", async () => {
    await rpcError(invoke("file_read", { path: `${root}-x/x.txt` }), -32001);
  });

  test("a symlink as the last component", async () => {
    symlinkSync(join(k.dir, "files", "secret", "key"), join(root, "project", "link-to-key"));
    await rpcError(invoke("file_read", { path: `${root}/project/link-to-key` }), -32001);
    symlinkSync(join(k.dir, "files", "secret", "planted"), join(root, "output", "planted"));
    await rpcError(invoke("file_write", { path: `${root}/output/planted`, content: "x" }), -32001);
    expect(existsSync(join(k.dir, "files", "secret", "planted"))).toBe(false);
  });

  test("a symlink as a middle directory", async () => {
    symlinkSync(join(k.dir, "files", "secret"), join(root, "project", "dirlink"));
    await rpcError(invoke("file_read", { path: `${root}/project/dirlink/key` }), -32001);
    symlinkSync(join(k.dir, "files", "secret"), join(root, "output", "outlink"));
    await rpcError(invoke("file_write", { path: `${root}/output/outlink/new.txt`, content: "x" }), -32001);
    expect(existsSync(join(k.dir, "files", "secret", "new.txt"))).toBe(false);
  });

  test("a symlink swapped in after the check (race, many rounds)", async () => {
    // a directory under the grant flips between a real directory and a symlink
    // to the secret directory while the agent writes into it
    const victim = join(root, "output", "race");
    const secret = join(k.dir, "files", "secret");
    let stop = false;
    let flips = 0;
    const clear = () => {
      const st = lstatSync(victim, { throwIfNoEntry: false });
      if (!st) return;
      if (st.isSymbolicLink()) unlinkSync(victim);
      else renameSync(victim, join(root, "output", `race-old-${flips}`)); // a real dir the kernel made
    };
    const flipper = (async () => {
      while (!stop) {
        try {
          clear();
          symlinkSync(secret, victim); // a symlink out of the grant
          await Bun.sleep(0);
          clear();
          mkdirSync(victim); // a real directory inside it
          flips++;
        } catch {}
        await Bun.sleep(0);
      }
    })();
    for (let i = 0; i < 60; i++) {
      await invoke("file_write", { path: `${victim}/f${i}.txt`, content: "x" }).catch(() => {});
    }
    stop = true;
    await flipper;
    expect(flips).toBeGreaterThan(5);
    expect(readdirSync(secret).sort()).toEqual(["key"]);
  });

  test("NUL bytes in a path", async () => {
    const e = await k.client
      .call("tool.invoke", {
        agent_id: agent,
        tool: "file_read",
        input: { path: `${root}/project/notes.txt\u0000.png` },
      })
      .catch((e) => e);
    expect([-32001, -32602]).toContain(e.code);
  });

  test("a tool not granted", async () => {
    await rpcError(invoke("spawn_agent", { name: "x" }), -32001);
  });

  test("a revoked token", async () => {
    const s = await k.client.call("agent.spawn", {
      manifest: `name: temp\nmodel: m\ncapabilities:\n  - "file_read: ${root}/*"\n`,
    });
    await invoke("file_read", { path: `${root}/project/notes.txt` }, s.agent_id);
    await k.client.call("agent.stop", { agent_id: s.agent_id });
    const e = await k.client
      .call("tool.invoke", { agent_id: s.agent_id, tool: "file_read", input: { path: `${root}/project/notes.txt` } })
      .catch((e) => e);
    expect([-32001, -32008]).toContain(e.code);
  });

  test("an exhausted token", async () => {
    const s = await k.client.call("agent.spawn", {
      manifest: `name: once\nmodel: m\ncapabilities:\n  - capability: "file_read: ${root}/*"\n    max_invocations: 1\n`,
    });
    await invoke("file_read", { path: `${root}/project/notes.txt` }, s.agent_id);
    await rpcError(invoke("file_read", { path: `${root}/project/notes.txt` }, s.agent_id), -32001);
  });

  test("a denied write leaves no file and no directory", async () => {
    const s = await k.client.call("agent.spawn", {
      manifest: `name: ro\nmodel: m\ncapabilities:\n  - "tool: file_write"\n  - "file_write: ${root}/output/allowed/*"\n`,
    });
    await rpcError(
      invoke("file_write", { path: `${root}/output/denied/deep/dir/file.txt`, content: "x" }, s.agent_id),
      -32001,
    );
    expect(existsSync(join(root, "output", "denied"))).toBe(false);
  });

  test("a redirect to a host not granted", async () => {
    const target = Bun.serve({ hostname: "127.0.0.2", port: 0, fetch: () => new Response("internal secret") });
    const hop = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () => Response.redirect(`http://127.0.0.2:${target.port}/`, 302),
    });
    try {
      const s = await k.client.call("agent.spawn", {
        manifest: `name: fetcher\nmodel: m\ncapabilities:\n  - "web_fetch: http://127.0.0.1:${hop.port}/*"\n`,
      });
      const e = await rpcError(invoke("web_fetch", { url: `http://127.0.0.1:${hop.port}/start` }, s.agent_id), -32001);
      expect(JSON.stringify(e)).not.toContain("internal secret");
      const hits = await k.client.call("audit.query", { agent_id: s.agent_id, kind: "capability.denied" });
      expect(hits.events[0].resource).toContain("127.0.0.2");
    } finally {
      target.stop(true);
      hop.stop(true);
    }
  });
});
