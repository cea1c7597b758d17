/**
 * Console output backpressure end to end (issue 9 item 4): the real `armbox run` of a guest
 * that floods its console (guests/flood: flood.elf on the PL011, vflood.elf on the virtio
 * console) with its stdout a pipe the test reads slowly (test/support/slow-pipe.ts).
 *   - Every byte the guest wrote arrives, in order, none lost, though the reader keeps
 *     stopping; a finite flood reports that its vCPU waited (busy polls) and its last line
 *     arrives before armbox exits 0.
 *   - The VMM does not buffer for a stalled reader: its RSS stays under a bound while the guest
 *     had the CPU time to write four times that bound (the guest waits for its transmit
 *     buffers instead; the virtio console only, see there).
 *   - In --deterministic runs a slow reader changes nothing the guest sees: the whole output
 *     and the state digest after N instructions equal a fast reader's.
 *
 * Nothing here waits for a number of milliseconds as a verdict: a stall lasts until the child
 * has spent a given CPU time (measured in /proc), which is what the guest needs to write a
 * given number of bytes at the rate this same run showed while read fast.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { type TestContext, test } from "node:test";
import { kill, track } from "./support/children.ts";
import { until } from "./support/events.ts";
import { procSample, rssKiB } from "./support/proc.ts";
import { FloodStream, PipeReader } from "./support/slow-pipe.ts";

const ARMBOX = new URL("../bin/armbox.js", import.meta.url).pathname;
const GUESTS = new URL("../guests/flood/bin/", import.meta.url).pathname;
const KiB = 1024;
const MiB = 1024 * KiB;

interface Flood {
  name: string;
  /** armbox run arguments but the kernel. */
  args: string[];
  /** The forever and the finite build, and the finite one's line count. */
  forever: string;
  finite: string;
  finiteLines: number;
}

const PL011: Flood = {
  name: "PL011",
  args: [],
  forever: "flood.elf",
  finite: "flood-1m.elf",
  finiteLines: 16384,
};
const VIRTIO: Flood = {
  name: "virtio console",
  args: ["--device", "virtio-serial-device"],
  forever: "vflood.elf",
  finite: "vflood-4m.elf",
  finiteLines: 65536,
};

/**
 * How much the VMM's RSS may grow while the reader is stalled. What it holds for the guest is
 * bounded by src/vmm/host/output-stream.ts's OUTPUT_BOUND (64 KiB) plus one gathered piece
 * (16 KiB) and the device's own (the PL011's 32-byte FIFO, or one 64 KiB virtio TX chunk):
 * under 200 KiB. The rest of the margin is the JavaScript heap's own movement, measured flat
 * to the kilobyte over 15 s of a stalled flood (69,064 kB start to end). Without backpressure
 * the RSS grows by what the guest writes, byte for byte.
 */
const RSS_BOUND = 4 * MiB;
/**
 * The deterministic runs compare the slow run's RSS with the fast run's at the same point
 * (midRunPeak), two processes whose heaps move apart by up to 2 MiB over 28 MiB of output
 * (measured); without backpressure the slow one holds the rest of the output, 20 MiB more.
 */
const DETERMINISTIC_RSS_BOUND = 8 * MiB;
/** CPU seconds into a stall before its RSS is taken as the start (see RSS_BOUND). */
const WARM = 0.5;
/**
 * CPU seconds the VMM runs, read as fast as the test can, before a stall whose RSS is
 * bounded: in its first second the translator compiles the guest's loops and V8 tiers
 * that code up, and the RSS rises by up to 12 MiB (measured) that hold no output; from
 * then on it is flat while read fast.
 */
const WARM_UP = 1.5;

interface Run {
  pid: number;
  reader: PipeReader;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function armbox(t: TestContext, args: string[]): Run {
  const proc = track(spawn(process.execPath, [ARMBOX, "run", ...args], { stdio: ["pipe", "pipe", "pipe"] }));
  t.after(() => kill(proc));
  let stderr = "";
  proc.stderr.on("data", (d: Buffer) => {
    stderr += d.toString("latin1");
  });
  proc.stdin.on("error", () => {});
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once("close", (code, signal) => resolve({ code, signal }));
  });
  assert.ok(proc.pid !== undefined, "armbox started");
  return { pid: proc.pid, reader: new PipeReader(proc.stdout), stderr: () => stderr, exited };
}

