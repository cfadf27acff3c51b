// The journal of reversible effects (kernel/journal, docs/design.md
// "Reversibility"), what capture costs a file_write:
// - through a host-mode kernel on its unix socket, tool.invoke file_write of
//   4 KiB: overwriting an existing file (its 4 KiB pre-image is kept in the
//   journal) beside writing a new file (pre absent: only the row), the two
//   interleaved in the same run. Capture cannot be turned off, so the new
//   file is the baseline: the closest the kernel comes to a write without it;
// - the journal's absolute cost, measured directly: Journal.record + settle
//   of one 4 KiB pre-image beside a plain fsynced 4 KiB write (open, write,
//   fsync, close) in the same run; the ratio is a write with its journal
//   over the write alone (the goal: at most 1.5× for 4 KiB);
// - journal bytes per changed byte: journal.db + objects/ after N 4 KiB
//   pre-images (the db closed, its WAL checkpointed), over N × 4 KiB.
// Run directly: bun bench/run.ts journal
import { randomBytes } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  writeSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileState, Journal, type PathChange } from "../kernel/journal/index.ts";
import { startKernel } from "../test/host/harness.ts";
import { makeCtx } from "../test/unit/tools/tool-context.ts";
import fileWrite from "../kernel/tools/file_write.ts";
import type { Figure } from "./figure.ts";

const SIZE = 4096;
const WRITES = 300;
const DIRECT = 2_000;
const BYTES_N = 1_000;

function quantiles(ms: number[]): { p50: number; p99: number } {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { p50: at(0.5), p99: at(0.99) };
}

const us = (ms: number) => Math.round(ms * 1000);
/** 4 KiB of text, different every time (content-addressed pre-images never dedupe) */
const text = () => randomBytes(SIZE / 2).toString("hex");

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? dirBytes(p) : statSync(p).size;
  }
  return n;
}

async function throughKernel(): Promise<Figure[]> {
  const k = await startKernel({});
  const root = join(k.dataDir, "files", "bench");
  mkdirSync(root, { recursive: true });
  try {
    const { agent_id } = await k.client.call("agent.spawn", {
      manifest: `name: writer\nmodel: claude-haiku-4-5-20251001\ncapabilities:\n  - "file_write: ${root}/*"\n`,
    });
    const write = async (path: string) => {
      const t0 = performance.now();
      await k.client.call("tool.invoke", { agent_id, tool: "file_write", input: { path, content: text() } });
      return performance.now() - t0;
    };
    // the files to overwrite, and a warm-up of both kinds
    for (let i = 0; i < WRITES; i++) await write(join(root, `old-${i}.txt`));
    for (let i = 0; i < 50; i++) {
      await write(join(root, `warm-${i}.txt`));
      await write(join(root, `old-${i}.txt`));
    }
    const fresh: number[] = [];
    const over: number[] = [];
    for (let i = 0; i < WRITES; i++) {
      fresh.push(await write(join(root, `new-${i}.txt`)));
      over.push(await write(join(root, `old-${i}.txt`)));
    }
    const f = quantiles(fresh);
    const o = quantiles(over);
    return [
      {
        name: `tool.invoke file_write 4 KiB overwrite, pre-image kept, p50 (of ${WRITES})`,
        value: us(o.p50),
        unit: "µs",
        baseline: { name: "new file (pre absent, nothing kept) p50", value: us(f.p50) },
      },
      {
        name: `tool.invoke file_write 4 KiB overwrite, pre-image kept, p99`,
        value: us(o.p99),
        unit: "µs",
        baseline: { name: "new file p99", value: us(f.p99) },
      },
    ];
  } finally {
    await k.stop();
    rmSync(k.dir, { recursive: true, force: true });
  }
}

