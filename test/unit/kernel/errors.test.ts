// One error vocabulary: the codes, the constructors, the one wire form
// (toWire), and the one way a zod failure reads (kernel/zod.ts) for RPC
// params, tool input and YAML files alike.
import { describe, expect, test } from "bun:test";
import type { Logger } from "pino";
import { z } from "zod";
import {
  ErrorCode,
  internalError,
  invalidParams,
  invalidRequest,
  KernelError,
  lineTooLong,
  methodNotFound,
  noSuchAgent,
  parseError,
  toWire,
} from "../../../kernel/errors.ts";
import { PositionedYaml } from "../../../kernel/manifest/yaml.ts";
import { RpcServer, type Connection, type MethodTable } from "../../../kernel/rpc/server.ts";
import { describeZodIssues, formatPath } from "../../../kernel/zod.ts";

describe("the wire form", () => {
  test("a KernelError goes out as it is: code, message, and data only when it has some", () => {
    expect(toWire(noSuchAgent("ag-1"))).toEqual({
      code: ErrorCode.NoSuchAgent,
      message: "no such agent: ag-1",
      data: { agent_id: "ag-1" },
    });
    const plain = toWire(methodNotFound("agent.launch"));
    expect(plain).toEqual({ code: -32601, message: "Method not found: agent.launch" });
    expect("data" in plain).toBe(false);
  });

  test("anything else thrown is an internal error that says what it was", () => {
    expect(toWire(new TypeError("x is undefined"))).toEqual({
      code: ErrorCode.InternalError,
      message: "Internal error: x is undefined",
    });
    expect(toWire("a string")).toEqual({ code: -32603, message: "Internal error: a string" });
    expect(internalError(null)).toBeInstanceOf(KernelError);
  });

  test("the protocol's own errors are KernelErrors with the texts the contract shows", () => {
    expect(toWire(parseError())).toEqual({ code: -32700, message: "Parse error: the line is not valid JSON" });
    expect(toWire(invalidRequest("empty batch"))).toEqual({ code: -32600, message: "Invalid Request: empty batch" });
    expect(toWire(lineTooLong(10, 4))).toEqual({
      code: -32600,
      message: "line of 10 bytes exceeds the limit of 4 bytes; discarded",
      data: { limit: 4 },
    });
  });

  test('invalidParams says "Invalid params:" itself', () => {
    expect(invalidParams("url: only http and https URLs can be fetched", { tool: "web_fetch" })).toMatchObject({
      code: ErrorCode.InvalidParams,
      message: "Invalid params: url: only http and https URLs can be fetched",
      data: { tool: "web_fetch" },
    });
  });
});

describe("zod issues, said once", () => {
  const S = z.strictObject({
    agent_id: z.string(),
    limit: z.number().int().optional(),
    tags: z.array(z.string()).optional(),
  });

  test("unknown fields first, then the rest; a missing field is 'required'; at most two", () => {
    const r = S.safeParse({ agent: "x", limit: 1.5 });
    expect(describeZodIssues(r.error!)).toBe("agent: unknown field; agent_id: required");
  });

  test("paths name array elements by index, under a prefix when given", () => {
    const r = S.safeParse({ agent_id: "a", tags: ["ok", 7] });
    expect(describeZodIssues(r.error!)).toMatch(/^tags\[1\]: /);
    expect(describeZodIssues(r.error!, "input")).toMatch(/^input\.tags\[1\]: /);
    expect(formatPath(["capabilities", 0, "kind"])).toBe("capabilities[0].kind");
  });

  test("an issue at the root is named by the prefix, or (params)", () => {
    const r = z.strictObject({}).safeParse(5);
    expect(describeZodIssues(r.error!)).toMatch(/^\(params\): /);
    expect(describeZodIssues(r.error!, "input")).toMatch(/^input: /);
  });

  test("YAML files pick the same issue and say it in the same words, at its position", () => {
    const text = "agent_id: a\nlimit: 2\nagnet: x\n";
    const parsed = PositionedYaml.parse(text);
    if ("error" in parsed) throw new Error("parse failed");
    const e = parsed.yaml.fromZod(S.safeParse({ ...(parsed.value as object), limit: "2" }).error!);
    expect(e).toEqual({ message: "unknown field", path: "agnet", line: 3, column: 1 });
    const missing = PositionedYaml.parse("limit: 2\n");
    if ("error" in missing) throw new Error("parse failed");
    expect(missing.yaml.fromZod(S.safeParse(missing.value).error!)).toMatchObject({
      path: "agent_id",
      message: "required",
    });
  });
});

describe("the RPC server speaks the same vocabulary", () => {
  const log = { error: () => {}, warn: () => {}, debug: () => {}, info: () => {} } as unknown as Logger;
  const conn: Connection = {
    id: 1,
    transport: "test",
    notify: () => {},
    closed: false,
    signal: new AbortController().signal,
  };
  const methods: MethodTable = {
    stop: {
      params: z.strictObject({ agent_id: z.string() }),
      handler: (p: { agent_id: string }) => Promise.reject(noSuchAgent(p.agent_id)),
    },
    boom: { params: z.strictObject({}), handler: () => Promise.reject(new Error("kaput")) },
  };
  const server = new RpcServer(methods, { maxLineBytes: 1024, log });
  const call = (line: string) => server.handleLine(line, conn) as Promise<any>;

  test("protocol errors, params errors, kernel errors and bugs", async () => {
    expect((await call("{nope")).error).toEqual({ code: -32700, message: "Parse error: the line is not valid JSON" });
    expect((await call("[]")).error).toEqual({ code: -32600, message: "Invalid Request: empty batch" });
    expect((await call('{"jsonrpc":"1.0","id":1,"method":"stop"}')).error).toEqual({
      code: -32600,
      message: 'Invalid Request: jsonrpc must be "2.0"',
    });
    expect((await call('{"jsonrpc":"2.0","id":1,"method":"start"}')).error).toEqual({
      code: -32601,
      message: "Method not found: start",
    });
    expect((await call('{"jsonrpc":"2.0","id":1,"method":"stop","params":[1]}')).error).toEqual({
      code: -32602,
      message: "Invalid params: params must be an object (by-name parameters)",
    });
    expect((await call('{"jsonrpc":"2.0","id":2,"method":"stop","params":{"agent":"x"}}')).error).toEqual({
      code: -32602,
      message: "Invalid params: agent: unknown field; agent_id: required",
    });
    expect(await call('{"jsonrpc":"2.0","id":3,"method":"stop","params":{"agent_id":"ag-9"}}')).toEqual({
      jsonrpc: "2.0",
      id: 3,
      error: { code: -32002, message: "no such agent: ag-9", data: { agent_id: "ag-9" } },
    });
    expect((await call('{"jsonrpc":"2.0","id":4,"method":"boom"}')).error).toEqual({
      code: -32603,
      message: "Internal error: kaput",
    });
  });
});
