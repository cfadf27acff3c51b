// aaosctl upgrade and rollback against a real host-mode kernel: the arguments
// are checked before anything is sent, a bundle goes as system.upgrade chunks
// (the kernel's answer, a host-mode kernel refusing, comes back as exit 1),
// and --url needs --sha256. The appliance's side is test/e2e/upgrade.test.ts.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, startKernel, type RunningKernel } from "../host/harness.ts";
import { aaosctl } from "./run-cli.ts";

setDefaultTimeout(60_000);
let k: RunningKernel;
let S: string[];
const cli = (...args: string[]) => aaosctl([...S, ...args], { timeoutMs: 60_000 });

beforeAll(async () => {
  k = await startKernel({});
  S = ["--socket", k.socket];
});
afterAll(async () => {
  await k?.stop();
  if (k) cleanup(k);
});

test("upgrade: usage errors, then the kernel's refusal of a host-mode upgrade", async () => {
  const none = await cli("upgrade");
  expect(none.code).toBe(2);
  expect(none.stderr).toContain("upgrade needs BUNDLE or --url");
  const noSha = await cli("upgrade", "--url", "http://10.0.2.2:8000/aaos-upgrade.bundle");
  expect(noSha.code).toBe(2);
  expect(noSha.stderr).toContain("--url needs --sha256");
  const file = join(k.dataDir, "b.bundle");
  writeFileSync(file, "not a bundle");
  const r = await cli("upgrade", file);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("upgrades are for the appliance (init mode)");
  const rb = await cli("rollback");
  expect(rb.code).toBe(1);
  expect(rb.stderr).toContain("upgrades are for the appliance (init mode)");
});
