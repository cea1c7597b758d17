import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { CR, FR, INT, Pl011, PL011_REG as R } from "../src/devices/pl011.ts";
import { StateError } from "../src/lib/state.ts";

function make() {
  const out: number[] = [];
  const irq = {
    level: false,
    changes: 0,
    set(l: boolean) {
      this.level = l;
      this.changes++;
    },
  };
  let space = 0;
  const u = new Pl011({ irq, output: (b) => out.push(...b), onRxSpace: () => space++ });
  return { u, out, irq, space: () => space };
}

const FEN = 1 << 4;
const WLEN8 = 3 << 5;

test("reset values (TRM table 3-1)", () => {
  const { u } = make();
  assert.equal(u.read(R.FR, 4), FR.TXFE | FR.RXFE);
  assert.equal(u.read(R.CR, 4), CR.TXE | CR.RXE);
  assert.equal(u.read(R.IFLS, 4), 0x12);
  assert.equal(u.read(R.LCR_H, 4), 0);
  assert.equal(u.read(R.IMSC, 4), 0);
  assert.equal(u.read(R.RIS, 4), 0);
});

test("PrimeCell ID registers read as Linux's amba bus expects", () => {
  const { u } = make();
  const id = (base: number) =>
    [0, 4, 8, 12].reduce((v, o, i) => v | ((u.read(base + o, 4) & 0xff) << (8 * i)), 0) >>> 0;
  assert.equal(id(0xfe0) & 0x000fffff, 0x00041011); // amba-pl011 match
  assert.equal(id(0xfe0) >>> 20, 3); // revision 3 = r1p5: Linux uses a 32-byte FIFO
  assert.equal(id(0xff0), 0xb105f00d);
});

test("transmit goes to output at once, even before the guest enables the UART (as QEMU)", () => {
  const { u, out } = make();
  for (const c of "hi\n") u.write(R.DR, 4, c.charCodeAt(0));
  u.write(R.DR, 1, 0x41);
  assert.deepEqual(String.fromCharCode(...out), "hi\nA");
  assert.equal(u.read(R.FR, 4) & (FR.TXFF | FR.BUSY), 0);
  assert.ok(u.read(R.FR, 4) & FR.TXFE);
});

test("TX interrupt: raised when a written byte leaves, cleared by ICR, masked by IMSC", () => {
  const { u, irq } = make();
  u.write(R.IMSC, 4, INT.TX);
  assert.equal(irq.level, false); // enabling before writing does not raise it (TRM 3.4.3)
  u.write(R.DR, 4, 0x61);
  assert.equal(irq.level, true);
  assert.equal(u.read(R.MIS, 4), INT.TX);
  u.write(R.ICR, 4, INT.TX);
  assert.equal(irq.level, false);
  u.write(R.DR, 4, 0x61);
  assert.equal(irq.level, true);
  u.write(R.IMSC, 4, 0); // what Linux's pl011_stop_tx does
  assert.equal(irq.level, false);
  assert.equal(u.read(R.RIS, 4) & INT.TX, INT.TX);
});

test("receive in character mode (FEN clear): one byte at a time, the rest waits", () => {
  const { u, irq } = make();
  u.write(R.IMSC, 4, INT.RX | INT.RT);
  u.input(new TextEncoder().encode("abc"));
  assert.equal(irq.level, true);
  assert.equal(u.read(R.FR, 4) & (FR.RXFE | FR.RXFF), FR.RXFF);
  assert.equal(u.read(R.RIS, 4) & (INT.RX | INT.RT), INT.RX | INT.RT);
  assert.equal(u.pending(), 2);
  assert.equal(u.canAccept(), 0);
  let s = "";
  while (!(u.read(R.FR, 4) & FR.RXFE)) s += String.fromCharCode(u.read(R.DR, 4) & 0xff);
  assert.equal(s, "abc");
  assert.equal(irq.level, false);
  assert.equal(u.pending(), 0);
  assert.equal(u.canAccept(), 1);
});

