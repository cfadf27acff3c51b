// PID 1's SNTP client (init/time.ts) against SNTP servers on loopback that
// answer crafted times. The one edge replaced is the clock it sets: a test
// must not step the host's, so it steps an offset kept here.
import { afterEach, describe, expect, test } from "bun:test";
import pino from "pino";
import {
  buildSntpRequest,
  ntpToMs,
  offsetAndDelay,
  parseSntpReply,
  TimeSync,
  type ClockStep,
  type SystemClock,
} from "../../../init/time.ts";

const log = pino({ level: "silent" });
const NTP_UNIX_OFFSET_S = 2_208_988_800;

/** Unix ms as an NTP timestamp at b[offset..offset+8] (written here, not with the client's code) */
function putNtp(b: Uint8Array, offset: number, ms: number): void {
  const dv = new DataView(b.buffer, b.byteOffset);
  const secs = Math.floor(ms / 1000);
  dv.setUint32(offset, (secs + NTP_UNIX_OFFSET_S) % 2 ** 32);
  dv.setUint32(offset + 4, Math.floor(((ms - secs * 1000) / 1000) * 2 ** 32));
}

interface Answer {
  /** the server's time, Unix ms */
  time: number;
  stratum?: number;
  li?: number;
  mode?: number;
  /** the originate timestamp: the request's transmit timestamp unless given */
  originate?: Uint8Array;
  refid?: string;
}

function reply(req: Uint8Array, a: Answer): Uint8Array {
  const p = new Uint8Array(48);
  p[0] = ((a.li ?? 0) << 6) | (4 << 3) | (a.mode ?? 4);
  p[1] = a.stratum ?? 2;
  p[2] = 6;
  if (a.refid) p.set(Buffer.from(a.refid), 12);
  p.set(a.originate ?? req.subarray(40, 48), 24);
  putNtp(p, 32, a.time);
  putNtp(p, 40, a.time);
  return p;
}

interface Server {
  port: number;
  requests: Uint8Array[];
  stop(): void;
}

/** an SNTP server on addr:port (port 0: any free one) whose answer to each request is answer(req) */
async function sntpServer(addr: string, answer: (req: Uint8Array) => Answer | null, port = 0): Promise<Server> {
  const requests: Uint8Array[] = [];
  const s = await Bun.udpSocket({
    hostname: addr,
    port,
    socket: {
      data(sock, buf, fromPort, fromAddr) {
        const req = new Uint8Array(buf);
        requests.push(req);
        const a = answer(req);
        if (a) sock.send(reply(req, a), fromPort, fromAddr);
      },
    },
  });
  return { port: s.port, requests, stop: () => s.close() };
}

/** the clock the client sets: real time plus an offset it steps */
function testClock() {
  const c = {
    offset: 0,
    steps: [] as number[],
    slews: [] as number[],
    now: () => Date.now() + c.offset,
    step(d: number) {
      c.offset += d;
      c.steps.push(d);
    },
    slew(d: number) {
      c.slews.push(d);
    },
  };
  return c satisfies SystemClock;
}

const running: { stop(): void }[] = [];
afterEach(() => {
  for (const r of running.splice(0)) r.stop();
});

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await Bun.sleep(10);
  }
}

describe("packets", () => {
  test("a request is 48 bytes, version 4, client mode, the nonce as its transmit timestamp", () => {
    const nonce = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const p = buildSntpRequest(nonce);
    expect(p.length).toBe(48);
    expect(p[0]).toBe(0x23);
    expect(Array.from(p.subarray(40, 48))).toEqual(Array.from(nonce));
    expect(p.subarray(0, 40).some((b, i) => i > 0 && b !== 0)).toBe(false);
  });
  test("NTP timestamps: fractions, and the era that begins in 2036", () => {
    const b = new Uint8Array(8);
    putNtp(b, 0, Date.UTC(2026, 11, 1, 12, 0, 0, 500));
    expect(ntpToMs(b, 0)).toBe(Date.UTC(2026, 11, 1, 12, 0, 0, 500));
    putNtp(b, 0, Date.UTC(2040, 0, 1));
    expect(new DataView(b.buffer).getUint32(0)).toBeLessThan(0x80000000); // wrapped
    expect(ntpToMs(b, 0)).toBe(Date.UTC(2040, 0, 1));
  });
  test("a reply must answer our request from a synchronised server", () => {
    const nonce = crypto.getRandomValues(new Uint8Array(8));
    const req = buildSntpRequest(nonce);
    const t = Date.now();
    expect(parseSntpReply(reply(req, { time: t }), nonce)).toEqual({ stratum: 2, receive: t, transmit: t });
    expect(parseSntpReply(reply(req, { time: t, originate: new Uint8Array(8) }), nonce)).toEqual({
      error: "a reply to another request",
    });
    expect(parseSntpReply(reply(req, { time: t, stratum: 0, refid: "RATE" }), nonce)).toEqual({
      error: "kiss-o'-death RATE",
    });
    expect(parseSntpReply(reply(req, { time: t, li: 3 }), nonce)).toEqual({
      error: "the server's clock is not synchronised",
    });
    expect(parseSntpReply(reply(req, { time: t, mode: 3 }), nonce)).toHaveProperty("error");
    expect(parseSntpReply(reply(req, { time: t }).subarray(0, 47), nonce)).toHaveProperty("error");
  });
  test("offset and delay (RFC 4330)", () => {
    // sent at 1000, the server received at 1510 and answered at 1520, back at 1040: 500 ahead, 30 on the wire
    expect(offsetAndDelay(1000, { stratum: 1, receive: 1510, transmit: 1520 }, 1040)).toEqual({
      offset: 495,
      delay: 30,
    });
  });
});

