// aaosctl apply, delete manifest, config get, secret set against a real
// host-mode kernel, each verb run as its own process.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanup, startKernel, type RunningKernel } from "../host/harness.ts";
import { aaosctl } from "./run-cli.ts";

setDefaultTimeout(30_000);

const MODEL = "claude-haiku-4-5-20251001";
let k: RunningKernel;
let S: string[];
let files: string;
const cli = (args: string[], stdin?: string) => aaosctl([...S, ...args], stdin === undefined ? {} : { stdin });

beforeAll(async () => {
  k = await startKernel({ manifests: { base: `name: base\nmodel: ${MODEL}\n` } });
  S = ["--socket", k.socket];
  files = mkdtempSync(join(tmpdir(), "aaos-cli-live-"));
});
afterAll(async () => {
  await k?.stop();
  if (k) cleanup(k);
  rmSync(files, { recursive: true, force: true });
});

describe("apply -f", () => {
  test("a manifest is put under its name; spawn finds it; a mistake shows its line and column", async () => {
    const f = join(files, "some-file.yaml");
    writeFileSync(f, `name: helper\nmodel: ${MODEL}\nsystem_prompt: You help.\n`);
    const r = await cli(["apply", "-f", f]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("manifest helper stored (state/manifests/helper.yaml)");
    const sp = await cli(["spawn", "helper", "--json"]);
    expect(sp.code).toBe(0);
    expect(JSON.parse(sp.stdout).name).toBe("helper");

    // over the config partition's manifest, from stdin
    const o = await cli(["apply", "-f", "-", "--json"], `name: base\nmodel: ${MODEL}\nsystem_prompt: Over.\n`);
    expect(o.code).toBe(0);
    expect(JSON.parse(o.stdout)).toMatchObject({ name: "base", source: "data", overrides: true });

    const bad = join(files, "bad.yaml");
    writeFileSync(bad, `name: broken\nmodel: ${MODEL}\ncapabilities:\n  - "fs_read: /etc"\n`);
    const b = await cli(["apply", "-f", bad]);
    expect(b.code).not.toBe(0);
    expect(b.stderr).toContain("line 4, column 5");
    const ls = await cli(["call", "manifest.list"]);
    expect(ls.stdout).not.toContain("broken");

    const none = await cli(["apply"]);
    expect(none.code).toBe(2);
  });

  test("--config: kernel.yaml applied, the sections live and at reboot listed; a mistake positioned", async () => {
    const f = join(files, "kernel.yaml");
    writeFileSync(f, "limits:\n  max_agents: 50\nrpc:\n  max_in_flight: 32\n");
    const r = await cli(["apply", "--config", "-f", f]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/applied:\s+limits\n/);
    expect(r.stdout).toMatch(/at reboot:\s+rpc\n/);
    expect(readFileSync(join(k.configDir, "kernel.yaml"), "utf8")).toBe(readFileSync(f, "utf8"));

    writeFileSync(f, "limits:\n  max_agents: many\n");
    // the kernel's refusal: exit 1
    const b = await cli(["apply", "--config", "-f", f]);
    expect(b.code).toBe(1);
    expect(b.stderr).toContain("line 2, column 15");
    expect(readFileSync(join(k.configDir, "kernel.yaml"), "utf8")).toContain("max_agents: 50");
  });
});

describe("delete manifest, config get, secret set", () => {
  test("delete manifest removes the data disk's, refuses the config partition's", async () => {
    await cli(["apply", "-f", "-"], `name: gone\nmodel: ${MODEL}\n`);
    const d = await cli(["delete", "manifest", "gone"]);
    expect(d.code).toBe(0);
    expect(d.stdout).toContain("manifest gone deleted");
    await cli(["apply", "-f", "-"], `name: base\nmodel: ${MODEL}\n`);
    const b = await cli(["delete", "manifest", "base"]);
    expect(b.code).toBe(0);
    expect(b.stdout).toContain("the config partition's one shows again");
    const again = await cli(["delete", "manifest", "base"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("only in the config partition");
    expect((await cli(["delete", "thing", "x"])).code).toBe(2);
  });

  test("config get prints kernel.yaml", async () => {
    const r = await cli(["config", "get"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(join(k.configDir, "kernel.yaml"), "utf8"));
    const j = JSON.parse((await cli(["config", "get", "--json"])).stdout);
    expect(j.source).toBe("kernel.yaml");
  });

  test("secret set reads stdin, never argv; the value is shown nowhere", async () => {
    const VALUE = "sk-cli-secret-value-9876543210";
    const r = await cli(["secret", "set", "my_key"], VALUE + "\n");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`secret my_key written (secrets/my_key, ${VALUE.length} bytes)`);
    expect(r.stdout + r.stderr).not.toContain(VALUE);
    const file = join(k.configDir, "secrets", "my_key");
    expect(readFileSync(file, "utf8")).toBe(VALUE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // a value on the command line is not taken
    expect((await cli(["secret", "set", "my_key", VALUE])).code).toBe(2);
    expect((await cli(["secret", "set", "empty"], "")).code).toBe(2);
    const audit = await cli(["audit", "--kind", "secret.set", "--json"]);
    expect(audit.stdout).toContain("my_key");
    expect(audit.stdout).not.toContain(VALUE);
  });
});
