// RpcServer's per-peer flow, with a fake transport: the in-flight and
// unsent-output bounds pause the peer, a peer whose replies pile up anyway is
// dropped, and a peer whose input ends gets every reply before io.end().
import { describe, expect, test } from "bun:test";
import type { Logger } from "pino";
import { z } from "zod";
import { KernelConfigSchema } from "../../../kernel/config.ts";
import {
  HARD_OUTPUT_FACTOR,
  RPC_FLOW_DEFAULTS,
  RpcServer,
  type MethodTable,
  type PeerIO,
  type ServerOptions,
} from "../../../kernel/rpc/server.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const req = (id: number, method: string, params: object = {}) =>
  JSON.stringify({ jsonrpc: "2.0", id, method, params }) + "\n";

function fakeLog() {
  const warnings: { obj: any; msg: string }[] = [];
  const log = {
    warn: (obj: any, msg: string) => warnings.push({ obj, msg }),
    error: () => {},
    debug: () => {},
    info: () => {},
  } as unknown as Logger;
  return { log, warnings };
}

/** a transport whose unsent bytes only go down when the test says the peer read them */
function fakeIO(opts: { end?: boolean; reads?: boolean } = {}) {
  const io = {
    lines: [] as any[],
    unsentBytes: 0,
    paused: false,
    ended: 0,
    destroyed: false,
    write(text: string) {
      io.lines.push(JSON.parse(text));
      if (!opts.reads) io.unsentBytes += Buffer.byteLength(text);
    },
    unsent: () => io.unsentBytes,
    pause: () => void (io.paused = true),
    resume: () => void (io.paused = false),
    end: opts.end === false ? undefined : () => void (io.ended += 1),
    destroy: () => void (io.destroyed = true),
    replies: () => io.lines.filter((l) => "id" in l),
  };
  return io satisfies PeerIO;
}

