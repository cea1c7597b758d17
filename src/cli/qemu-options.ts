/**
 * QEMU's spellings of `armbox run` (issue 11): a qemu-system-aarch64 command line works
 * unchanged. There is one parser, commander's, over one option table (run.ts); this file
 * only does what QEMU's own command line does before it reads an option:
 *
 *   - an option may be written with one dash or two (`-smp 4` is `--smp 4`, as in QEMU):
 *     a token of one dash and two or more characters gets the second dash, unless it is
 *     the value of the option before it (commander's table says which options take one);
 *   - a command line that starts with an option (`armbox -M virt -kernel Image …`) is
 *     `armbox run …`, as `qemu-system-aarch64 -M virt …` boots a machine;
 *
 * and the grammar of the values QEMU's options take (`-smp 4,maxcpus=8`, `-m 512`,
 * `-M virt,gic-version=3`), with errors that name what is wrong. An option armbox does
 * not have is refused naming it as the user typed it, with the nearest one armbox has.
 */

/** What a token of `args` is to the option table: an option taking a value, a flag, or unknown. */
export type OptionKind = "value" | "flag" | undefined;

/**
 * `args` with every one-dash option of two or more characters given its second dash.
 * `kind(long)` says whether `--long` takes a value (whose token is then left alone);
 * tokens after `--` are arguments. `spelled` maps each rewritten token back to the
 * user's own, for error messages.
 */
export function qemuSpellings(
  args: readonly string[],
  kind: (long: string) => OptionKind,
): { args: string[]; spelled: Map<string, string> } {
  const out: string[] = [];
  const spelled = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") {
      out.push(...args.slice(i));
      break;
    }
    let token = a;
    if (/^-[^-]./.test(a)) {
      token = `-${a}`;
      spelled.set(token.split("=")[0]!, a.split("=")[0]!);
    }
    out.push(token);
    // The value of an option that takes one is the next token, whatever it looks like.
    if (
      token.startsWith("--") &&
      !token.includes("=") &&
      kind(token.slice(2)) === "value" &&
      i + 1 < args.length
    ) {
      out.push(args[++i]!);
    } else if (/^-[^-]$/.test(token) && kind(token) === "value" && i + 1 < args.length) {
      out.push(args[++i]!);
    }
  }
  return { args: out, spelled };
}

