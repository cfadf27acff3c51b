// Audit log throughput as the kernel uses it: 64 concurrent appenders,
// every append resolving only once durable (group commit: one write and one
// fdatasync per group). Beside it, measured in the same run on the same
// filesystem: (a) a bare appendFileSync + fdatasync per record loop (what
// durability costs without grouping), and (b) the same log with durability
// "none" (what the fdatasync costs with grouping). Also verify() streaming
// the chain back from disk beside a bare read + split + JSON.parse of the
// same files (medians of alternating rounds).
import * as fs from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditLog, type AuditIO } from "../kernel/audit/index.ts";
import type { Figure } from "./figure.ts";

const TOTAL = 40_000;
const APPENDERS = 64;
const BASELINE_MAX = 20_000;
const BASELINE_MS = 3_000;
const VERIFY_ROUNDS = 5;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function event(i: number) {
  return {
    kind: i % 2 ? "tool.call" : "tool.result",
    agent_id: `agent-${i % 32}`,
    tool: "file_read",
    input: { path: `/data/project/notes-${i}.md` },
    ok: true,
    output: { bytes: 1234 + (i % 100) },
  };
}

async function appendRate(
  dir: string,
  durability: "fsync" | "none",
): Promise<{ rate: number; syncs: number; log: AuditLog }> {
  let syncs = 0;
  const io: Partial<AuditIO> = {
    fdatasync: (fd) =>
      new Promise((res, rej) =>
        fs.fdatasync(fd, (e) => {
          syncs++;
          e ? rej(e) : res();
        }),
      ),
  };
  const log = await AuditLog.open(dir, { durability, io, registerEnvSecrets: false });
  for (let i = 0; i < 1000; i++) await log.append(event(i)); // warm up
  syncs = 0;
  let sent = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: APPENDERS }, async () => {
      while (sent < TOTAL) {
        const i = sent++;
        await log.append(event(i));
      }
    }),
  );
  const rate = TOTAL / ((performance.now() - t0) / 1000);
  return { rate, syncs, log };
}

function bareAppendFsync(dir: string): number {
  const fd = fs.openSync(join(dir, "bare.jsonl"), "a");
  try {
    for (let i = 0; i < 200; i++) {
      fs.appendFileSync(fd, JSON.stringify(event(i)) + "\n");
      fs.fdatasyncSync(fd);
    }
    let n = 0;
    const t0 = performance.now();
    while (n < BASELINE_MAX && performance.now() - t0 < BASELINE_MS) {
      fs.appendFileSync(fd, JSON.stringify({ seq: n, ...event(n) }) + "\n");
      fs.fdatasyncSync(fd);
      n++;
    }
    return n / ((performance.now() - t0) / 1000);
  } finally {
    fs.closeSync(fd);
  }
}

function bareReadParse(dir: string): number {
  const t0 = performance.now();
  let n = 0;
  for (const name of fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".jsonl"))
    .sort()) {
    for (const line of fs.readFileSync(join(dir, name), "utf8").split("\n")) {
      if (!line) continue;
      JSON.parse(line);
      n++;
    }
  }
  return n / ((performance.now() - t0) / 1000);
}

export async function benchAudit(): Promise<Figure[]> {
  const root = mkdtempSync(join(tmpdir(), "aaos-bench-audit-"));
  try {
    fs.mkdirSync(join(root, "bare"));
    const bare = bareAppendFsync(join(root, "bare"));
    const grouped = await appendRate(join(root, "fsync"), "fsync");
    const head = grouped.log.head().seq;
    const none = await appendRate(join(root, "none"), "none");
    await none.log.close();

    // verify and the bare parse alternate, each first in every other round, so
    // neither always runs on a warmer cache or a fresher heap; medians, since
    // one ~50 ms run on a shared machine varies by half
    const verifyRates: number[] = [];
    const parseRates: number[] = [];
    for (let r = 0; r < VERIFY_ROUNDS; r++) {
      if (r % 2) parseRates.push(bareReadParse(join(root, "fsync")));
      const t0 = performance.now();
      const v = await grouped.log.verify();
      verifyRates.push(v.events / ((performance.now() - t0) / 1000));
      if (!v.ok || v.events !== head) throw new Error(`verify after the benchmark failed: ${JSON.stringify(v)}`);
      if (r % 2 === 0) parseRates.push(bareReadParse(join(root, "fsync")));
    }
    await grouped.log.close();
    const verifyRate = median(verifyRates);
    const parseRate = median(parseRates);

    const groupName = `audit.append, fsync group commit, ${APPENDERS} appenders`;
    return [
      {
        name: groupName,
        value: Math.round(grouped.rate),
        unit: "records/s",
        baseline: { name: "appendFileSync+fdatasync per record", value: Math.round(bare) },
      },
      {
        name: groupName,
        value: Math.round(grouped.rate),
        unit: "records/s",
        baseline: { name: `audit.append, durability none, ${APPENDERS} appenders`, value: Math.round(none.rate) },
      },
      {
        name: "records per fdatasync (group size)",
        value: grouped.syncs ? TOTAL / grouped.syncs : TOTAL,
        unit: "records",
        baseline: { name: "per-record loop", value: 1 },
      },
      {
        name: `audit.verify, streaming from disk, median of ${VERIFY_ROUNDS}`,
        value: Math.round(verifyRate),
        unit: "records/s",
        baseline: {
          name: `readFileSync+split+JSON.parse of the same segments, median of ${VERIFY_ROUNDS}`,
          value: Math.round(parseRate),
        },
      },
    ];
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const { printFigures } = await import("./figure.ts");
  printFigures("audit log", await benchAudit());
}