test("receive with FIFOs: RX at the IFLS level, RT for anything below it", () => {
  const { u, irq } = make();
  u.write(R.LCR_H, 4, FEN | WLEN8);
  u.write(R.IMSC, 4, INT.RX);
  u.input(new Uint8Array(15));
  assert.equal(irq.level, false); // 15 < 16 (half full, IFLS reset value)
  assert.equal(u.read(R.RIS, 4) & INT.RT, INT.RT);
  u.input(new Uint8Array(1));
  assert.equal(irq.level, true);
  u.read(R.DR, 4);
  assert.equal(irq.level, false); // below the level again
  u.write(R.IMSC, 4, INT.RT);
  assert.equal(irq.level, true);
  for (let i = 0; i < 15; i++) u.read(R.DR, 4);
  assert.equal(irq.level, false); // empty: timeout cleared
  assert.equal(u.read(R.RIS, 4) & (INT.RX | INT.RT), 0);
  // IFLS RX 1/8: 4 bytes.
  u.write(R.IFLS, 4, 0 << 3);
  u.write(R.IMSC, 4, INT.RX);
  u.input(new Uint8Array(4));
  assert.equal(irq.level, true);
});

test("the 32-entry FIFO fills, RXFF shows, and the backlog keeps the rest in order", () => {
  const { u, space } = make();
  u.write(R.LCR_H, 4, FEN | WLEN8);
  const data = Uint8Array.from({ length: 100 }, (_, i) => i);
  u.input(data);
  assert.ok(u.read(R.FR, 4) & FR.RXFF);
  assert.equal(u.pending(), 68);
  const got: number[] = [];
  while (!(u.read(R.FR, 4) & FR.RXFE)) got.push(u.read(R.DR, 4));
  assert.deepEqual(got, [...data]);
  assert.equal(space(), 1);
});

test("RT cleared by ICR while data stays; new data or a read arms it again", () => {
  const { u, irq } = make();
  u.write(R.LCR_H, 4, FEN);
  u.write(R.IMSC, 4, INT.RT);
  u.input(new Uint8Array(3));
  assert.equal(irq.level, true);
  u.write(R.ICR, 4, INT.RT);
  assert.equal(irq.level, false);
  u.read(R.DR, 4);
  assert.equal(irq.level, true);
  u.write(R.ICR, 4, INT.RT);
  u.input(new Uint8Array(1));
  assert.equal(irq.level, true);
});

test("loopback: transmitted bytes are received", () => {
  const { u, out } = make();
  u.write(R.CR, 4, CR.UARTEN | CR.TXE | CR.RXE | CR.LBE);
  u.write(R.DR, 4, 0x5a);
  assert.deepEqual(out, []);
  assert.equal(u.read(R.DR, 4), 0x5a);
});

test("Linux amba-pl011 start-up sequence", () => {
  // What pl011_hwinit, pl011_startup and pl011_enable_interrupts poke (drivers/tty/serial/amba-pl011.c).
  const { u, irq, out } = make();
  u.input(new TextEncoder().encode("early"));
  u.write(R.ICR, 2, 0x7ff); // clear all interrupts
  u.write(R.IMSC, 2, 0); // mask
  u.write(R.IFLS, 2, 0x12); // 1/2, 1/2
  u.write(R.IBRD, 2, 13);
  u.write(R.FBRD, 2, 1);
  u.write(R.LCR_H, 2, FEN | WLEN8);
  u.write(R.CR, 2, CR.UARTEN | CR.TXE | CR.RXE);
  // enable_interrupts: clear, drain spurious RX, unmask RX|RT.
  u.write(R.ICR, 2, INT.OE | INT.BE | INT.PE | INT.FE | INT.RT | INT.RX);
  let drained = "";
  for (let i = 0; i < 64 && !(u.read(R.FR, 2) & FR.RXFE); i++)
    drained += String.fromCharCode(u.read(R.DR, 2) & 0xff);
  assert.equal(drained, "early");
  u.write(R.IMSC, 2, INT.RX | INT.RT);
  assert.equal(irq.level, false);
  // A key press raises RT; the handler reads until RXFE.
  u.input(new TextEncoder().encode("ls\r"));
  assert.equal(irq.level, true);
  assert.equal(u.read(R.MIS, 2), INT.RT);
  let line = "";
  while (!(u.read(R.FR, 2) & FR.RXFE)) line += String.fromCharCode(u.read(R.DR, 2) & 0xff);
  assert.equal(line, "ls\r");
  assert.equal(irq.level, false);
  // TX by PIO: write while !TXFF, then unmask TX; TX interrupt fires; stop_tx masks it.
  for (const c of "ok") {
    assert.equal(u.read(R.FR, 2) & FR.TXFF, 0);
    u.write(R.DR, 2, c.charCodeAt(0));
  }
  u.write(R.IMSC, 2, INT.RX | INT.RT | INT.TX);
  assert.equal(irq.level, true);
  u.write(R.IMSC, 2, INT.RX | INT.RT);
  assert.equal(irq.level, false);
  assert.equal(String.fromCharCode(...out), "ok");
});

