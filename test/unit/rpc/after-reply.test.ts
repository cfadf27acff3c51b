// MethodContext.afterReply: what a method asks to run after its reply runs
// once the transport has taken every byte of that reply (no fixed delay), or
// once the peer is gone; system.shutdown relies on it.
import { expect, test } from "bun:test";
import type { Logger } from "pino";
import { z } from "zod";
import { RpcServer, type MethodTable, type PeerIO } from "../../../kernel/rpc/server.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const req = (id: number | undefined, method: string) =>
  JSON.stringify({ jsonrpc: "2.0", ...(id === undefined ? {} : { id }), method, params: {} }) + "\n";
const tick = () => new Promise((r) => setTimeout(r, 0));
const log = { error: () => {}, warn: () => {}, debug: () => {}, info: () => {} } as unknown as Logger;

/** unsent bytes go down only when the test calls take() */
function slowIO() {
  const io = {
    lines: [] as any[],
    unsentBytes: 0,
    write(text: string) {
      io.lines.push(JSON.parse(text));
      io.unsentBytes += Buffer.byteLength(text);
    },
    unsent: () => io.unsentBytes,
  };
  return io satisfies PeerIO;
}

function setup() {
  const events: string[] = [];
  const methods: MethodTable = {
    bye: {
      params: z.strictObject({}),
      handler: (_p, ctx) => {
        ctx.afterReply(() => events.push("after bye"));
        return { ok: true };
      },
    },
    fails: {
      params: z.strictObject({}),
      handler: (_p, ctx) => {
        ctx.afterReply(() => events.push("after fails"));
        throw new Error("no");
      },
    },
  };
  return { events, server: new RpcServer(methods, { maxLineBytes: 4096, log }) };
}

test("the hook waits for the transport to take the reply, not a timer", async () => {
  const { events, server } = setup();
  const io = slowIO();
  const peer = server.attach("fake", io);
  peer.feed(enc(req(1, "bye")));
  await tick();
  expect(io.lines).toEqual([{ jsonrpc: "2.0", id: 1, result: { ok: true } }]);
  await new Promise((r) => setTimeout(r, 80));
  expect(events).toEqual([]);
  // part of it taken: still waiting
  io.unsentBytes = 5;
  peer.drained();
  expect(events).toEqual([]);
  io.unsentBytes = 0;
  peer.drained();
  expect(events).toEqual(["after bye"]);
  peer.drained();
  expect(events).toEqual(["after bye"]);
});

test("output written after the reply does not hold the hook back", async () => {
  const { events, server } = setup();
  const io = slowIO();
  const peer = server.attach("fake", io);
  peer.feed(enc(req(1, "bye")));
  await tick();
  const replyBytes = io.unsentBytes;
  peer.conn.notify("agent.output", { text: "x".repeat(100) });
  io.unsentBytes -= replyBytes; // the reply is gone, the notification is not
  peer.drained();
  expect(events).toEqual(["after bye"]);
});

test("a transport that says nothing about unsent bytes: right after the write", async () => {
  const { events, server } = setup();
  const lines: string[] = [];
  const peer = server.attach("fake", { write: (t) => void lines.push(t) });
  peer.feed(enc(req(1, "bye")));
  await tick();
  expect(lines.length).toBe(1);
  expect(events).toEqual(["after bye"]);
});

test("the peer going away, an error reply, and a notification all still run the hook", async () => {
  const a = setup();
  const io = slowIO();
  const peer = a.server.attach("fake", io);
  peer.feed(enc(req(1, "bye")));
  await tick();
  expect(a.events).toEqual([]);
  peer.close();
  expect(a.events).toEqual(["after bye"]);

  const b = setup();
  const lines: any[] = [];
  const p2 = b.server.attach("fake", { write: (t) => void lines.push(JSON.parse(t)) });
  p2.feed(enc(req(2, "fails") + req(undefined, "bye")));
  await tick();
  expect(lines).toEqual([{ jsonrpc: "2.0", id: 2, error: { code: -32603, message: "Internal error: no" } }]);
  expect(b.events.sort()).toEqual(["after bye", "after fails"]);
});
