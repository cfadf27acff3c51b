// Where a verb's words go. One Output per invocation (or per console):
// stdout carries results, stderr carries notes and the progress spinner, and
// -o json|yaml (--json) turns results into one document, -o wide adds
// columns to tables. Writes clear the spinner first so that it never tears a
// line. The format is the Output's, not each verb's: a verb prints a result
// with printJson() and its tables with `wide` in mind, and every format works.
import YAML from "yaml";
import type { OutputFormat } from "./args.ts";
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
  /** -o FORMAT; when absent, json or text by `json` */
  format?: OutputFormat;
  /** stderr is a terminal: the spinner may animate there */
  progress: boolean;
  /** terminal columns, for cutting tables and events */
  width: number;
}

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

export class Output {
  readonly paint: Paint;
  /** results for programs (-o json or -o yaml): print them with printJson() */
  readonly json: boolean;
  readonly format: OutputFormat;
  /** -o wide: tables with their extra columns */
  readonly wide: boolean;
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
    this.format = opts.format ?? (opts.json ? "json" : "text");
    this.json = this.format === "json" || this.format === "yaml";
    this.wide = this.format === "wide";
    this.width = this.wide ? Infinity : opts.width;
    this.paint = painter(opts.color && !this.json);
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

  /** a result for programs: JSON, or YAML with -o yaml */
  printJson(value: unknown): void {
    this.print(this.format === "yaml" ? YAML.stringify(value).replace(/\n$/, "") : JSON.stringify(value, null, 2));
  }

  /** one record of a stream (--follow): a JSON line, or a YAML document with -o yaml */
  printRecord(value: unknown): void {
    this.print(this.recordText(value));
  }

  /** the text of one streamed record, without its newline */
  recordText(value: unknown): string {
    return this.format === "yaml" ? `---\n${YAML.stringify(value).replace(/\n$/, "")}` : JSON.stringify(value);
  }

  /** an error for programs: one JSON line, or YAML with -o yaml */
  printErrorJson(value: unknown): void {
    this.print(this.format === "yaml" ? YAML.stringify(value).replace(/\n$/, "") : JSON.stringify(value));
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

export function processOutput(json: boolean, noColor: boolean, format?: OutputFormat): Output {
  const env = process.env;
  const stdoutTty = Boolean(process.stdout.isTTY);
  const forced = env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== "0";
  const color = !noColor && env.NO_COLOR === undefined && (forced || stdoutTty);
  return new Output({
    stdout: { write: writeStdout },
    stderr: { write: (t) => void process.stderr.write(t) },
    color,
    json,
    format,
    progress: Boolean(process.stderr.isTTY),
    // into a pipe nothing is cut: grep and friends want whole lines
    width: stdoutTty ? process.stdout.columns || Number(env.COLUMNS) || 100 : Infinity,
  });
}