function direct(): Figure[] {
  const dir = mkdtempSync(join(tmpdir(), "aaos-bench-journal-"));
  try {
    const journal = new Journal({ dir: join(dir, "journal"), maxBytes: 1 << 40, maxPreImageBytes: 16 << 20 });
    const files = join(dir, "files");
    mkdirSync(files);
    const who = { agentId: "ag-bench", lineage: ",ag-bench,", tool: "file_write", callSeq: 1 };
    const change = (i: number): PathChange => {
      const pre = Buffer.from(text());
      return {
        path: join(files, `f-${i}.txt`),
        pre: fileState(pre, 0o644),
        preContent: pre,
        post: fileState(Buffer.from(text()), 0o644),
      };
    };
    const plain = (i: number, data: Uint8Array) => {
      const t0 = performance.now();
      const fd = openSync(join(files, `w-${i % 64}.txt`), "w", 0o644);
      try {
        writeSync(fd, data);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      return performance.now() - t0;
    };
    const record = (c: PathChange) => {
      const t0 = performance.now();
      journal.settle(journal.record(who, [c]), true);
      return performance.now() - t0;
    };
    for (let i = 0; i < 100; i++) {
      plain(i, Buffer.from(text()));
      record(change(i));
    }
    const writes: number[] = [];
    const journaled: number[] = [];
    const rowOnly: number[] = [];
    const both: number[] = [];
    for (let i = 0; i < DIRECT; i++) {
      const c = change(i);
      const data = Buffer.from(text());
      const w = plain(i, data);
      const j = record(c);
      // a new file: the row alone, no pre-image
      rowOnly.push(record({ ...c, path: c.path + ".new", pre: { kind: "absent" }, preContent: null }));
      writes.push(w);
      journaled.push(j);
      both.push(w + j);
    }
    journal.close();
    const w = quantiles(writes);
    const j = quantiles(journaled);
    const b = quantiles(both);
    const r = quantiles(rowOnly);

    // bytes per changed byte, in a fresh journal
    const bdir = join(dir, "bytes");
    const bj = new Journal({ dir: bdir, maxBytes: 1 << 40, maxPreImageBytes: 16 << 20 });
    bj.settle(bj.record(who, [change(-1)]), true); // created, so the empty db is not counted
    bj.close();
    const before = dirBytes(bdir);
    const bj2 = new Journal({ dir: bdir, maxBytes: 1 << 40, maxPreImageBytes: 16 << 20 });
    for (let i = 0; i < BYTES_N; i++) bj2.settle(bj2.record(who, [change(i)]), true);
    bj2.close();
    const grown = dirBytes(bdir) - before;
    return [
      {
        name: `Journal.record+settle, one 4 KiB pre-image, p50 (of ${DIRECT})`,
        value: us(j.p50),
        unit: "µs",
        baseline: { name: "plain fsynced 4 KiB write p50", value: us(w.p50) },
      },
      {
        name: `Journal.record+settle, one 4 KiB pre-image, p99`,
        value: us(j.p99),
        unit: "µs",
        baseline: { name: "plain fsynced 4 KiB write p99", value: us(w.p99) },
      },
      {
        name: `Journal.record+settle, a new file's row (pre absent, no pre-image) p50`,
        value: us(r.p50),
        unit: "µs",
        baseline: { name: "plain fsynced 4 KiB write p50", value: us(w.p50) },
      },
      {
        name: `fsynced 4 KiB write + its journal p50 (goal ≤ 1.5×)`,
        value: us(b.p50),
        unit: "µs",
        baseline: { name: "the write alone p50", value: us(w.p50) },
      },
      {
        name: `fsynced 4 KiB write + its journal p99`,
        value: us(b.p99),
        unit: "µs",
        baseline: { name: "the write alone p99", value: us(w.p99) },
      },
      {
        name: `journal bytes per changed byte (journal.db + objects/ over ${BYTES_N} × 4 KiB pre-images)`,
        value: Math.round((grown / (BYTES_N * SIZE)) * 1000) / 1000,
        unit: "B/B",
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The file_write tool itself, run the same way twice in one process over the
 * same 4 KiB overwrites: once with the kernel's capture (a real Journal), once
 * with a capture that keeps nothing. No RPC and no audit around it: the
 * journal's share of the tool's own work, the strictest ratio.
 */
async function toolWithAndWithout(): Promise<Figure[]> {
  const dir = mkdtempSync(join(tmpdir(), "aaos-bench-tool-"));
  try {
    const root = join(dir, "files");
    mkdirSync(root, { recursive: true });
    const journal = new Journal({
      dir: join(dir, "state", "journal"),
      maxBytes: Number.MAX_SAFE_INTEGER,
      maxPreImageBytes: 16 * 1024 * 1024,
    });
    const real = makeCtx([`file_write: ${root}/*`]);
    real.journal = {
      begin(changes) {
        const seqs = journal.record(
          { agentId: "ag-bench", lineage: ",ag-bench,", tool: "file_write", callSeq: 1 },
          changes,
        );
        return {
          changes: [],
          done: () => journal.settle(seqs, true),
          failed: () => journal.settle(seqs, false),
        };
      },
    };
    const none = makeCtx([`file_write: ${root}/*`]);
    none.journal = { begin: () => ({ changes: [], done() {}, failed() {} }) };
    const files = Array.from({ length: 20 }, (_, i) => join(root, `f${i}.txt`));
    for (const f of files) writeFileSync(f, text());
    const timeIt = async (ctx: typeof real) => {
      const t0 = performance.now();
      await fileWrite.run(ctx, { path: files[Math.floor(Math.random() * files.length)]!, content: text() });
      return performance.now() - t0;
    };
    const withCapture: number[] = [];
    const without: number[] = [];
    for (let i = 0; i < 30; i++) await timeIt(i % 2 ? real : none);
    for (let i = 0; i < WRITES; i++) {
      // alternated, so both see the same disk and the same load
      withCapture.push(await timeIt(real));
      without.push(await timeIt(none));
    }
    journal.close();
    const a = quantiles(withCapture);
    const b = quantiles(without);
    return [
      {
        name: `file_write tool, 4 KiB overwrite, with capture p50 (of ${WRITES}; goal ≤ 1.5×)`,
        value: us(a.p50),
        unit: "µs",
        baseline: { name: "the same tool with a capture that keeps nothing p50", value: us(b.p50) },
      },
      {
        name: "file_write tool, 4 KiB overwrite, with capture p99",
        value: us(a.p99),
        unit: "µs",
        baseline: { name: "without capture p99", value: us(b.p99) },
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchJournal(): Promise<Figure[]> {
  const d = direct();
  const kernel = await throughKernel();
  // the new-file baseline journals a row too: without capture at all a file_write would take about that much less
  const row = d.find((f) => f.name.includes("a new file's row"))!.value;
  const over = kernel[0]!;
  const none = over.baseline!.value - row;
  const tool = await toolWithAndWithout();
  return [
    ...tool,
    ...kernel,
    {
      name: "tool.invoke file_write 4 KiB overwrite with capture p50",
      value: over.value,
      unit: "µs",
      baseline: { name: "estimated without capture (new-file p50 − the row's record+settle p50)", value: none },
    },
    ...d,
  ];
}
