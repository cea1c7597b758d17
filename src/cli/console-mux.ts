/**
 * The console on stdin, as QEMU's `-nographic` / `-serial mon:stdio` multiplexes it: bytes
 * go to the guest's serial port, except the escapes after Ctrl-A —
 *
 *   C-a x    quit              C-a c    switch between the console and the monitor
 *   C-a h    this help         C-a C-a  send C-a to the guest
 *
 * In the monitor, lines are QEMU's human monitor commands (hmp.ts) at a "(qemu) " prompt,
 * echoed and edited (backspace) when stdin is a terminal; their output comes back on the
 * console. Guest output goes on being printed meanwhile, as QEMU's does.
 */
export interface ConsoleMuxOptions {
  toGuest: (bytes: Uint8Array) => void;
  /** Prints on the console (the terminal, raw: lines end in CR LF there). */
  write: (text: string) => void;
  /** Runs one monitor command line; resolves with its output. */
  monitor: (line: string) => Promise<string>;
  quit: () => void;
  /** Whether the console is a terminal (echo and CR LF). */
  tty: boolean;
  banner: string;
}

const HELP =
  "C-a h    print this help\r\nC-a x    exit emulator\r\nC-a c    switch between console and monitor\r\nC-a C-a  sends C-a\r\n";

export class ConsoleMux {
  private ctrlA = false;
  private inMonitor = false;
  private line = "";
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly o: ConsoleMuxOptions) {}

  private out(text: string): void {
    this.o.write(this.o.tty ? text.replace(/\r?\n/g, "\r\n") : text);
  }

  feed(d: Uint8Array): void {
    const guest: number[] = [];
    const flush = () => {
      if (guest.length > 0) this.o.toGuest(Uint8Array.from(guest.splice(0)));
    };
    for (const b of d) {
      if (this.ctrlA) {
        this.ctrlA = false;
        if (b === 0x78) {
          flush();
          this.o.quit();
          return;
        }
        if (b === 0x63) {
          flush();
          this.inMonitor = !this.inMonitor;
          this.line = "";
          if (this.inMonitor) this.out(`\n${this.o.banner}\n(qemu) `);
          else this.out("\n");
          continue;
        }
        if (b === 0x68) {
          this.o.write(HELP);
          continue;
        }
        if (b !== 1) continue;
        // C-a C-a: one C-a, for whichever side has the focus.
      } else if (b === 1) {
        this.ctrlA = true;
        continue;
      }
      if (!this.inMonitor) guest.push(b);
      else this.monitorByte(b);
    }
    flush();
  }

  private monitorByte(b: number): void {
    if (b === 0x0d || b === 0x0a) {
      // A CR LF pair from a pipe is one end of line.
      if (b === 0x0a && this.lastWasCr) {
        this.lastWasCr = false;
        return;
      }
      this.lastWasCr = b === 0x0d;
      const line = this.line;
      this.line = "";
      if (this.o.tty) this.o.write("\r\n");
      this.queue = this.queue.then(async () => {
        const text =
          line.trim() === "" ? "" : await this.o.monitor(line).catch((e: Error) => `${e.message}\n`);
        this.out(text);
        if (this.inMonitor) this.out("(qemu) ");
      });
      return;
    }
    this.lastWasCr = false;
    if (b === 0x7f || b === 0x08) {
      if (this.line.length > 0) {
        this.line = this.line.slice(0, -1);
        if (this.o.tty) this.o.write("\b \b");
      }
      return;
    }
    if (b >= 0x20 && b < 0x7f) {
      this.line += String.fromCharCode(b);
      if (this.o.tty) this.o.write(String.fromCharCode(b));
    }
  }
  private lastWasCr = false;

  /** Resolves once every monitor command fed so far has printed its output. */
  idle(): Promise<void> {
    return this.queue;
  }
}