describe("the client", () => {
  test("a server an hour ahead: the clock is stepped once and the step reported, then slewed", async () => {
    const ahead = 3_600_000;
    const server = await sntpServer("127.0.0.1", () => ({ time: Date.now() + ahead, stratum: 3 }));
    const clock = testClock();
    const sync = new TimeSync({ servers: () => ["127.0.0.1"], port: server.port, clock, log, pollMs: 50 });
    running.push(sync, server);
    expect(await sync.first).toBe(true);
    expect(clock.steps).toHaveLength(1);
    expect(Math.abs(clock.steps[0]! - ahead)).toBeLessThan(250);
    // the step came before anyone listened (the audit log opens later): it is handed over, once
    const steps: ClockStep[] = [];
    sync.onStep((s) => steps.push(s));
    expect(steps).toHaveLength(1);
    expect(steps[0]).toMatchObject({ server: "127.0.0.1", stratum: 3 });
    expect(Math.abs(steps[0]!.offset_ms - ahead)).toBeLessThan(250);
    expect(Math.abs(Date.parse(steps[0]!.to) - Date.parse(steps[0]!.from) - ahead)).toBeLessThan(250);
    const st = sync.status();
    expect(st).toMatchObject({ synced: true, servers: ["127.0.0.1"], server: "127.0.0.1", stratum: 3 });
    expect(st.last_step?.offset_ms).toBe(steps[0]!.offset_ms);
    expect(Math.abs(Date.parse(st.last_sync!) - Date.now())).toBeLessThan(1000);
    expect(st.error).toBeUndefined();
    // it keeps polling: the clock is right now, so the next answers are slewed in, not stepped
    await until(() => server.requests.length >= 3);
    await until(() => clock.slews.length >= 1);
    expect(clock.steps).toHaveLength(1);
    expect(Math.abs(clock.slews[0]!)).toBeLessThan(128);
    expect(steps).toHaveLength(1);
  });

  test("replies that are not answers are passed over; the first good server sets the clock", async () => {
    // four servers on one port, 127.0.0.1-4: a forged reply, a kiss-o'-death, an unsynchronised clock, a good one
    const first = await sntpServer("127.0.0.1", () => ({ time: Date.now(), originate: new Uint8Array(8) }));
    const port = first.port;
    const kiss = await sntpServer("127.0.0.2", () => ({ time: Date.now(), stratum: 0, refid: "DENY" }), port);
    const lost = await sntpServer("127.0.0.3", () => ({ time: Date.now() - 10_000, li: 3 }), port);
    const good = await sntpServer("127.0.0.4", () => ({ time: Date.now() - 5_000, stratum: 1 }), port);
    running.push(first, kiss, lost, good);
    const clock = testClock();
    const sync = new TimeSync({
      servers: () => ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"],
      port,
      clock,
      log,
      timeoutMs: 300,
    });
    running.push(sync);
    expect(await sync.first).toBe(true);
    expect([first, kiss, lost, good].map((s) => s.requests.length)).toEqual([1, 1, 1, 1]);
    expect(clock.steps).toHaveLength(1);
    expect(Math.abs(clock.steps[0]! + 5_000)).toBeLessThan(250);
    expect(sync.status()).toMatchObject({ synced: true, server: "127.0.0.4", stratum: 1 });
  });

  test("no server answers: not synced, the reasons kept, the clock left alone, asked again", async () => {
    const silent = await sntpServer("127.0.0.1", () => null);
    const kiss = await sntpServer("127.0.0.2", () => ({ time: Date.now(), stratum: 0, refid: "RATE" }), silent.port);
    running.push(silent, kiss);
    const clock = testClock();
    const sync = new TimeSync({
      servers: () => ["127.0.0.1", "127.0.0.2"],
      port: silent.port,
      clock,
      log,
      timeoutMs: 200,
      retryMs: 50,
    });
    running.push(sync);
    expect(await sync.first).toBe(false);
    const st = sync.status();
    expect(st).toMatchObject({ synced: false, server: null, stratum: null, offset_ms: null, last_sync: null });
    expect(st.error).toBe("127.0.0.1: no answer; 127.0.0.2: kiss-o'-death RATE");
    expect(clock.steps).toEqual([]);
    expect(clock.slews).toEqual([]);
    await until(() => silent.requests.length >= 2); // the retry
  });

  test("no servers configured or offered: nothing is sent, and the list is asked again", async () => {
    let servers: string[] = [];
    const server = await sntpServer("127.0.0.1", () => ({ time: Date.now() + 60_000 }));
    running.push(server);
    const clock = testClock();
    const sync = new TimeSync({ servers: () => servers, port: server.port, clock, log, retryMs: 30 });
    running.push(sync);
    expect(await sync.first).toBe(false);
    expect(sync.status()).toMatchObject({ synced: false, servers: [] });
    expect(sync.status().error).toContain("no NTP servers");
    servers = ["127.0.0.1"]; // a lease brought one
    await until(() => sync.status().synced);
    expect(server.requests).toHaveLength(1);
    expect(clock.steps).toHaveLength(1);
  });
});
