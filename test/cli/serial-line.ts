// A stand-in for a serial line, for what a real kernel cannot be made to do
// on its unix socket: a line has no "connect", so whoever opens it after
// boot never sees system.ready; the guest's console shares it and prints
// noise between the kernel's lines; a VM that never boots leaves it silent;
// and QEMU's chardev socket appears only once QEMU is up (start it late).
// Everything else is the real kernel: each connection is relayed to a real
// host-mode kernel's unix socket (test/host/harness.ts startKernel), so the
// answers aaosctl gets are the kernel's own.
import { rmSync } from "node:fs";

export interface SerialLineOptions {
  /** the unix socket aaosctl connects to, as it would to QEMU's chardev socket */
  socket: string;
  /** the real kernel's socket the line leads to; none: the line stays silent (a VM that never boots) */
  kernel?: string;
}

/** what a booting Linux console prints: the kernel's lines must be found among these */
export const BOOT_NOISE = "[    8.123] random: crng init done\r\n";
export const LINE_NOISE = "[   12.000] virtio_net: link up\n";

type Upstream = { write(text: string): void; end(): void };
interface Line {
  /** what aaosctl sent before the kernel's connection was open */
  early: string;
  kernel: Upstream | null;
  closed: boolean;
}

export class SerialLine {
  private server: ReturnType<typeof Bun.listen<Line>> | null = null;
  private readonly open = new Set<{ end(): void }>();

  constructor(readonly opts: SerialLineOptions) {}

  start(): this {
    rmSync(this.opts.socket, { force: true });
    const kernel = this.opts.kernel;
    this.server = Bun.listen<Line>({
      unix: this.opts.socket,
      socket: {
        open: (s) => {
          s.data = { early: "", kernel: null, closed: false };
          this.open.add(s);
          if (kernel === undefined) return; // silent: reads nothing, says nothing
          s.write(BOOT_NOISE);
          let partial = "";
          void Bun.connect({
            unix: kernel,
            socket: {
              open: (k) => {
                if (s.data.closed) return void k.end();
                s.data.kernel = { write: (t) => void k.write(t), end: () => k.end() };
                if (s.data.early) k.write(s.data.early);
                s.data.early = "";
              },
              data: (_k, d) => {
                partial += d.toString();
                let nl: number;
                while ((nl = partial.indexOf("\n")) >= 0) {
                  const line = partial.slice(0, nl + 1);
                  partial = partial.slice(nl + 1);
                  // a line has no connect event: the welcome was printed at boot, before anyone listened
                  if (isWelcome(line)) continue;
                  s.write(LINE_NOISE + line);
                }
              },
              close: () => void s.end(),
              error: () => void s.end(),
            },
          }).catch(() => void s.end());
        },
        data: (s, d) => {
          if (kernel === undefined) return;
          if (s.data.kernel) s.data.kernel.write(d.toString());
          else s.data.early += d.toString();
        },
        close: (s) => {
          s.data.closed = true;
          s.data.kernel?.end();
          this.open.delete(s);
        },
      },
    });
    return this;
  }

  stop(): void {
    for (const s of this.open) s.end();
    this.server?.stop(true);
    rmSync(this.opts.socket, { force: true });
  }
}

function isWelcome(line: string): boolean {
  try {
    return JSON.parse(line)?.method === "system.ready";
  } catch {
    return false;
  }
}
