#!/usr/bin/env bun
// aaosctl: the operator's command line for aaOS. With no shell on the
// machine, everything an operator does is a JSON-RPC call; this program makes
// each one a verb (cli/verbs.ts) and adds an interactive console.
//
//   aaosctl [--socket PATH | --serial PATH | --tty DEV [--baud N]] VERB [args] [options]
//
// Exit codes: 0 ok, 1 failed, 2 usage, 3 unreachable, 4 denied, 130 interrupted.
import type { RpcClient } from "./client.ts";
import { connectTarget, describeTarget, targetFrom, type Connection, type Target } from "./connect.ts";
import { dispatch, INTERRUPTED } from "./dispatch.ts";
import { usageError } from "./exit.ts";
import { flushStdout, processOutput } from "./output.ts";

/** a host kernel answers at once; a serial line may be a VM still booting under TCG */
const DEFAULT_WAIT_S: Record<Target["kind"], number> = { socket: 10, serial: 60, tty: 60 };

export function waitMs(
  option: string | boolean | string[] | undefined,
  env: Record<string, string | undefined> = process.env,
  kind: Target["kind"] = "socket",
): number {
  const text = typeof option === "string" ? option : env.AAOS_WAIT;
  if (text === undefined) return DEFAULT_WAIT_S[kind] * 1000;
  const s = Number(text);
  if (!Number.isFinite(s) || s <= 0) throw usageError(`--wait wants a number of seconds, not ${JSON.stringify(text)}`);
  return s * 1000;
}

async function readStdin(): Promise<string> {
  return await new Response(Bun.stdin.stream()).text();
}

export async function main(argv: string[]): Promise<number> {
  let connection: Promise<Connection> | undefined;
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    // first Ctrl-C: stop waiting and exit through the normal path (spinner
    // cleared, follow loops end with 0); second: leave at once
    if (++interrupts > 1) process.exit(INTERRUPTED);
    controller.abort();
  };
  // (in the console, readline takes Ctrl-C as a key and handles it itself)
  process.on("SIGINT", onSigint);
  try {
    return await dispatch(argv, {
      interactive: false,
      signal: controller.signal,
      makeOutput: ({ json, noColor, format }) => processOutput(json, noColor, format),
      targetName: (options) => describeTarget(targetFrom(options as Record<string, string>)),
      rpc: async (options): Promise<RpcClient> => {
        connection ??= (async () => {
          const target = targetFrom(options as Record<string, string>);
          return connectTarget(target, { waitMs: waitMs(options.wait, process.env, target.kind) });
        })();
        return (await connection).client;
      },
      readStdin,
    });
  } finally {
    process.off("SIGINT", onSigint);
    if (connection) await connection.then((c) => c.client.close()).catch(() => {});
  }
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  // flush stdout before leaving: a pipe may still hold our output
  process.exitCode = code;
  await flushStdout();
  process.exit(code);
}
