// The echo tool (the smallest a manifest can grant): {message} in, the same
// {message} out, and nothing else accepted.
import { expect, test } from "bun:test";
import { z } from "zod";
import echo from "../../../kernel/tools/echo.ts";
import type { ToolContext } from "../../../kernel/tools/tool.ts";

test("echo returns its input unchanged", async () => {
  const input = echo.input.parse({ message: "hello, kernel" });
  expect(await echo.run({} as ToolContext, input)).toEqual({ message: "hello, kernel" });
  expect(await echo.run({} as ToolContext, echo.input.parse({ message: "" }))).toEqual({ message: "" });
});

test("echo is strict: only a string message", () => {
  for (const bad of [
    { text: "hi" },
    { message: "hi", text: "hi" },
    { message: 5 },
    {},
    { message: "x".repeat(65537) },
  ]) {
    expect(echo.input.safeParse(bad).success).toBe(false);
  }
});

test("its JSON Schema shows message as the one required field", () => {
  const schema = z.toJSONSchema(echo.input, { io: "input" }) as Record<string, unknown>;
  expect(schema).toMatchObject({
    type: "object",
    properties: { message: { type: "string" } },
    required: ["message"],
    additionalProperties: false,
  });
});
