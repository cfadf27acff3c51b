// system.info `config` says what is in effect now, not only what the kernel
// booted with: after config.apply, kernel.yaml is the source, the sections
// applied live are listed, and so are those that wait for the next boot.
// A real host-mode kernel through its socket, restarted on the same disk.
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { cleanup, rpcError, startKernel, type RunningKernel } from "./harness.ts";

setDefaultTimeout(30_000);

const MODEL = "claude-haiku-4-5-20251001";
const kernels: RunningKernel[] = [];
afterAll(async () => {
  for (const k of kernels) await k.stop();
  for (const d of new Set(kernels.map((k) => k.dir))) cleanup({ dir: d } as RunningKernel);
});
const info = async (k: RunningKernel) => (await k.client.call<any>("system.info", {})).config;

test("after config.apply: what was applied live and what waits for reboot; a reboot takes all of it", async () => {
  const k = await startKernel({});
  kernels.push(k);
  expect(await info(k)).toEqual({
    source: "defaults",
    valid: true,
    boot_source: "defaults",
    applied: [],
    at_reboot: [],
    last_apply: null,
  });

  // limits is read at each spawn (live); rpc only at boot
  const yaml = "limits:\n  max_agents: 1\nrpc:\n  max_in_flight: 64\n";
  const r = await k.client.call<any>("config.apply", { yaml });
  expect(r).toMatchObject({ applied: ["limits"], at_reboot: ["rpc"] });
  const c = await info(k);
  expect(c).toMatchObject({
    source: "kernel.yaml",
    valid: true,
    boot_source: "defaults",
    applied: ["limits"],
    at_reboot: ["rpc"],
    last_apply: { sha256: r.sha256 },
  });
  expect(Date.parse(c.last_apply.at)).toBeGreaterThan(Date.now() - 60_000);
  // and it is in effect: a second agent is over the new limit
  await k.client.call("agent.spawn", { manifest: `name: one\nmodel: ${MODEL}\n` });
  await rpcError(k.client.call("agent.spawn", { manifest: `name: two\nmodel: ${MODEL}\n` }), -32008);

  // the rpc change taken back: nothing waits any more; limits stays applied
  const r2 = await k.client.call<any>("config.apply", { yaml: "limits:\n  max_agents: 1\n" });
  expect(r2).toMatchObject({ applied: [], at_reboot: [] });
  expect(await info(k)).toMatchObject({ applied: ["limits"], at_reboot: [], last_apply: { sha256: r2.sha256 } });

  // a reboot reads the file: it is the boot's source, and nothing is pending
  await k.client.call("config.apply", { yaml });
  expect((await info(k)).at_reboot).toEqual(["rpc"]);
  await k.stop();
  const k2 = await startKernel({ dir: k.dir });
  kernels.push(k2);
  expect(await info(k2)).toEqual({
    source: "kernel.yaml",
    valid: true,
    boot_source: "kernel.yaml",
    applied: [],
    at_reboot: [],
    last_apply: null,
  });
});
