// The tool registry: one file per built-in tool, one table here.
import { z } from "zod";
import type { ToolDescription } from "../services.ts";
import type { Tool } from "./tool.ts";
import echo from "./echo.ts";
import fileRead from "./file_read.ts";
import fileWrite from "./file_write.ts";
import fileList from "./file_list.ts";
import fileDelete from "./file_delete.ts";
import fileMove from "./file_move.ts";
import dirCreate from "./dir_create.ts";
import webFetch from "./web_fetch.ts";
import spawnAgent from "./spawn_agent.ts";
import messageSend from "./message_send.ts";
import messageRead from "./message_read.ts";
import agentCall from "./agent_call.ts";
import agentNotify from "./agent_notify.ts";
import memoryStore from "./memory_store.ts";
import memorySearch from "./memory_search.ts";
import memoryDelete from "./memory_delete.ts";
import memoryBlockUpdate from "./memory_block_update.ts";

export type { Tool, ToolContext, ToolEffect, ToolLimits } from "./tool.ts";

export const builtinTools: readonly Tool[] = [
  echo,
  fileRead,
  fileWrite,
  fileList,
  fileDelete,
  fileMove,
  dirCreate,
  webFetch,
  spawnAgent,
  messageSend,
  messageRead,
  agentCall,
  agentNotify,
  memoryStore,
  memorySearch,
  memoryDelete,
  memoryBlockUpdate,
];

export class ToolRegistry {
  private tools = new Map<string, Tool>();
  private descriptions = new Map<string, ToolDescription>();

  constructor(tools: readonly Tool[] = builtinTools) {
    for (const t of tools) this.register(t);
  }

  /** adds a tool, or replaces one of the same name (an MCP server's tools come and go: kernel/mcp/client.ts) */
  register(t: Tool): void {
    let schema = t.inputSchema;
    if (!schema) {
      schema = z.toJSONSchema(t.input, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
      delete schema.$schema;
    }
    this.tools.set(t.name, t);
    this.descriptions.set(t.name, {
      name: t.name,
      description: t.description,
      effect: t.effect,
      input_schema: schema,
      ...(t.annotations ? { annotations: t.annotations } : {}),
    });
  }

  unregister(name: string): void {
    this.tools.delete(name);
    this.descriptions.delete(name);
  }

  get(name: string): Tool | undefined {
    return this.tools.get(name);
  }

  names(): Set<string> {
    return new Set(this.tools.keys());
  }

  describeAll(): ToolDescription[] {
    return [...this.descriptions.values()];
  }
}
