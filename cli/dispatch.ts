// One command line → one verb run → one exit code. Shared by the one-shot
// command (cli/main.ts) and each line typed into the console.
import type { RpcClient } from "./client.ts";
import {
  bindArgs,
  GLOBAL_OPTIONS,
  nearest,
  outputFormat,
  outputFormatOfArgv,
  parseCommand,
  type OutputFormat,
  type ParsedCommand,
} from "./args.ts";
import { CliError, errorJson, ExitCode, exitCodeFor, usageError } from "./exit.ts";
import { formatError } from "./format.ts";
import { globalHelp, verbHelp } from "./help.ts";
import type { Output } from "./output.ts";
import { VERBS, type Ctx } from "./verbs.ts";
import { cliVersion } from "./help.ts";

export interface DispatchEnv {
  /** json is true for -o json and -o yaml (results for programs); format says which */
  makeOutput(opts: { json: boolean; noColor: boolean; format: OutputFormat }): Output;
  /** the kernel connection, for these parsed options; opened on first use */
  rpc(options: ParsedCommand["options"]): Promise<RpcClient>;
  targetName(options: ParsedCommand["options"]): string;
  signal?: AbortSignal;
  interactive: boolean;
  readStdin(): Promise<string>;
}

export const INTERRUPTED = 130;

export async function dispatch(argv: string[], env: DispatchEnv): Promise<number> {
  let parsed: ParsedCommand;
  try {
    parsed = parseCommand(argv, (v) => VERBS[v]?.params);
  } catch (e) {
    const format = outputFormatOfArgv(argv);
    const json = format === "json" || format === "yaml";
    const out = env.makeOutput({ json, noColor: argv.includes("--no-color"), format });
    return fail(out, e);
  }
  const { verb, options } = parsed;
  // what reaches the kernel: a verb's own --wait is not the connection's
  const conn: ParsedCommand["options"] = { ...options };
  for (const name of Object.keys(VERBS[verb ?? ""]?.params.options ?? {}))
    if (name in GLOBAL_OPTIONS) delete conn[name];
  Object.assign(conn, parsed.shadowed ?? {});
  let format: OutputFormat;
  try {
    format = outputFormat(options);
  } catch (e) {
    return fail(env.makeOutput({ json: false, noColor: options["no-color"] === true, format: "text" }), e);
  }
  const out = env.makeOutput({
    json: format === "json" || format === "yaml",
    noColor: options["no-color"] === true,
    format,
  });
  try {
    if (options.version && !verb) {
      if (out.json) out.printJson({ aaosctl: cliVersion() });
      else out.print(`aaosctl ${cliVersion()}`);
      return ExitCode.ok;
    }
    if (verb === undefined) {
      out.print(globalHelp(env.interactive));
      return ExitCode.ok;
    }
    const v = VERBS[verb];
    if (!v) {
      const near = nearest(verb, Object.keys(VERBS));
      throw usageError(
        `unknown verb ${JSON.stringify(verb)}${near ? `; did you mean ${near}?` : ""}`,
        "aaosctl --help lists the verbs",
      );
    }
    if (options.help) {
      out.print(verbHelp(verb));
      return ExitCode.ok;
    }
    const args = bindArgs(verb, v.params.args, parsed.args);
    const ctx: Ctx = {
      out,
      rpc: async () => {
        // shows only if connecting takes a moment (a VM still booting)
        const stop = env.interactive
          ? () => {}
          : out.progress(`waiting for the kernel on ${safeTargetName(env, conn)}`);
        try {
          return await env.rpc(conn);
        } finally {
          stop();
        }
      },
      signal: env.signal,
      interactive: env.interactive,
      readStdin: env.readStdin,
      targetName: env.interactive ? "" : safeTargetName(env, conn),
    };
    const code = await v.run(ctx, args, options);
    return typeof code === "number" ? code : ExitCode.ok;
  } catch (e) {
    if (env.signal?.aborted) {
      out.note(out.paint("dim", "interrupted (the kernel carries on with what it was asked)"));
      return INTERRUPTED;
    }
    return fail(out, e);
  } finally {
    out.close();
  }
}

function safeTargetName(env: DispatchEnv, options: ParsedCommand["options"]): string {
  try {
    return env.targetName(options);
  } catch {
    return "";
  }
}

function fail(out: Output, e: unknown): number {
  const code = exitCodeFor(e);
  if (out.json) out.printErrorJson(errorJson(e));
  else out.note(formatError(e, out.paint));
  if (
    code === ExitCode.failed &&
    !(e instanceof CliError) &&
    !(e instanceof Error && e.name === "RpcError") &&
    process.env.AAOSCTL_DEBUG
  )
    out.note(String((e as Error).stack));
  return code;
}
