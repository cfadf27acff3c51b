// Names in a manifest are checked at spawn, over the real socket: a
// capability naming no tool, a spawn_child or message_send entry naming no
// agent in manifests/, and a YAML alias bomb are each an invalid manifest
// (-32005) with the line and column of the culprit.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanup, rpcError, startKernel, type RunningKernel } from "./harness.ts";

const MODEL = "claude-haiku-4-5-20251001";
const head = `name: checked\nmodel: ${MODEL}\n`;
const laughs =
  ["a: &a [x, x, x, x, x, x, x, x, x]"]
    .concat(
      "bcdefghi".split("").map(
        (k, i) =>
          `${k}: &${k} [${Array(9)
            .fill("*" + "abcdefghi"[i])
            .join(", ")}]`,
      ),
    )
    .join("\n") + "\n";

let k: RunningKernel;
beforeAll(async () => {
  k = await startKernel({
    manifests: {
      helper: `name: helper\nmodel: ${MODEL}\ncapabilities: [echo]\n`,
      lost: `name: lost\nmodel: ${MODEL}\nspawn_child: [helper, ghost]\n`,
    },
  });
});
afterAll(async () => {
  await k.stop();
  cleanup(k);
});

const spawn = (manifest: string) => k.client.call("agent.spawn", { manifest });

describe("agent.spawn refuses names nothing defines", () => {
  test("tool: frobnicate", async () => {
    const e = await rpcError(spawn(`${head}capabilities:\n  - echo\n  - "tool: frobnicate"\n`), -32005);
    expect(e.data).toEqual({ source: "manifest", path: "capabilities[1]", line: 5, column: 5 });
    expect(e.message).toContain(
      'unknown tool "frobnicate" (known: agent_call, agent_notify, dir_create, echo, file_delete, file_list, file_move, file_read, file_write, memory_block_update, memory_delete, memory_search, memory_store, message_read, message_send, spawn_agent, web_fetch)',
    );
  });

  test("a bare unknown tool name", async () => {
    const e = await rpcError(spawn(`${head}capabilities: [frobnicate]\n`), -32005);
    expect(e.data).toMatchObject({ path: "capabilities[0]", line: 3, column: 16 });
  });

  test("spawn_child: [nonexistent]", async () => {
    const e = await rpcError(spawn(`${head}spawn_child: [nonexistent]\n`), -32005);
    expect(e.data).toEqual({ source: "manifest", path: "spawn_child[0]", line: 3, column: 15 });
    expect(e.message).toContain(
      'unknown agent "nonexistent": there is no manifests/nonexistent.yaml (known: helper, lost)',
    );
  });

  test("message_send: [nobody]", async () => {
    const e = await rpcError(spawn(`${head}message_send:\n  - helper\n  - nobody\n`), -32005);
    expect(e.data).toEqual({ source: "manifest", path: "message_send[1]", line: 5, column: 5 });
    expect(e.message).toContain('unknown agent "nobody"');
  });

  test("an alias bomb, answered at once", async () => {
    const t0 = performance.now();
    const e = await rpcError(spawn(head + laughs), -32005);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(e.data).toEqual({ source: "manifest", path: "e[0]", line: 7, column: 8 });
    expect(e.message).toContain("aliases expand to more than 10000 nodes");
    expect(await k.client.call("system.ping")).toBeDefined();
  });

  test("known names pass: a manifest in manifests/, and the agent itself for message_send", async () => {
    const s = await spawn(`${head}capabilities: [echo]\nspawn_child: [helper]\nmessage_send: [helper, checked]\n`);
    expect(s.name).toBe("checked");
  });

  test("a config manifest naming an unknown child is flagged by manifest.list and refused by name", async () => {
    const { manifests } = await k.client.call("manifest.list");
    const lost = manifests.find((m: any) => m.name === "lost");
    expect(lost.valid).toBe(false);
    expect(lost.error).toContain('spawn_child[1]: unknown agent "ghost"');
    expect(lost.error).toContain("line 3, column 23");
    const e = await rpcError(k.client.call("agent.spawn", { name: "lost" }), -32005);
    expect(e.data).toEqual({ source: "manifests/lost.yaml", path: "spawn_child[1]", line: 3, column: 23 });
  });
});

test("an alias bomb in kernel.yaml stops the kernel at boot with its position", async () => {
  const dir = mkdtempSync(join(tmpdir(), "aaos-"));
  try {
    await expect(startKernel({ dir, kernelYaml: laughs })).rejects.toThrow(
      /kernel\.yaml: e\[0\]: YAML: aliases expand to more than 10000 nodes .*\(line 5, column 8\)/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