/** Reads bites of at most `bite` bytes into `flood` until it has checked `upTo` bytes of lines. */
async function readUpTo(run: Run, flood: FloodStream, upTo: number, bite: number): Promise<void> {
  while (flood.bytes < upTo) {
    const b = await run.reader.bite(bite);
    if (b === null) throw new Error(`armbox's output ended at ${flood.bytes} bytes\n${run.stderr()}`);
    flood.feed(b);
  }
}

/**
 * The reader stops for as long as the child needs to spend `cpuSeconds` of CPU time, sampling
 * its RSS meanwhile, from `warm` CPU seconds into the stall (see RSS_BOUND); or until the child
 * stops using the CPU (the guest has finished, or a deterministic run waits for the reader:
 * its CPU time unchanged over 20 samples, asleep) or exits. Returns the RSS when the samples
 * began and the largest seen.
 */
async function stall(
  run: Run,
  cpuSeconds: number,
  what: string,
  warm = 0,
): Promise<{ rss0: number; maxRss: number; idle: boolean }> {
  let s0: ReturnType<typeof procSample>;
  try {
    s0 = procSample(run.pid);
  } catch {
    return { rss0: -1, maxRss: 0, idle: false }; // it has exited
  }
  let rss0 = -1;
  let maxRss = 0;
  let last = s0.cpu;
  let still = 0;
  let idle = false;
  let gone = false;
  run.exited.then(() => {
    gone = true;
  });
  await until(() => {
    if (gone) return true;
    let s: ReturnType<typeof procSample>;
    try {
      s = procSample(run.pid);
    } catch {
      return true; // exited between two samples
    }
    if (s.cpu - s0.cpu >= warm) {
      if (rss0 < 0) rss0 = s.rss;
      maxRss = Math.max(maxRss, s.rss);
    }
    still = s.cpu === last && s.state !== "R" ? still + 1 : 0;
    last = s.cpu;
    if (still >= 20) idle = true;
    return idle || s.cpu - s0.cpu >= warm + cpuSeconds;
  }, what);
  return { rss0, maxRss, idle };
}

/** Reads as fast as the test can until the VMM has used `cpuSeconds` of CPU time since it started. */
async function warmUp(run: Run, flood: FloodStream, cpuSeconds: number): Promise<void> {
  while (procSample(run.pid).cpu < cpuSeconds) await readUpTo(run, flood, flood.bytes + 1, 1 << 20);
}

/**
 * The guest's output rate, in bytes per second of the VMM's CPU time, read as fast as the test
 * can, once the first 64 KiB of lines are in (so that the VMM's start-up is not counted), over
 * 0.5 s of CPU time (/proc counts in 10 ms ticks) or `most` bytes.
 */
async function measureRate(run: Run, flood: FloodStream, most = Number.POSITIVE_INFINITY): Promise<number> {
  await readUpTo(run, flood, flood.bytes + 64 * KiB, 1 << 20);
  const s0 = procSample(run.pid);
  const b0 = flood.bytes;
  for (;;) {
    const b = await run.reader.bite(1 << 20);
    if (b === null) throw new Error(`armbox's output ended at ${flood.bytes} bytes\n${run.stderr()}`);
    flood.feed(b);
    const s = procSample(run.pid);
    const cpu = s.cpu - s0.cpu;
    if (cpu >= 0.5 || flood.bytes - b0 >= most) return (flood.bytes - b0) / Math.max(cpu, 0.01);
  }
}