test("narrow and unaligned accesses", () => {
  const { u } = make();
  u.write(R.IBRD, 4, 0x12345);
  assert.equal(u.read(R.IBRD, 4), 0x2345);
  assert.equal(u.read(R.IBRD, 1), 0x45);
  assert.equal(u.read(R.IBRD + 1, 1), 0x23);
  assert.equal(u.read(R.IBRD, 2), 0x2345);
  u.write(R.IBRD + 1, 1, 0xff); // ignored
  assert.equal(u.read(R.IBRD, 4), 0x2345);
  assert.equal(u.read(0x100, 4), 0);
  u.input(Uint8Array.of(7));
  assert.equal(u.read(R.DR + 1, 1), 0); // error bits: does not pop
  assert.equal(u.read(R.DR, 1), 7);
});

test("state: save, load into a fresh device, identical behaviour; the line is driven", () => {
  const { u } = make();
  u.write(R.LCR_H, 4, FEN | WLEN8);
  u.write(R.IMSC, 4, INT.RX | INT.RT);
  u.input(Uint8Array.from({ length: 40 }, (_, i) => 65 + i));
  u.read(R.DR, 4);
  const s = JSON.parse(JSON.stringify(u.saveState()));
  const b = make();
  b.u.loadState(s, 1);
  assert.equal(b.irq.level, true);
  assert.deepEqual(b.u.saveState(), u.saveState());
  const drain = (x: Pl011) => {
    const r: number[] = [];
    while (!(x.read(R.FR, 4) & FR.RXFE)) r.push(x.read(R.DR, 4));
    return r;
  };
  assert.deepEqual(drain(b.u), drain(u));
});

test("state: untrusted input is refused with StateError", () => {
  const { u } = make();
  const good = u.saveState() as Record<string, unknown>;
  const bad = [
    null,
    42,
    [],
    { ...good, cr: -1 },
    { ...good, ifls: 0x40 },
    { ...good, rx: "x" },
    { ...good, rx: [0x1000] },
    { ...good, rx: new Array(33).fill(1) },
    { ...good, backlog: [256] },
    { ...good, imsc: 1.5 },
  ];
  for (const s of bad) assert.throws(() => u.loadState(s as never, 1), StateError, JSON.stringify(s));
  assert.throws(
    () => u.loadState(good as never, u.stateVersion + 1),
    new RegExp(`version ${u.stateVersion + 1}`),
  );
});

test("property: random register traffic and input never lose or reorder received bytes", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.record({ k: fc.constant("in" as const), n: fc.integer({ min: 1, max: 40 }) }),
          fc.record({ k: fc.constant("rd" as const) }),
          fc.record({
            k: fc.constant("wr" as const),
            off: fc.constantFrom(0x2c, 0x30, 0x34, 0x38, 0x44),
            v: fc.nat(0xffff),
          }),
          fc.record({ k: fc.constant("save" as const) }),
        ),
        { maxLength: 60 },
      ),
      (ops) => {
        let { u, irq } = make();
        let next = 0;
        const got: number[] = [];
        for (const op of ops) {
          if (op.k === "in") u.input(Uint8Array.from({ length: op.n }, () => next++ & 0xff));
          else if (op.k === "rd") {
            if (!(u.read(R.FR, 4) & FR.RXFE)) got.push(u.read(R.DR, 4) & 0xff);
          } else if (op.k === "wr") u.write(op.off, 4, op.v & (op.off === 0x30 ? ~CR.LBE : 0xffff));
          else {
            const s = JSON.parse(JSON.stringify(u.saveState()));
            ({ u, irq } = make());
            u.loadState(s, 1);
          }
          assert.equal(irq.level, (u.read(R.MIS, 4) & 0x7ff) !== 0);
        }
        while (!(u.read(R.FR, 4) & FR.RXFE)) got.push(u.read(R.DR, 4) & 0xff);
        assert.deepEqual(
          got,
          Array.from({ length: next }, (_, i) => i & 0xff),
        );
      },
    ),
    { numRuns: 1000 },
  );
});
