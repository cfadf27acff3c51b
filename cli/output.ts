// Where a verb's words go. One Output per invocation (or per console):
// stdout carries results, stderr carries notes and the progress spinner, and
// --json turns results into one JSON document. Writes clear the spinner first
// so that it never tears a line.
import { painter, type Paint } from "./format.ts";

export interface Writer {
  write(text: string): void;
}

export interface OutputOptions {
  stdout: Writer;
  stderr: Writer;
  /** colour in what we print */
  color: boolean;
  /** results as JSON for programs; no colour, no spinner */
  json: boolean;
  /** stderr is a terminal: the spinner may animate there */
  progress: boolean;
  /** terminal columns, for cutting tables and events */
  width: number;
}

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

export class Output {
  readonly paint: Paint;
  readonly json: boolean;
  readonly width: number;
  /** false while a streamed line (model text) is still open on stdout */
  private atLineStart = true;
  /** spinner labels, newest last; the newest is drawn */
  private labels: { label: string; since: number }[] = [];
  private timer: ReturnType<typeof setInterval> | null = null;
  private frame = 0;
  /** a spinner line is on the screen now */
  private shown = false;

  constructor(private opts: OutputOptions) {
    this.json = opts.json;
    this.width = opts.width;
    this.paint = painter(opts.color && !opts.json);
  }

  /** true when the next write starts a line */
  get atStartOfLine(): boolean {
    return this.atLineStart;
  }

  /** raw text to stdout, as it streams (no newline added) */
  write(text: string): void {
    if (!text) return;
    this.clearSpinner();
    this.opts.stdout.write(text);
    this.atLineStart = text.endsWith("\n");
  }

  /** a line to stdout, starting a fresh line if streamed text left one open */
  print(text: string): void {
    this.endLine();
    this.write(text + "\n");
  }

  /** a line for the person, not the program: stderr */
  note(text: string): void {
    this.endLine();
    this.clearSpinner();
    this.opts.stderr.write(text + "\n");
  }

  /** a result for programs */
  printJson(value: unknown): void {
    this.print(JSON.stringify(value, null, 2));
  }

  /** close a streamed line so that what follows starts at column 0 */
  endLine(): void {
    if (!this.atLineStart) this.write("\n");
  }

  /**
   * Show "⠋ label 3s" on stderr until the returned function is called.
   * Only on a terminal, never in --json mode, and only between lines. Nested
   * calls stack: the newest label shows, and stopping it shows the one below.
   */
  progress(label: string): () => void {
    if (!this.opts.progress || this.json) return () => {};
    const entry = { label, since: Date.now() };
    this.labels.push(entry);
    if (!this.timer) this.timer = setInterval(() => this.drawSpinner(), 100);
    return () => {
      const i = this.labels.indexOf(entry);
      if (i < 0) return;
      this.labels.splice(i, 1);
      if (!this.labels.length) this.stopSpinner();
    };
  }

  private drawSpinner(): void {
    const top = this.labels.at(-1);
    if (!top || !this.atLineStart) return;
    const secs = Math.floor((Date.now() - top.since) / 1000);
    const text = `${FRAMES[this.frame++ % FRAMES.length]} ${top.label}${secs >= 1 ? ` ${secs}s` : ""}`;
    this.opts.stderr.write(`\r\x1b[K${this.paint("dim", text)}`);
    this.shown = true;
  }

  private clearSpinner(): void {
    if (this.shown) {
      this.opts.stderr.write("\r\x1b[K");
      this.shown = false;
    }
  }

  private stopSpinner(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.labels = [];
    this.clearSpinner();
  }

  /** stop animating (before exit or before the console redraws its prompt) */
  close(): void {
    this.stopSpinner();
  }
}

/**
 * stdout, in order, through Bun.write: process.stdout.write into a pipe
 * under Bun loses what is past 64 KiB if the process exits before the pipe
 * drains (its drain signal cannot be trusted), so main() awaits
 * flushStdout() before process.exit.
 */
let stdoutChain: Promise<unknown> = Promise.resolve();
function writeStdout(text: string): void {
  stdoutChain = stdoutChain.then(() => Bun.write(Bun.stdout, text)).catch(() => {});
}

/** resolves once everything written to stdout so far has been taken by the OS */
export function flushStdout(): Promise<void> {
  return stdoutChain.then(() => {});
}

export function processOutput(json: boolean, noColor: boolean): Output {
  const env = process.env;
  const stdoutTty = Boolean(process.stdout.isTTY);
  const forced = env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== "0";
  const color = !noColor && env.NO_COLOR === undefined && (forced || stdoutTty);
  return new Output({
    stdout: { write: writeStdout },
    stderr: { write: (t) => void process.stderr.write(t) },
    color,
    json,
    progress: Boolean(process.stderr.isTTY),
    // into a pipe nothing is cut: grep and friends want whole lines
    width: stdoutTty ? process.stdout.columns || Number(env.COLUMNS) || 100 : Infinity,
  });
}