for (const dev of [PL011, VIRTIO]) {
  test(`armbox run, ${dev.name} flood into a slow pipe: every byte in order, the vCPU waited, the last line before exit 0`, async (t) => {
    const run = armbox(t, ["--kernel", GUESTS + dev.finite, ...dev.args]);
    const flood = new FloodStream(dev.finiteLines);
    const total = dev.finiteLines * 64;
    // Small bites, and a stall every quarter of the stream long enough for the guest to fill
    // the pipe and the VMM's bound several times over at its unthrottled rate.
    const rate = await measureRate(run, flood, total / 4);
    for (let k = 1; k <= 4 && flood.bytes < total; k++) {
      await stall(run, Math.max(0.05, (2 * 256 * KiB) / rate), `${dev.name} stall ${k}`);
      await readUpTo(run, flood, Math.min(total, (total * k) / 4), 4 * KiB);
    }
    for (;;) {
      const b = await run.reader.bite(4 * KiB);
      if (b === null) break;
      flood.feed(b);
    }
    const exit = await run.exited;
    assert.equal(flood.bytes, total, "every line arrived");
    const m = /^flood done: ([0-9a-f]{16}) ([0-9a-f]{16})\n$/.exec(flood.tail);
    assert.ok(m, `the last line arrived: ${JSON.stringify(flood.tail)}\n${run.stderr()}`);
    assert.equal(Number.parseInt(m[1]!, 16), total, "the guest's count of what it wrote");
    const busy = Number.parseInt(m[2]!, 16);
    assert.ok(busy > 0, "the guest's vCPU waited for the console (TXFF, or transmit buffers not yet used)");
    assert.deepEqual(exit, { code: 0, signal: null }, run.stderr());
  });
}

/*
 * The VMM's memory for a stalled reader. Only the virtio console floods fast enough for this
 * to tell: a PL011 driver writes about 0.5-0.7 MiB per CPU second here (two MMIO accesses a
 * byte), so the RSS of an unthrottled PL011 flood grows too slowly to stand out from the
 * heap's own movement within a test's time; its backpressure is shown by the guest's busy
 * polls above. vflood writes 15-20 MiB per CPU second.
 */
test(`armbox run, virtio console flood into a stalled pipe: the VMM's RSS stays within ${RSS_BOUND / MiB} MiB while the guest could write four times that`, async (t) => {
  const run = armbox(t, ["--kernel", GUESTS + VIRTIO.forever, ...VIRTIO.args]);
  const flood = new FloodStream();
  await warmUp(run, flood, WARM_UP);
  const rate = await measureRate(run, flood);
  // Four times the bound at the rate just measured (at least 1 s of CPU time).
  const cpu = Math.max(1, (4 * RSS_BOUND) / rate);
  const before = flood.bytes;
  const { rss0, maxRss } = await stall(run, cpu, `virtio console: the stalled reader`, WARM);
  t.diagnostic(
    `virtio console: ${(rate / MiB).toFixed(1)} MiB per CPU second read fast; stalled for ${cpu.toFixed(1)} CPU s ` +
      `(${((cpu * rate) / MiB).toFixed(1)} MiB at that rate): RSS ${(rss0 / MiB).toFixed(1)} -> at most ${(maxRss / MiB).toFixed(1)} MiB`,
  );
  assert.ok(
    maxRss - rss0 <= RSS_BOUND,
    `RSS grew by ${((maxRss - rss0) / MiB).toFixed(1)} MiB (bound ${RSS_BOUND / MiB} MiB) while nobody read`,
  );
  // Then everything it did write is there, in order, and the flood goes on.
  await readUpTo(run, flood, before + 2 * MiB, 16 * KiB);
});

/** Where in the output (bytes read so far) an RSS was sampled. */
interface RssAt {
  at: number;
  rss: number;
}

/** Reads the whole output as fast as the test can, sampling the RSS after each bite. */
async function readAll(run: Run): Promise<{ out: Buffer; rss: RssAt[] }> {
  const parts: Buffer[] = [];
  const rss: RssAt[] = [];
  let at = 0;
  for (;;) {
    const b = await run.reader.bite(1 << 20);
    if (b === null) return { out: Buffer.concat(parts), rss };
    parts.push(b);
    at += b.length;
    const kib = rssKiB(run.pid);
    if (kib !== null) rss.push({ at, rss: kib * 1024 });
  }
}

/**
 * The largest RSS sampled while more than 1 MiB of output was still to be read: the run is
 * then still going (a VMM that waits for its reader holds far less), not computing the state
 * digest at its end, whose own allocations vary from run to run by more than the bound.
 */
function midRunPeak(samples: RssAt[], total: number): number {
  return Math.max(0, ...samples.filter((s) => s.at + MiB < total).map((s) => s.rss));
}

