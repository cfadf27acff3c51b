// Run a command on a real pseudo-terminal (node-pty) and relay it over pipes.
//
//   node test/cli/pty-driver.mjs COLS ROWS -- COMMAND [ARGS...]
//
// Bytes on our stdin are typed into the terminal; what the program writes to
// the terminal comes out on our stdout; we exit with the program's status.
// Node-side because node-pty's reader fails under Bun (EAGAIN on its
// tty.ReadStream closes the terminal); Bun's tests spawn this with /usr/bin/node.
import { createRequire } from "node:module";

const pty = createRequire(import.meta.url)("node-pty");
const [cols, rows] = [Number(process.argv[2]), Number(process.argv[3])];
const argv = process.argv.slice(process.argv.indexOf("--") + 1);
const env = { ...process.env };
const term = pty.spawn(argv[0], argv.slice(1), {
  name: env.TERM || "xterm-256color",
  cols,
  rows,
  cwd: process.cwd(),
  env,
});

term.onData((d) => process.stdout.write(d));
// our caller is done typing: the program goes on
process.stdin.on("data", (d) => term.write(d.toString("binary")));
process.on("SIGTERM", () => term.kill("SIGTERM"));
term.onExit(({ exitCode, signal }) => {
  // what the program wrote just before it exited may still be on its way
  setTimeout(() => process.stdout.write("", () => process.exit(signal ? 128 + signal : exitCode)), 50);
});
