// A person at a terminal, for tests: a program runs on a real
// pseudo-terminal (node-pty, driven from Node by test/cli/pty-driver.mjs:
// under Bun its reader fails), keys are typed into it, and what it
// prints is applied to a small VT100 screen so that tests read what the
// screen shows, not the escape codes that drew it.
import { join } from "node:path";

/** Node, which runs node-pty (AAOS_NODE names another) */
const NODE = process.env.AAOS_NODE ?? Bun.which("node") ?? "/usr/bin/node";

export const Keys = {
  enter: "\r",
  tab: "\t",
  ctrlC: "\x03",
  ctrlD: "\x04",
  /** the console's detach key, as telnet's escape */
  ctrlRightBracket: "\x1d",
  ctrlU: "\x15",
  up: "\x1b[A",
  down: "\x1b[B",
} as const;

/** the subset of VT100/xterm that readline and aaosctl use */
export class Screen {
  /** lines that scrolled off the top */
  private scrolled: string[][] = [];
  private grid: string[][];
  row = 0;
  col = 0;

  constructor(
    readonly cols: number,
    readonly rows: number,
  ) {
    this.grid = Array.from({ length: rows }, () => []);
  }

  feed(text: string): void {
    for (let i = 0; i < text.length; i++) {
      const ch = text[i]!;
      if (ch === "\x1b") {
        i = this.escape(text, i);
        continue;
      }
      if (ch === "\r") this.col = 0;
      else if (ch === "\n") this.lineFeed();
      else if (ch === "\b") this.col = Math.max(0, this.col - 1);
      else if (ch === "\t") this.col = Math.min(this.cols - 1, (Math.floor(this.col / 8) + 1) * 8);
      else if (ch === "\x07" || ch < " ") continue;
      else this.put(ch);
    }
  }

  private put(ch: string) {
    if (this.col >= this.cols) {
      this.col = 0;
      this.lineFeed();
    }
    const line = this.grid[this.row]!;
    while (line.length < this.col) line.push(" ");
    line[this.col++] = ch;
  }

  private lineFeed() {
    if (this.row < this.rows - 1) {
      this.row++;
      return;
    }
    this.scrolled.push(this.grid.shift()!);
    this.grid.push([]);
  }

  /** returns the index of the escape sequence's last character */
  private escape(text: string, i: number): number {
    if (text[i + 1] !== "[") return i + 1; // ESC 7, ESC 8, ESC = ...: ignored
    let j = i + 2;
    while (j < text.length && !/[@-~]/.test(text[j]!)) j++;
    const params = text.slice(i + 2, j);
    const final = text[j];
    const nums = params
      .replace(/^\?/, "")
      .split(";")
      .map((n) => (n === "" ? NaN : Number(n)));
    const n = (k: number, d: number) => (Number.isNaN(nums[k]!) || nums[k] === undefined ? d : nums[k]!);
    const line = this.grid[this.row]!;
    switch (final) {
      case "K": {
        const mode = n(0, 0);
        if (mode === 0) line.length = Math.min(line.length, this.col);
        else if (mode === 1) for (let c = 0; c <= this.col && c < line.length; c++) line[c] = " ";
        else line.length = 0;
        break;
      }
      case "J": {
        const mode = n(0, 0);
        if (mode === 0) {
          line.length = Math.min(line.length, this.col);
          for (let r = this.row + 1; r < this.rows; r++) this.grid[r] = [];
        } else if (mode === 2) this.grid = this.grid.map(() => []);
        break;
      }
      case "G":
        this.col = n(0, 1) - 1;
        break;
      case "C":
        this.col = Math.min(this.cols - 1, this.col + n(0, 1));
        break;
      case "D":
        this.col = Math.max(0, this.col - n(0, 1));
        break;
      case "A":
        this.row = Math.max(0, this.row - n(0, 1));
        break;
      case "B":
        this.row = Math.min(this.rows - 1, this.row + n(0, 1));
        break;
      case "H":
      case "f":
        this.row = Math.min(this.rows - 1, n(0, 1) - 1);
        this.col = Math.min(this.cols - 1, n(1, 1) - 1);
        break;
      default:
        break; // colours (m), modes (h/l) and the rest change nothing we read
    }
    return j;
  }

  /** everything shown so far, scrollback included, one string per line */
  lines(): string[] {
    const all = [...this.scrolled, ...this.grid].map((l) => l.join("").trimEnd());
    while (all.length && all[all.length - 1] === "") all.pop();
    return all;
  }

  text(): string {
    return this.lines().join("\n");
  }

  /** the line the cursor is on */
  cursorLine(): string {
    return (this.grid[this.row] ?? []).join("").trimEnd();
  }
}

export interface TerminalOptions {
  cols?: number;
  rows?: number;
  env?: Record<string, string | undefined>;
  cwd?: string;
}

export class Terminal {
  readonly screen: Screen;
  readonly exited: Promise<number>;
  /** every byte the program wrote, for failure messages */
  raw = "";
  private proc: ReturnType<typeof Bun.spawn>;
  private stdin: import("bun").FileSink;
  private waiters = new Set<() => void>();

  constructor(argv: string[], opts: TerminalOptions = {}) {
    const cols = opts.cols ?? 100;
    const rows = opts.rows ?? 30;
    this.screen = new Screen(cols, rows);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({
      ...process.env,
      TERM: "xterm-256color",
      NO_COLOR: undefined,
      FORCE_COLOR: undefined,
      ...opts.env,
    }))
      if (v !== undefined) env[k] = v;
    this.proc = Bun.spawn([NODE, join(import.meta.dir, "pty-driver.mjs"), String(cols), String(rows), "--", ...argv], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "inherit",
      env,
      cwd: opts.cwd,
    });
    this.stdin = this.proc.stdin as import("bun").FileSink;
    void this.pump();
    this.exited = this.proc.exited;
  }

  private async pump() {
    const decoder = new TextDecoder();
    for await (const chunk of this.proc.stdout as ReadableStream<Uint8Array>) {
      const text = decoder.decode(chunk, { stream: true });
      this.raw += text;
      this.screen.feed(text);
      for (const w of [...this.waiters]) w();
    }
  }

  type(keys: string): void {
    this.stdin.write(keys);
    this.stdin.flush();
  }

  /** type a line and press Enter */
  line(text: string): void {
    this.type(text + Keys.enter);
  }

  /** until the screen shows it (a string anywhere, or a regexp over the whole text) */
  async waitFor(what: string | RegExp | ((text: string) => boolean), timeoutMs = 10_000): Promise<string> {
    const test = (t: string) =>
      typeof what === "string" ? t.includes(what) : what instanceof RegExp ? what.test(t) : what(t);
    const now = this.screen.text();
    if (test(now)) return now;
    return new Promise((resolve, reject) => {
      const check = () => {
        const t = this.screen.text();
        if (!test(t)) return;
        done();
        resolve(t);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`screen never showed ${String(what)}; it shows:\n${this.screen.text()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
    });
  }

  /** how many times the screen shows a string */
  count(needle: string): number {
    return this.screen.text().split(needle).length - 1;
  }

  kill(): void {
    try {
      this.proc.kill();
    } catch {}
  }
}