/** methods: ping; slow (answers when the test opens its gate); big (a reply of `bytes` bytes) */
function makeServer(opts: Partial<ServerOptions> = {}) {
  const gates: (() => void)[] = [];
  let started = 0;
  const methods: MethodTable = {
    ping: { params: z.strictObject({}), handler: () => ({ pong: true }) },
    slow: {
      params: z.strictObject({}),
      handler: () => {
        started++;
        return new Promise((resolve) => gates.push(() => resolve({ done: true })));
      },
    },
    big: {
      params: z.strictObject({ bytes: z.number() }),
      handler: (p: { bytes: number }) => ({ data: "x".repeat(p.bytes) }),
    },
  };
  const { log, warnings } = fakeLog();
  const server = new RpcServer(methods, { maxLineBytes: 1024 * 1024, log, ...opts });
  return {
    server,
    warnings,
    started: () => started,
    open: (n = gates.length) => gates.splice(0, n).forEach((g) => g()),
  };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("requests in flight", () => {
  test("past maxInFlight the peer is paused and lines wait; each answer lets the next one start", async () => {
    const s = makeServer({ maxInFlight: 3 });
    const io = fakeIO();
    const peer = s.server.attach("fake", io);
    peer.feed(enc(Array.from({ length: 10 }, (_, i) => req(i, "slow")).join("")));
    await tick();
    expect(s.started()).toBe(3);
    expect(peer.inFlight).toBe(3);
    expect(io.paused).toBe(true);
    s.open(1);
    await tick();
    expect(s.started()).toBe(4);
    expect(io.replies()).toHaveLength(1);
    expect(io.paused).toBe(true);
    for (let i = 0; i < 10 && s.started() < 10; i++) {
      s.open();
      await tick();
    }
    s.open();
    await peer.idle();
    await tick();
    expect(
      io
        .replies()
        .map((r) => r.id)
        .sort((a, b) => a - b),
    ).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(io.paused).toBe(false);
    expect(peer.inFlight).toBe(0);
  });
});

describe("unsent output", () => {
  test("past the soft cap the peer is paused; drained() resumes it and the waiting lines run", async () => {
    // what is in flight still answers: the output cap stops new lines from starting
    const s = makeServer({ maxPendingOutputBytes: 1000, maxInFlight: 5 });
    const io = fakeIO();
    const peer = s.server.attach("fake", io);
    const ready = io.unsentBytes;
    peer.feed(enc(Array.from({ length: 40 }, (_, i) => req(i, "ping")).join("")));
    for (let i = 0; i < 5; i++) await tick();
    expect(io.paused).toBe(true);
    const answered = io.replies().length;
    expect(answered).toBeLessThan(40);
    expect(io.unsentBytes).toBeGreaterThan(1000);
    expect(io.unsentBytes).toBeLessThan(1000 + ready + 100 * 5);
    // the peer reads everything
    io.unsentBytes = 0;
    peer.drained();
    for (let i = 0; i < 10 && io.replies().length < 40; i++) {
      io.unsentBytes = 0;
      peer.drained();
      await tick();
    }
    expect(io.replies()).toHaveLength(40);
    io.unsentBytes = 0;
    peer.drained();
    expect(io.paused).toBe(false);
  });

  test("output piling up past the hard cap while the peer is behind drops it, with a warning; others go on", async () => {
    const soft = 10_000;
    const s = makeServer({ maxPendingOutputBytes: soft });
    const io = fakeIO();
    const other = fakeIO({ reads: true });
    const peer = s.server.attach("fake", io);
    s.server.attach("fake", other);
    expect(s.server.connections.size).toBe(2);
    // notifications to a peer that reads nothing count against the same cap
    for (let i = 0; i < 1000 && !io.destroyed; i++)
      s.server.broadcast("approval.requested", { id: `apr-${i}`, pad: "p".repeat(100) });
    expect(io.destroyed).toBe(true);
    expect(peer.conn.closed).toBe(true);
    expect(s.server.connections.size).toBe(1);
    expect(io.unsentBytes).toBeLessThanOrEqual(HARD_OUTPUT_FACTOR * soft + 300);
    expect(s.warnings[0]).toMatchObject({
      msg: "peer does not read its replies; dropping it",
      obj: { conn: peer.conn.id, transport: "fake", limit: HARD_OUTPUT_FACTOR * soft },
    });
    expect(s.warnings[0]!.obj.unsent_bytes).toBeGreaterThan(HARD_OUTPUT_FACTOR * soft);
    // the peer that reads got every notification and stays
    expect(other.destroyed).toBe(false);
    const dropped = io.lines.length;
    s.server.broadcast("approval.requested", { id: "apr-last" });
    expect(other.lines.at(-1).params.id).toBe("apr-last");
    expect(io.lines).toHaveLength(dropped);
  });

  test("a single reply larger than the hard cap reaches a peer that is not behind", async () => {
    const s = makeServer({ maxPendingOutputBytes: 1000 });
    const io = fakeIO();
    const peer = s.server.attach("fake", io);
    io.unsentBytes = 0;
    peer.feed(enc(req(1, "big", { bytes: 50_000 })));
    await peer.idle();
    expect(io.destroyed).toBe(false);
    expect(io.replies()[0].result.data).toHaveLength(50_000);
    expect(io.paused).toBe(true);
  });
});

describe("end of input", () => {
  test("every reply is written before io.end(), which comes once; idle() waits for them", async () => {
    const s = makeServer();
    const io = fakeIO();
    const peer = s.server.attach("fake", io);
    peer.feed(enc(req(1, "slow") + req(2, "ping") + '{"jsonrpc":"2.0","id":3,"method":"ping"}'));
    peer.endInput();
    await tick();
    expect(io.ended).toBe(0);
    let idle = false;
    void peer.idle().then(() => (idle = true));
    await tick();
    expect(idle).toBe(false);
    s.open();
    await tick();
    await tick();
    expect(idle).toBe(true);
    // the last line had no newline: answered all the same
    expect(
      io
        .replies()
        .map((r) => r.id)
        .sort(),
    ).toEqual([1, 2, 3]);
    expect(io.ended).toBe(1);
    peer.endInput();
    peer.drained();
    expect(io.ended).toBe(1);
  });

  test("a transport without end(): the connection closes once everything is answered", async () => {
    const s = makeServer();
    const io = fakeIO({ end: false });
    const peer = s.server.attach("fake", io);
    peer.feed(enc(req(1, "slow")));
    peer.endInput();
    expect(peer.conn.closed).toBe(false);
    s.open();
    await peer.idle();
    await tick();
    expect(io.replies()).toHaveLength(1);
    expect(peer.conn.closed).toBe(true);
    expect(s.server.connections.size).toBe(0);
  });

  test("a peer that goes: lines not started are forgotten, late replies are not written", async () => {
    const s = makeServer({ maxInFlight: 1 });
    const io = fakeIO();
    const peer = s.server.attach("fake", io);
    peer.feed(enc(req(1, "slow") + req(2, "slow")));
    await tick();
    peer.close();
    await peer.idle();
    s.open();
    await tick();
    expect(s.started()).toBe(1);
    expect(io.replies()).toHaveLength(0);
  });
});

test("the server's defaults are kernel.yaml's", () => {
  const rpc = KernelConfigSchema.parse({}).rpc;
  expect(rpc.max_pending_output_bytes).toBe(RPC_FLOW_DEFAULTS.maxPendingOutputBytes);
  expect(rpc.max_in_flight).toBe(RPC_FLOW_DEFAULTS.maxInFlight);
});
