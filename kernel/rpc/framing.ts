// Newline framing with a byte cap. Invariant: memory held per connection is
// at most `maxLine` bytes, whatever the peer sends: a line that grows past the
// cap is dropped as it arrives (we keep discarding until its newline) and
// reported once, so a 5 MiB line or an endless stream of garbage can't grow
// the kernel.

export type Frame = { kind: "line"; text: string } | { kind: "oversized"; bytes: number };

export class LineSplitter {
  private chunks: Buffer[] = [];
  private held = 0;
  private discarding = false;
  private discarded = 0;

  constructor(private readonly maxLine: number) {}

  /** feed bytes; returns the complete frames they finish */
  push(data: Uint8Array): Frame[] {
    const frames: Frame[] = [];
    let buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    while (buf.length > 0) {
      const nl = buf.indexOf(10);
      const part = nl < 0 ? buf : buf.subarray(0, nl);
      if (this.discarding) {
        this.discarded += part.length;
      } else if (this.held + part.length > this.maxLine) {
        this.discarding = true;
        this.discarded = this.held + part.length;
        this.chunks = [];
        this.held = 0;
      } else {
        // copy: the caller may reuse its buffer
        this.chunks.push(Buffer.from(part));
        this.held += part.length;
      }
      if (nl < 0) break;
      frames.push(this.finishLine());
      buf = buf.subarray(nl + 1);
    }
    return frames;
  }

  private finishLine(): Frame {
    if (this.discarding) {
      const bytes = this.discarded;
      this.discarding = false;
      this.discarded = 0;
      return { kind: "oversized", bytes };
    }
    const text = Buffer.concat(this.chunks, this.held).toString("utf8").replace(/\r$/, "");
    this.chunks = [];
    this.held = 0;
    return { kind: "line", text };
  }

  /** end of input: the last line if it had no newline (or its oversize report), else null */
  end(): Frame | null {
    if (!this.discarding && this.held === 0) return null;
    return this.finishLine();
  }
}
