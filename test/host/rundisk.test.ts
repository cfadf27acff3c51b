// make run's run-only disk (qemu/rundisk.ts) on a real GPT disk made by
// image/mkdisk.sh from stand-in boot and system partitions and the shipped
// image/config: the image is never written, the copy's AAOS-CFG is the
// image's plus the host's provider settings, and the data partition survives
// from one run to the next. The boot that proves the guest uses them is
// test/e2e/make-run.test.ts.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createHash } from "node:crypto";
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseKernelConfig } from "../../kernel/config.ts";
import { gptPartitions } from "../../qemu/disk.ts";
import { ROOT } from "../../qemu/harness.ts";
import { guestUrl, prepareRunDisk, readFatFile } from "../../qemu/rundisk.ts";

const PATH = `${process.env.PATH}:/usr/sbin:/sbin`;
const TOOLS = ["genimage", "mkfs.vfat", "mmd", "mcopy", "mtype", "mkfs.ext4", "mkfs.erofs"];
const missing = TOOLS.filter((t) => !Bun.which(t, { PATH }));
if (missing.length) throw new Error(`test/host/rundisk.test.ts needs ${missing.join(", ")} (make apt-deps)`);

let dir = "";
let image = "";
let runDir = "";
const sha = (f: string) => createHash("sha256").update(readFileSync(f)).digest("hex");
const cfgOffset = (img: string) => gptPartitions(img).find((p) => p.name === "AAOS-CFG")!.firstLba * 512;
const dataLba = (img: string) => gptPartitions(img).find((p) => p.name === "AAOS-DATA")!.firstLba;

// a copy of a 1.2 GB (sparse) A/B image and its AAOS-CFG rewritten: seconds on a busy machine
setDefaultTimeout(60_000);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "aaos-rundisk-"));
  mkdirSync(join(dir, "root/sbin"), { recursive: true });
  writeFileSync(join(dir, "root/sbin/init"), "stand-in");
  writeFileSync(join(dir, "bzImage"), Buffer.alloc(1 << 20, 0x5a));
  const env = { ...process.env, PATH };
  let r = Bun.spawnSync(["mkfs.erofs", "--quiet", "-T0", join(dir, "sys.erofs"), join(dir, "root")], { env });
  if (r.exitCode !== 0) throw new Error(`mkfs.erofs: ${r.stderr}`);
  image = join(dir, "aaos.img");
  r = Bun.spawnSync(
    [join(ROOT, "image/mkdisk.sh"), "--bzimage", join(dir, "bzImage"), "--sys", join(dir, "sys.erofs")].concat([
      "--config",
      join(ROOT, "image/config"),
      "--out",
      image,
      "--data-mb",
      "16",
    ]),
    { env },
  );
  if (r.exitCode !== 0) throw new Error(`mkdisk: ${r.stderr}`);
  runDir = join(dir, "run");
  mkdirSync(runDir);
});
afterAll(() => dir && rmSync(dir, { recursive: true, force: true }));

