// The examples `aaosctl --help` prints name manifests that ship: the
// call-agent example, as the help prints it, against a kernel whose config
// is the image's own manifests (image/config/manifests, copied unchanged),
// with the model played by the Messages API fixture.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { startMessagesServer, type MessagesServer } from "../fixtures/messages-server.ts";
import { cleanup, startKernel, type RunningKernel } from "../host/harness.ts";
import { splitWords } from "../../cli/args.ts";
import { aaosctl } from "./run-cli.ts";

setDefaultTimeout(30_000);

const ROOT = resolve(import.meta.dir, "../..");
const SHIPPED = join(ROOT, "image/config/manifests");
const KEY = "sk-ant-api03-HELPEXAMPLES-0000000000";

let k: RunningKernel;
let llm: MessagesServer;
beforeAll(async () => {
  llm = await startMessagesServer({ apiKey: KEY });
  const manifests: Record<string, string> = {};
  for (const f of readdirSync(SHIPPED).filter((f) => f.endsWith(".yaml")))
    manifests[f.replace(/\.yaml$/, "")] = readFileSync(join(SHIPPED, f), "utf8");
  k = await startKernel({ manifests, env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: llm.url } });
});
afterAll(async () => {
  await k?.stop();
  if (k) cleanup(k);
  await llm?.stop();
});

const env = () => ({ AAOS_SOCKET: k.socket });

test("the help's call-agent example runs as printed, against the shipped weather manifest", async () => {
  const help = await aaosctl(["--help"]);
  const example = help.stdout.split("\n").find((l) => l.trim().startsWith("aaosctl call-agent "));
  expect(example).toBeDefined();
  const words = splitWords(example!.trim()).words.slice(1);
  // the AGENT it names is a manifest that ships, and its METHOD one the manifest serves
  const [agent, method] = [words[1]!, words[2]!];
  const spawned = await aaosctl(["spawn", agent], { env: env() });
  expect(spawned.stderr + spawned.stdout).toContain(`spawned ${agent} ag-`);
  const status = await aaosctl(["status", agent, "--json"], { env: env() });
  expect(JSON.stringify(JSON.parse(status.stdout).serves ?? JSON.parse(status.stdout))).toContain(method);

  llm.script([
    {
      match: { system: "You forecast the weather", tool_choice: "any" },
      content: [{ type: "tool_use", name: "reply", input: { summary: "Oslo: 2 °C, light snow, 3 days" } }],
    },
  ]);
  const r = await aaosctl(words, { env: env() });
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toEqual({ summary: "Oslo: 2 °C, light snow, 3 days" });
  // the --param reached the model
  const asked = llm.requests.filter((q) => JSON.stringify(q.body.system ?? "").includes("You forecast the weather"));
  expect(JSON.stringify(asked.at(-1)!.body.messages)).toContain("Oslo");
});

test("every shipped manifest is one a spawn accepts", async () => {
  for (const f of readdirSync(SHIPPED).filter((f) => f.endsWith(".yaml"))) {
    const r = await aaosctl(["spawn", f.replace(/\.yaml$/, "")], { env: env() });
    expect({ f, code: r.code, err: r.stderr }).toEqual({ f, code: 0, err: "" });
  }
});
