// Upper bounds of a request's input tokens, for the reservation a call makes
// before it is sent.
//
// - From bytes: no tokenizer we know of puts more than one token in a UTF-8
//   byte, so the bytes of the request's JSON (system, messages, tools) plus a
//   per-message allowance plus the provider's hidden tool prompt bound it.
// - From the last call: a conversation only grows, and the last request's
//   prompt is a prefix of the next one, so the next input is at most the last
//   input + the last output (re-read as input) + the bytes of what was added,
//   with a margin for block framing.
// The estimate is the smaller of the two.
import type { ToolDescription } from "../services.ts";
import type { ConversationMessage } from "./providers/types.ts";

const enc = new TextEncoder();
export const bytes = (s: string) => enc.encode(s).length;

/** tokens the provider adds for tools (Anthropic's tool-use system prompt is a few hundred) */
export const TOOL_PROMPT_ALLOWANCE = 1024;
export const PER_MESSAGE_ALLOWANCE = 16;
export const FIXED_ALLOWANCE = 64;

export function bytesEstimate(system: string, messages: ConversationMessage[], tools: ToolDescription[]): number {
  return (
    bytes(system) +
    bytes(JSON.stringify(messages)) +
    (tools.length ? bytes(JSON.stringify(tools)) + TOOL_PROMPT_ALLOWANCE : 0) +
    PER_MESSAGE_ALLOWANCE * (messages.length + 1) +
    FIXED_ALLOWANCE
  );
}

export function incrementalEstimate(
  last: { input_tokens: number; output_tokens: number },
  added: ConversationMessage[],
): number {
  const addedBytes = added.reduce((n, m) => n + bytes(JSON.stringify(m.content)), 0);
  return (
    last.input_tokens +
    last.output_tokens +
    Math.ceil(last.output_tokens * 0.1) +
    addedBytes +
    PER_MESSAGE_ALLOWANCE * (added.length + 1) +
    FIXED_ALLOWANCE
  );
}