/** The flood's lines checked, and the state digest printed after them. */
function digestOf(out: Buffer, what: string): { digest: string; lines: number } {
  const text = out.toString("latin1");
  const at = text.lastIndexOf("state-digest: ");
  assert.ok(at > 0, `${what}: no state-digest line at the end: ${JSON.stringify(text.slice(-200))}`);
  const m = /^state-digest: ([0-9a-f]{64})\n$/.exec(text.slice(at));
  assert.ok(m, `${what}: the state-digest line is not the last: ${JSON.stringify(text.slice(at, at + 200))}`);
  const flood = new FloodStream();
  flood.feed(out.subarray(0, at));
  return { digest: m[1]!, lines: flood.linesSeen };
}

/** N for --stop-at: about 0.8 MiB of PL011 output, 28 MiB of virtio console output. */
const DETERMINISTIC_N: Record<string, number> = { [PL011.name]: 10_000_000, [VIRTIO.name]: 60_000_000 };

for (const dev of [PL011, VIRTIO]) {
  test(`armbox run --deterministic, ${dev.name} flood: the output and the state digest after N instructions are the same read fast or slowly`, async (t) => {
    const n = DETERMINISTIC_N[dev.name]!;
    const args = [
      "--deterministic",
      "--kernel",
      GUESTS + dev.forever,
      ...dev.args,
      "--stop-at",
      String(n),
      "--state-digest",
    ];
    const fastRun = armbox(t, args);
    const { out: fast, rss: fastSamples } = await readAll(fastRun);
    assert.deepEqual(await fastRun.exited, { code: 0, signal: null }, fastRun.stderr());
    const ref = digestOf(fast, "read fast");
    assert.ok(
      ref.lines * 64 > 2 * 256 * KiB,
      `the flood wrote ${ref.lines} lines: more than the pipe and the bound hold`,
    );

    // Slowly: small bites, and a stall after each ninth of the output until the VMM stops using
    // the CPU (its run loop waits for the reader; the guest must not see it) or, if it does
    // not, for half a CPU second.
    const slowRun = armbox(t, args);
    const slowSamples: RssAt[] = [];
    const parts: Buffer[] = [];
    let got = 0;
    let idleStalls = 0;
    const bite = Math.max(4 * KiB, fast.length >> 9);
    for (let k = 1; k <= 8; k++) {
      while (got < (fast.length * k) / 9) {
        const b = await slowRun.reader.bite(bite);
        if (b === null) break;
        parts.push(b);
        got += b.length;
      }
      const s = await stall(slowRun, 0.5, `${dev.name}: deterministic stall ${k}`);
      if (s.idle && got + 256 * KiB < fast.length) idleStalls++;
      slowSamples.push({ at: got, rss: s.maxRss });
    }
    for (;;) {
      const b = await slowRun.reader.bite(bite);
      if (b === null) break;
      parts.push(b);
    }
    const slow = Buffer.concat(parts);
    assert.deepEqual(await slowRun.exited, { code: 0, signal: null }, slowRun.stderr());
    const other = digestOf(slow, "read slowly");
    const fastRss = midRunPeak(fastSamples, fast.length);
    const maxRss = midRunPeak(slowSamples, fast.length);
    t.diagnostic(
      `${dev.name}: ${fast.length} bytes, ${idleStalls} of 8 stalls found the VMM waiting; ${fastRss > 0 ? `mid-run RSS at most ${(fastRss / MiB).toFixed(1)} MiB read fast, ${(maxRss / MiB).toFixed(1)} MiB slowly` : "too short for a mid-run RSS"}; digest ${ref.digest.slice(0, 16)}`,
    );
    assert.equal(other.lines, ref.lines, "the same number of lines");
    assert.ok(slow.equals(fast), "the same output byte for byte");
    assert.equal(other.digest, ref.digest, "the same state digest");
    assert.ok(
      idleStalls > 0,
      "the run loop waited for the slow reader (the VMM idle with output still to come)",
    );
    // The same instructions run read fast are the reference for the heap's own growth (the
    // PL011 flood is too short for this to tell anything: see midRunPeak).
    if (fast.length > 8 * MiB)
      assert.ok(
        maxRss - fastRss <= DETERMINISTIC_RSS_BOUND,
        `RSS ${((maxRss - fastRss) / MiB).toFixed(1)} MiB above the fast run's while the reader was slow (bound ${DETERMINISTIC_RSS_BOUND / MiB} MiB)`,
      );
  });
}