describe("make run's run-only disk", () => {
  test("loopback URLs of the host become 10.0.2.2, others stay", () => {
    expect(guestUrl("http://127.0.0.1:4000")).toBe("http://10.0.2.2:4000");
    expect(guestUrl("http://localhost/v1")).toBe("http://10.0.2.2/v1");
    expect(guestUrl("http://[::1]:8000/v1")).toBe("http://10.0.2.2:8000/v1");
    expect(guestUrl("https://api.anthropic.com")).toBe("https://api.anthropic.com");
    expect(guestUrl("http://localhost.example.com")).toBe("http://localhost.example.com");
  });

  test("no provider in the environment: a copy with the image's AAOS-CFG as is", () => {
    const before = sha(image);
    const d = prepareRunDisk({ source: image, runDir, env: {} });
    expect(d.image).toBe(join(runDir, "aaos.img"));
    expect(d.fresh).toBe(true);
    expect(d.notes).toEqual([]);
    expect(sha(d.image)).toBe(before);
    expect(sha(image)).toBe(before);
  });

  test("ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL: on the copy's AAOS-CFG only, kernel.yaml still valid and commented", () => {
    const before = sha(image);
    const d = prepareRunDisk({
      source: image,
      runDir,
      env: { ANTHROPIC_API_KEY: "sk-ant-rundisk-0001", ANTHROPIC_BASE_URL: "http://127.0.0.1:4010" },
    });
    expect(d.fresh).toBe(false);
    expect(sha(image)).toBe(before);
    const off = cfgOffset(d.image);
    expect(readFatFile(d.image, off, "secrets/anthropic_api_key")).toBe("sk-ant-rundisk-0001\n");
    expect(readFatFile(image, cfgOffset(image), "secrets/anthropic_api_key")).toBeNull();
    const yaml = readFatFile(d.image, off, "kernel.yaml")!;
    const cfg = parseKernelConfig(yaml);
    expect(cfg.inference!.providers.anthropic).toMatchObject({
      api_key_file: "secrets/anthropic_api_key",
      base_url: "http://10.0.2.2:4010",
    });
    // the rest of the operator's file, comments included, is kept
    expect(yaml).toContain("# The supervision dashboard");
    expect(cfg.web.listen).toBe("0.0.0.0:8080");
    expect(d.notes.join("\n")).toContain("the host's http://127.0.0.1:4010");
    expect(d.notes.join("\n")).not.toContain("sk-ant-rundisk-0001");
    expect(readFileSync(d.image).includes("sk-ant-rundisk-0001")).toBe(true);
    expect(readFileSync(image).includes("sk-ant-rundisk-0001")).toBe(false);
  });

  test("the next run: the data partition kept, AAOS-CFG afresh (no key left from the run before)", () => {
    const run = join(runDir, "aaos.img");
    // something a run wrote on AAOS-DATA
    const fd = openSync(run, "r+");
    writeSync(fd, Buffer.from("written by a run"), 0, 16, dataLba(run) * 512 + 8192 * 512);
    closeSync(fd);
    const d = prepareRunDisk({ source: image, runDir, env: {} });
    expect(d.fresh).toBe(false);
    expect(readFatFile(d.image, cfgOffset(d.image), "secrets/anthropic_api_key")).toBeNull();
    const back = Buffer.alloc(16);
    const fd2 = openSync(run, "r");
    readSync(fd2, back, 0, 16, dataLba(run) * 512 + 8192 * 512);
    closeSync(fd2);
    expect(back.toString()).toBe("written by a run");
  });

  test("OPENAI_BASE_URL, OPENAI_API_KEY, OPENAI_MODEL: an endpoint the kernel accepts", () => {
    const d = prepareRunDisk({
      source: image,
      runDir,
      env: {
        OPENAI_BASE_URL: "http://localhost:8000/v1",
        OPENAI_API_KEY: "sk-oai-rundisk",
        OPENAI_MODEL: "llama-3.1-8b",
      },
    });
    const off = cfgOffset(d.image);
    expect(readFatFile(d.image, off, "secrets/openai_api_key")).toBe("sk-oai-rundisk\n");
    const cfg = parseKernelConfig(readFatFile(d.image, off, "kernel.yaml")!);
    expect(cfg.inference!.providers.openai_compatible).toEqual([
      {
        name: "host",
        base_url: "http://10.0.2.2:8000/v1",
        api_key_file: "secrets/openai_api_key",
        models: ["llama-3.1-8b"],
      },
    ]);
    // no Anthropic key given: the image's setting stays as it was
    expect(readFatFile(d.image, off, "secrets/anthropic_api_key")).toBeNull();
  });

  test("a rebuilt image: a fresh copy (the data partition starts empty)", () => {
    const t = new Date(Date.now() + 5000);
    utimesSync(image, t, t);
    const d = prepareRunDisk({ source: image, runDir, env: {} });
    expect(d.fresh).toBe(true);
    expect(sha(d.image)).toBe(sha(image));
  });
});
