// make bench: every benchmark, each figure beside a baseline from the same run.
// Sections whose module is absent (an area not built yet) say so.
import { printFigures, type Figure } from "./figure.ts";

const sections: [string, string, string][] = [
  ["JSON-RPC and memory", "./rpc.ts", "benchRpc"],
  ["messages between agents", "./ipc.ts", "benchIpc"],
  ["memory", "./episodic.ts", "benchEpisodic"],
  ["idle memory (compiled)", "./memory.ts", "benchMemory"],
  ["capability checks", "./caps.ts", "benchCaps"],
  ["audit log", "./audit.ts", "benchAudit"],
  ["journal", "./journal.ts", "benchJournal"],
  ["inference scheduler", "./sched.ts", "benchSched"],
  ["dashboard", "./dashboard.ts", "benchDashboard"],
  ["MCP", "./mcp.ts", "benchMcp"],
  ["boot and image", "./boot.ts", "benchBoot"],
  ["spawn/stop soak", "./soak.ts", "benchSoak"],
];

const only = process.argv.slice(2);
let failed = 0;
for (const [title, file, fn] of sections) {
  if (only.length && !only.some((o) => file.includes(o))) continue;
  let mod: Record<string, () => Promise<Figure[]>>;
  try {
    mod = await import(file);
  } catch (e) {
    console.log(`\n## ${title}\n(not run: ${file} could not be loaded: ${(e as Error).message})`);
    continue;
  }
  try {
    printFigures(title, await mod[fn]!());
  } catch (e) {
    failed++;
    console.log(`\n## ${title}\nFAILED: ${(e as Error).stack ?? e}`);
  }
}
process.exit(failed ? 1 : 0);
