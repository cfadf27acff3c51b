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
  private spinner: { label: string; since: number; frame: number; timer: ReturnType<typeof setInterval>; shown: boolean } | null = null;

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
   * Only on a terminal, never in --json mode, and only between lines.
   */
  progress(label: string): () => void {
    if (!this.opts.progress || this.json) return () => {};
    this.stopSpinner();
    const s = { label, since: Date.now(), frame: 0, shown: false, timer: setInterval(() => this.drawSpinner(), 100) };
    this.spinner = s;
    return () => {
      if (this.spinner === s) this.stopSpinner();
    };
  }

  private drawSpinner(): void {
    const s = this.spinner;
    if (!s || !this.atLineStart) return;
    const secs = Math.floor((Date.now() - s.since) / 1000);
    const text = `${FRAMES[s.frame++ % FRAMES.length]} ${s.label}${secs >= 1 ? ` ${secs}s` : ""}`;
    this.opts.stderr.write(`\r\x1b[K${this.paint("dim", text)}`);
    s.shown = true;
  }

  private clearSpinner(): void {
    if (this.spinner?.shown) {
      this.opts.stderr.write("\r\x1b[K");
      this.spinner.shown = false;
    }
  }

  private stopSpinner(): void {
    if (!this.spinner) return;
    clearInterval(this.spinner.timer);
    this.clearSpinner();
    this.spinner = null;
  }

  /** stop animating (before exit or before the console redraws its prompt) */
  close(): void {
    this.stopSpinner();
  }
}

export function processOutput(json: boolean, noColor: boolean): Output {
  const env = process.env;
  const stdoutTty = Boolean(process.stdout.isTTY);
  const forced = env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== "0";
  const color = !noColor && env.NO_COLOR === undefined && (forced || stdoutTty);
  return new Output({
    stdout: { write: (t) => void process.stdout.write(t) },
    stderr: { write: (t) => void process.stderr.write(t) },
    color,
    json,
    progress: Boolean(process.stderr.isTTY),
    width: process.stdout.columns || Number(env.COLUMNS) || 100,
  });
}