/** Optimal string alignment distance (Damerau–Levenshtein with adjacent swaps). */
function editDistance(a: string, b: string): number {
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) d.push([i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The one-line refusal of option `typed` (as the user wrote it): with the nearest of
 * `known` (long names without dashes) when one is near enough, in the user's own style
 * of dashes.
 */
export function unknownOptionMessage(typed: string, known: readonly string[]): string {
  const name = typed.replace(/^-+/, "").split("=")[0]!;
  const dashes = typed.startsWith("--") ? "--" : "-";
  let best: string | null = null;
  let bestD = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const dist = editDistance(name, k);
    if (dist < bestD) {
      bestD = dist;
      best = k;
    }
  }
  // Near enough: at most a third of the name wrong (commander's own rule is 0.4).
  const near = best !== null && bestD > 0 && bestD <= Math.max(1, Math.floor(name.length / 3));
  return `unknown option '${typed}'${near ? ` (did you mean ${dashes}${best}?)` : ""}`;
}

/**
 * Splits a QEMU option string ("file=a.img,readonly=on") into key/value pairs; ",," is a
 * comma inside a value, as in QEMU. A leading bare word is returned under `implied`, a
 * later one is a flag set to "on".
 */
export function parseQemuOpts(spec: string, implied: string): Map<string, string> {
  const parts: string[] = [];
  let cur = "";
  for (let i = 0; i < spec.length; i++) {
    if (spec[i] !== ",") cur += spec[i];
    else if (spec[i + 1] === ",") {
      cur += ",";
      i++;
    } else {
      parts.push(cur);
      cur = "";
    }
  }
  parts.push(cur);
  const out = new Map<string, string>();
  parts.forEach((p, i) => {
    const eq = p.indexOf("=");
    if (eq < 0 && i === 0) out.set(implied, p);
    else if (eq < 0)
      out.set(p, "on"); // a bare flag, e.g. "readonly"
    else out.set(p.slice(0, eq), p.slice(eq + 1));
  });
  return out;
}

/** Refuses the keys of `o` that are not in `allowed`, naming the first, for option `opt` (as spelled). */
function onlyKeys(opt: string, spec: string, o: Map<string, string>, allowed: readonly string[]): void {
  for (const k of o.keys()) {
    if (!allowed.includes(k))
      throw new Error(`${opt} ${spec}: unknown property '${k}' (armbox has ${allowed.join(", ")})`);
  }
}

/** `-M virt[,gic-version=3][,dumpdtb=FILE][,accel=tcg]`: the one board armbox builds. */
export interface MachineOption {
  readonly dumpdtb?: string;
}

export function parseMachine(spec: string): MachineOption {
  const o = parseQemuOpts(spec, "type");
  const type = o.get("type") ?? "virt";
  if (type !== "virt" && !/^virt-\d+\.\d+$/.test(type))
    throw new Error(`-M ${spec}: armbox builds QEMU's 'virt' board only, not '${type}'`);
  onlyKeys("-M", spec, o, ["type", "gic-version", "dumpdtb", "accel"]);
  const gic = o.get("gic-version");
  // QEMU's 'max' and 'host' pick the newest GIC the accelerator has: GICv3 here.
  if (gic !== undefined && !["3", "max", "host"].includes(gic))
    throw new Error(`-M ${spec}: gic-version=${gic}: armbox's virt board has a GICv3 only (gic-version=3)`);
  const accel = o.get("accel");
  if (accel !== undefined) parseAccel(accel);
  const dumpdtb = o.get("dumpdtb");
  if (dumpdtb === "") throw new Error(`-M ${spec}: dumpdtb= needs a file name`);
  return dumpdtb !== undefined ? { dumpdtb } : {};
}

/** `-cpu cortex-a57|max`: armbox has one CPU model (cortex-a57's ID registers; `max` is all armbox implements, the same). */
export function parseCpu(model: string): void {
  if (model !== "cortex-a57" && model !== "max")
    throw new Error(
      `-cpu ${model}: armbox emulates one CPU, an Armv8.0 Cortex-A57 with LSE (cortex-a57, or max: the same)`,
    );
}

/** `-accel tcg[,thread=…]` (QEMU's translator is armbox's jit); anything else is refused. */
export function parseAccel(spec: string): "jit" | "interp" | "check" {
  const o = parseQemuOpts(spec, "accel");
  const a = o.get("accel") ?? "";
  if (a === "jit" || a === "interp" || a === "check") {
    onlyKeys("--accel", spec, o, ["accel"]);
    return a;
  }
  if (a === "tcg") {
    onlyKeys("-accel", spec, o, ["accel", "thread", "tb-size"]);
    return "jit";
  }
  throw new Error(
    `-accel ${spec}: armbox has no '${a}' accelerator (tcg, or armbox's own jit, interp, check)`,
  );
}

/** `-smp N[,cpus=N][,maxcpus=M][,sockets=S][,clusters=L][,cores=C][,threads=T]`, as QEMU reads it. */
export interface SmpOption {
  /** vCPUs created (and in the device tree). */
  readonly cpus: number;
  /** vCPUs the machine could have; QEMU's virt board creates `cpus` of them, and so does armbox. */
  readonly maxcpus: number;
}

export function parseSmp(spec: string): SmpOption {
  const o = parseQemuOpts(spec, "cpus");
  onlyKeys("-smp", spec, o, ["cpus", "maxcpus", "sockets", "clusters", "cores", "threads"]);
  const num = (k: string): number | undefined => {
    const v = o.get(k);
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v) || Number(v) === 0)
      throw new Error(`-smp ${spec}: ${k}=${v} is not a positive count`);
    return Number(v);
  };
  const topo = ["sockets", "clusters", "cores", "threads"].map(num);
  const product = topo.some((t) => t !== undefined)
    ? topo.reduce<number>((p, t) => p * (t ?? 1), 1)
    : undefined;
  const maxcpus = num("maxcpus") ?? product ?? num("cpus") ?? 1;
  const cpus = num("cpus") ?? maxcpus;
  if (product !== undefined && product !== maxcpus)
    throw new Error(
      `-smp ${spec}: sockets × clusters × cores × threads is ${product}, not maxcpus ${maxcpus}`,
    );
  if (maxcpus < cpus) throw new Error(`-smp ${spec}: maxcpus (${maxcpus}) is less than cpus (${cpus})`);
  return { cpus, maxcpus };
}

/** `-m SIZE` or `-m size=SIZE`: the size's text (run.ts parseSize reads it; a bare number is MiB, as in QEMU). */
export function parseMemoryOption(spec: string): string {
  const o = parseQemuOpts(spec, "size");
  onlyKeys("-m", spec, o, ["size"]);
  return o.get("size") ?? "";
}

/** `-serial stdio|mon:stdio`, `-display none`, `-monitor none`: what armbox's console is. */
export function checkConsoleOptions(o: { serial?: string; display?: string; monitor?: string }): void {
  if (o.serial !== undefined && o.serial !== "stdio" && o.serial !== "mon:stdio")
    throw new Error(`-serial ${o.serial}: armbox's serial console is on stdio (-serial stdio or mon:stdio)`);
  if (o.display !== undefined && o.display !== "none")
    throw new Error(`-display ${o.display}: armbox has no display (-display none)`);
  if (o.monitor !== undefined && o.monitor !== "none")
    throw new Error(
      `-monitor ${o.monitor}: armbox's monitor is on the console (-nographic or -serial mon:stdio, then Ctrl-A c) or over QMP ('armbox monitor SOCK')`,
    );
}
