/**
 * Register representation benchmark (docs/STATE.md): the same register-to-register
 * dispatch loop (add, xor, shift, compare-with-flags over 64-bit registers) written
 * three ways over one WebAssembly.Memory.
 */
const memory = new WebAssembly.Memory({ initial: 1 });
const OPS = 20_000_000;
const prog = new Uint8Array(1024);
for (let i = 0; i < prog.length; i++) prog[i] = (i * 7 + 3) % 4;

function bigintLoop(): number {
  const r = new BigUint64Array(memory.buffer, 0, 32);
  for (let i = 0; i < 32; i++) r[i] = (BigInt(i) * 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
  let flags = 0;
  for (let i = 0; i < OPS; i++) {
    const a = i & 31;
    const b = (i + 7) & 31;
    switch (prog[i & 1023]) {
      case 0:
        r[a] = BigInt.asUintN(64, r[a]! + r[b]!);
        break;
      case 1:
        r[a] = r[a]! ^ r[b]!;
        break;
      case 2:
        r[a] = BigInt.asUintN(64, r[b]! << 3n);
        break;
      default:
        flags = r[a]! === r[b]! ? 4 : r[a]! < r[b]! ? 8 : 2;
    }
  }
  return flags;
}

function halvesLoop(): number {
  const r = new Uint32Array(memory.buffer, 4096, 64);
  for (let i = 0; i < 64; i++) r[i] = Math.imul(i, 0x9e3779b9) >>> 0;
  let flags = 0;
  for (let i = 0; i < OPS; i++) {
    const a = (i & 31) * 2;
    const b = ((i + 7) & 31) * 2;
    switch (prog[i & 1023]) {
      case 0: {
        const lo = r[a]! + r[b]!;
        r[a] = lo >>> 0;
        r[a + 1] = (r[a + 1]! + r[b + 1]! + (lo > 0xffffffff ? 1 : 0)) >>> 0;
        break;
      }
      case 1:
        r[a] = r[a]! ^ r[b]!;
        r[a + 1] = r[a + 1]! ^ r[b + 1]!;
        break;
      case 2:
        r[a + 1] = ((r[b + 1]! << 3) | (r[b]! >>> 29)) >>> 0;
        r[a] = (r[b]! << 3) >>> 0;
        break;
      default: {
        const ah = r[a + 1]!;
        const bh = r[b + 1]!;
        flags = ah === bh ? (r[a] === r[b] ? 4 : r[a]! < r[b]! ? 8 : 2) : ah < bh ? 8 : 2;
      }
    }
  }
  return flags;
}

function float64Loop(): number {
  // Doubles hold only 53 bits: shown for scale, not a valid representation.
  const r = new Float64Array(memory.buffer, 8192, 32);
  for (let i = 0; i < 32; i++) r[i] = i * 12345;
  let flags = 0;
  for (let i = 0; i < OPS; i++) {
    const a = i & 31;
    const b = (i + 7) & 31;
    switch (prog[i & 1023]) {
      case 0:
        r[a] = (r[a]! + r[b]!) % 9007199254740991;
        break;
      case 1:
        r[a] = r[a]! - r[b]!;
        break;
      case 2:
        r[a] = (r[b]! * 8) % 9007199254740991;
        break;
      default:
        flags = r[a] === r[b] ? 4 : r[a]! < r[b]! ? 8 : 2;
    }
  }
  return flags;
}

export function runRepresentationBench(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, fn] of [
    ["BigUint64Array + asUintN", bigintLoop],
    ["Uint32Array halves", halvesLoop],
    ["Float64Array (53-bit, reference only)", float64Loop],
  ] as const) {
    fn();
    const t0 = performance.now();
    fn();
    const ms = performance.now() - t0;
    out[name] = OPS / ms / 1000;
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const [k, v] of Object.entries(runRepresentationBench()))
    console.log(`${k.padEnd(40)} ${v.toFixed(1)} M ops/s`);
}
