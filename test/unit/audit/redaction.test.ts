import { describe, expect, test } from "bun:test";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { AuditLog, REDACTED, isSensitiveKey } from "../../../kernel/audit/index.ts";
import { tempDirsPerTest } from "./temp-dirs.ts";

const dir = tempDirsPerTest();

/** every byte under the log directory, quarantine included */
function allBytes(d: string): string {
  let out = "";
  const walk = (p: string) => {
    for (const n of readdirSync(p)) {
      const q = join(p, n);
      if (statSync(q).isDirectory()) walk(q);
      else out += readFileSync(q, "latin1") + "\n";
    }
  };
  walk(d);
  return out;
}

describe("redaction", () => {
  test("a registered secret never reaches the disk, wherever it hides", async () => {
    const d = dir();
    const secret = "sk-test-4f9a2c1e7b3d8a6f0e5c";
    const log = await AuditLog.open(d, { segmentRecords: 3 });
    log.registerSecret(secret);
    await log.append({ kind: "llm.request", agent_id: "a", url: `https://api.example/v1?key=${secret}` });
    await log.append({ kind: "tool.result", agent_id: "a", output: { nested: [{ deep: `prefix ${secret} suffix` }] } });
    await log.append({ kind: "tool.error", agent_id: "a", error: new Error(`auth failed for ${secret}`) });
    await log.append({ kind: "odd", agent_id: "a", headers: { [`k-${secret}`]: 1 } });
    await log.append({ kind: "bytes", agent_id: "a", list: [secret, secret.toUpperCase()] });
    await log.close();

    const bytes = allBytes(d);
    expect(bytes).not.toContain(secret);
    expect(bytes).not.toContain("4f9a2c1e7b3d8a6f0e5c");

    const again = await AuditLog.open(d);
    const ev = (await again.query({})).events;
    expect(ev[0]!.url).toBe(REDACTED);
    expect(ev[1]!.output).toEqual({ nested: [{ deep: REDACTED }] });
    expect(ev[2]!.error).toEqual({ message: REDACTED });
    expect(Object.keys(ev[3]!.headers as object)).toEqual([`k-${REDACTED}`]);
    expect(ev[4]!.list).toEqual([REDACTED, secret.toUpperCase()]); // only the exact value is registered
    expect((await again.verify()).ok).toBe(true);
    await again.close();
  });

  test("values under credential-named keys are redacted at any depth, case- and separator-insensitively", async () => {
    const d = dir();
    const log = await AuditLog.open(d);
    const ev = {
      kind: "http.request",
      agent_id: "a",
      api_key: "v1-aaaaaaaaaaaa",
      config: { apiKey: "v2-bbbbbbbbbbbb", nested: { PASSWORD: "v3-cccccccccccc" } },
      headers: { "X-Api-Key": "v4-dddddddddddd", Authorization: "Bearer v5-eeeeeeeeeeee", "content-type": "json" },
      list: [{ client_secret: "v6-ffffffffffff" }, { access_token: "v7-gggggggggggg" }],
      usage: { input_tokens: 12, output_tokens: 34 },
      no_key: null,
    };
    await log.append(ev);
    await log.close();
    const bytes = allBytes(d);
    for (let i = 1; i <= 7; i++) expect(bytes).not.toContain(`v${i}-`);
    const l = await AuditLog.open(d);
    const [e] = (await l.query({})).events;
    expect(e!.api_key).toBe(REDACTED);
    expect(e!.config).toEqual({ apiKey: REDACTED, nested: { PASSWORD: REDACTED } });
    expect(e!.headers).toEqual({ "X-Api-Key": REDACTED, Authorization: REDACTED, "content-type": "json" });
    expect(e!.list).toEqual([{ client_secret: REDACTED }, { access_token: REDACTED }]);
    expect(e!.usage).toEqual({ input_tokens: 12, output_tokens: 34 }); // token counts are not credentials
    await l.close();
  });

  test("key names", () => {
    for (const k of [
      "api_key",
      "apiKey",
      "API-KEY",
      "x-api-key",
      "authorization",
      "Proxy-Authorization",
      "password",
      "db_password",
      "secret",
      "clientSecret",
      "private_key",
      "Cookie",
      "refresh_token",
    ])
      expect(isSensitiveKey(k)).toBe(true);
    for (const k of ["input_tokens", "output_tokens", "token_count", "kind", "agent_id", "tool", "path", "capability"])
      expect(isSensitiveKey(k)).toBe(false);
  });

  test("Anthropic-style keys are redacted even unregistered; credential env vars are registered at open", async () => {
    const d = dir();
    const envKey = "AAOS_TEST_AUDIT_API_KEY";
    const envVal = "env-secret-value-0123456789";
    process.env[envKey] = envVal;
    try {
      const log = await AuditLog.open(d);
      await log.append({ kind: "x", msg: "key is sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv", other: `has ${envVal} in it` });
      await log.close();
      const bytes = allBytes(d);
      expect(bytes).not.toContain("sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv");
      expect(bytes).not.toContain(envVal);
    } finally {
      delete process.env[envKey];
    }
  });

  test("a secret registered later applies to later records", async () => {
    const d = dir();
    const log = await AuditLog.open(d);
    await log.append({ kind: "x", v: "late-secret-1234" });
    log.registerSecret("late-secret-1234");
    log.registerSecret("abc"); // too short to be a secret: ignored
    await log.append({ kind: "x", v: "late-secret-1234", w: "abcdef" });
    const [a, b] = (await log.query({})).events;
    expect(a!.v).toBe("late-secret-1234");
    expect(b!.v).toBe(REDACTED);
    expect(b!.w).toBe("abcdef");
    await log.close();
  });
});
