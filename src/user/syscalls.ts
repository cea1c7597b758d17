/**
 * Linux system calls for AArch64 user programs (asm-generic/unistd.h numbering).
 * Number in X8, arguments in X0..X5, result (or -errno) in X0; the PC is already past
 * the SVC when we get here. Host access goes through Node's synchronous fs API.
 */
import { randomFillSync } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { ElfError } from "../machine/elf.ts";
import {
  DirFile,
  E,
  HostFile,
  hostErrno,
  hostOpenFlags,
  LINUX_O,
  type OpenFile,
  Pipe,
  PipeReadEnd,
  PipeWriteEnd,
  sleepMs,
} from "./files.ts";
import { PAGE, pageUp } from "./memory.ts";
import { ProcessExit, SIG, type UserProcess } from "./process.ts";

type Handler = (p: UserProcess, a: number[]) => number;

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_EMPTY_PATH = 0x1000;
const AT_REMOVEDIR = 0x200;

// ---------------------------------------------------------------------------
// Guest memory helpers

function mem(p: UserProcess, addr: number, len: number): Uint8Array | null {
  if (!p.as.valid(addr, len)) return null;
  return p.as.bytes(addr, len);
}

/** Reads a NUL-terminated string, or null if it runs off guest memory. */
export function readCString(p: UserProcess, addr: number, max = 4096): string | null {
  if (addr === 0 || !p.as.valid(addr, 1)) return null;
  const m8 = p.as.m8;
  const start = p.as.host + addr;
  const limit = Math.min(start + max, p.as.host + p.ramSize);
  let e = start;
  while (e < limit && m8[e] !== 0) e++;
  if (e === limit) return null;
  return Buffer.from(m8.buffer, start, e - start).toString("utf8");
}

function readPtrArray(p: UserProcess, addr: number): string[] | null {
  const out: string[] = [];
  if (addr === 0) return out;
  for (let i = 0; i < 65536; i++) {
    if (!p.as.valid(addr + i * 8, 8)) return null;
    const v = Number(p.as.dv.getBigUint64(p.as.host + addr + i * 8, true));
    if (v === 0) return out;
    const s = readCString(p, v, 131072);
    if (s === null) return null;
    out.push(s);
  }
  return null;
}

function putU64(p: UserProcess, addr: number, v: bigint | number): void {
  p.as.dv.setBigUint64(p.as.host + addr, BigInt.asUintN(64, BigInt(v)), true);
}
function putU32(p: UserProcess, addr: number, v: number): void {
  p.as.dv.setUint32(p.as.host + addr, v >>> 0, true);
}
function getU64(p: UserProcess, addr: number): number {
  const dv = p.as.dv;
  return dv.getUint32(p.as.host + addr, true) + dv.getUint32(p.as.host + addr + 4, true) * 2 ** 32;
}
function getS64(p: UserProcess, addr: number): number {
  return Number(p.as.dv.getBigInt64(p.as.host + addr, true));
}

/** Signed view of a 64-bit argument (doSyscall already reads them signed). */
function s64(v: number): number {
  return v;
}
/** Low 32 bits of an argument as a signed int (C `int` parameters). */
function int(v: number): number {
  return v | 0;
}

function fileOf(p: UserProcess, fd: number): OpenFile | null {
  return p.fds.get(int(fd));
}

/** Resolves a path argument relative to dirfd (openat family). */
function atPath(p: UserProcess, dirfd: number, pathAddr: number, allowEmpty = false): string | number {
  const s = readCString(p, pathAddr);
  if (s === null) return -E.FAULT;
  if (s === "") {
    if (!allowEmpty) return -E.NOENT;
    const f = fileOf(p, dirfd);
    if (f === null) return int(dirfd) === AT_FDCWD ? p.cwd : -E.BADF;
    return f.hostPath() ?? -E.BADF;
  }
  return resolveAt(p, int(dirfd), s);
}
function resolveAt(p: UserProcess, dirfd: number, s: string): string | number {
  if (s.startsWith("/")) return mapSpecial(p, s);
  if (dirfd === AT_FDCWD) return mapSpecial(p, path.resolve(p.cwd, s));
  const f = p.fds.get(dirfd);
  if (f === null) return -E.BADF;
  const base = f.hostPath();
  if (base === null || f.kind !== "dir") return -E.NOTDIR;
  return mapSpecial(p, path.resolve(base, s));
}
/** /proc/self/exe and friends name the guest's view, not the host's. */
function mapSpecial(p: UserProcess, s: string): string {
  if (s === "/proc/self/exe" || s === `/proc/${p.pid}/exe`) return p.exePath;
  return s;
}

// ---------------------------------------------------------------------------
// stat

function writeStat(p: UserProcess, addr: number, st: fs.BigIntStats): number {
  const b = mem(p, addr, 128);
  if (b === null) return -E.FAULT;
  b.fill(0);
  const o = addr;
  putU64(p, o, st.dev);
  putU64(p, o + 8, st.ino);
  putU32(p, o + 16, Number(st.mode));
  putU32(p, o + 20, Number(st.nlink));
  putU32(p, o + 24, Number(st.uid));
  putU32(p, o + 28, Number(st.gid));
  putU64(p, o + 32, st.rdev);
  putU64(p, o + 48, st.size);
  putU32(p, o + 56, Number(st.blksize));
  putU64(p, o + 64, st.blocks);
  putU64(p, o + 72, st.atimeNs / 1_000_000_000n);
  putU64(p, o + 80, st.atimeNs % 1_000_000_000n);
  putU64(p, o + 88, st.mtimeNs / 1_000_000_000n);
  putU64(p, o + 96, st.mtimeNs % 1_000_000_000n);
  putU64(p, o + 104, st.ctimeNs / 1_000_000_000n);
  putU64(p, o + 112, st.ctimeNs % 1_000_000_000n);
  return 0;
}

/** A stat for things with no host file behind them (pipes, captured output). */
function fakeStat(f: OpenFile): fs.BigIntStats {
  const mode = f.kind === "pipe-r" || f.kind === "pipe-w" ? 0o010600 : 0o020620;
  const z = 0n;
  return {
    dev: 12n,
    ino: 1n,
    mode: BigInt(mode),
    nlink: 1n,
    uid: BigInt(process.getuid?.() ?? 0),
    gid: BigInt(process.getgid?.() ?? 0),
    rdev: f.kind === "sink" || f.kind === "source" ? 0x8800n : 0n,
    size: z,
    blksize: 4096n,
    blocks: z,
    atimeNs: z,
    mtimeNs: z,
    ctimeNs: z,
    birthtimeNs: z,
  } as unknown as fs.BigIntStats;
}

function statPath(_p: UserProcess, file: string | number, follow: boolean): fs.BigIntStats | number {
  if (typeof file === "number") return file;
  try {
    return follow ? fs.statSync(file, { bigint: true }) : fs.lstatSync(file, { bigint: true });
  } catch (e) {
    return hostErrno(e);
  }
}

function statFd(p: UserProcess, fd: number): fs.BigIntStats | number {
  const f = fileOf(p, fd);
  if (f === null) return -E.BADF;
  return f.stat() ?? fakeStat(f);
}

function writeStatx(p: UserProcess, addr: number, st: fs.BigIntStats): number {
  const b = mem(p, addr, 256);
  if (b === null) return -E.FAULT;
  b.fill(0);
  putU32(p, addr, 0x7ff); // STATX_BASIC_STATS | STATX_BTIME
  putU32(p, addr + 4, Number(st.blksize));
  putU32(p, addr + 16, Number(st.nlink));
  putU32(p, addr + 20, Number(st.uid));
  putU32(p, addr + 24, Number(st.gid));
  p.as.dv.setUint16(p.as.host + addr + 28, Number(st.mode), true);
  putU64(p, addr + 32, st.ino);
  putU64(p, addr + 40, st.size);
  putU64(p, addr + 48, st.blocks);
  const ts = (off: number, ns: bigint): void => {
    putU64(p, addr + off, ns / 1_000_000_000n);
    putU32(p, addr + off + 8, Number(ns % 1_000_000_000n));
  };
  ts(64, st.atimeNs);
  ts(80, st.birthtimeNs ?? st.ctimeNs);
  ts(96, st.ctimeNs);
  ts(112, st.mtimeNs);
  const rdev = Number(st.rdev);
  putU32(p, addr + 128, (rdev >> 8) & 0xfff);
  putU32(p, addr + 132, (rdev & 0xff) | ((rdev >> 12) & 0xfff00));
  const dev = Number(st.dev);
  putU32(p, addr + 136, (dev >> 8) & 0xfff);
  putU32(p, addr + 140, (dev & 0xff) | ((dev >> 12) & 0xfff00));
  return 0;
}

// ---------------------------------------------------------------------------
// I/O

function doRead(f: OpenFile, buf: Uint8Array): number {
  // Read in bounded chunks so a huge count does not allocate host memory.
  return f.read(buf);
}

function iov(p: UserProcess, addr: number, cnt: number): { base: number; len: number }[] | number {
  if (cnt < 0 || cnt > 1024) return -E.INVAL;
  if (!p.as.valid(addr, cnt * 16)) return -E.FAULT;
  const out: { base: number; len: number }[] = [];
  for (let i = 0; i < cnt; i++) {
    const base = getU64(p, addr + i * 16);
    const len = getU64(p, addr + i * 16 + 8);
    if (len > 0 && !p.as.valid(base, len)) return -E.FAULT;
    out.push({ base, len });
  }
  return out;
}

// ---------------------------------------------------------------------------
// mmap

const MAP_SHARED = 1;
const MAP_FIXED = 0x10;
const MAP_ANONYMOUS = 0x20;
const MAP_FIXED_NOREPLACE = 0x100000;

function sysMmap(p: UserProcess, a: number[]): number {
  const [addr, lenArg, prot, flagsArg, fdArg, offArg] = a as [number, number, number, number, number, number];
  const flags = int(flagsArg);
  const len = pageUp(lenArg);
  if (lenArg === 0) return -E.INVAL;
  if (lenArg < 0 || len > p.ramSize) return -E.NOMEM;
  if (offArg % PAGE !== 0) return -E.INVAL;
  const anon = (flags & MAP_ANONYMOUS) !== 0;
  let file: OpenFile | null = null;
  if (!anon) {
    file = fileOf(p, fdArg);
    if (file === null) return -E.BADF;
    if (file.kind !== "host") return -E.ACCES;
  }
  let at: number;
  if ((flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) !== 0) {
    if (addr % PAGE !== 0) return -E.INVAL;
    if (!p.as.valid(addr, len)) return -E.NOMEM;
    if ((flags & MAP_FIXED_NOREPLACE) !== 0 && !p.as.isFree(addr, len)) return -E.EXIST;
    at = addr;
    p.as.mapRange(at, len, true);
  } else {
    if (
      addr !== 0 &&
      addr % PAGE === 0 &&
      p.as.valid(addr, len) &&
      addr >= p.as.brk &&
      addr + len <= p.as.mmapTop &&
      p.as.isFree(addr, len)
    )
      at = addr;
    else at = p.as.findFree(len);
    if (at < 0) return -E.NOMEM;
    p.as.mapRange(at, len, true);
  }
  if (file !== null) {
    const dst = p.as.bytes(at, Math.min(lenArg, len));
    const n = file.pread(dst, offArg);
    if (n < 0) {
      p.as.unmapRange(at, len);
      return n;
    }
    void MAP_SHARED; // shared file maps are treated as private (writes are not written back)
  }
  void prot; // no page protections in the flat address space
  return at;
}

function sysMremap(p: UserProcess, a: number[]): number {
  const [old, oldLenArg, newLenArg, flags] = a as [number, number, number, number];
  if (old % PAGE !== 0) return -E.INVAL;
  const oldLen = pageUp(oldLenArg);
  const newLen = pageUp(newLenArg);
  if (newLen === 0 || !p.as.valid(old, oldLen) || newLen > p.ramSize) return -E.INVAL;
  if (newLen <= oldLen) {
    p.as.unmapRange(old + newLen, oldLen - newLen);
    return old;
  }
  if (p.as.valid(old, newLen) && old + newLen <= p.as.mmapTop && p.as.isFree(old + oldLen, newLen - oldLen)) {
    p.as.mapRange(old + oldLen, newLen - oldLen);
    return old;
  }
  if ((flags & 1) === 0) return -E.NOMEM; // MREMAP_MAYMOVE
  const at = p.as.findFree(newLen);
  if (at < 0) return -E.NOMEM;
  p.as.mapRange(at, newLen);
  p.as.m8.copyWithin(p.as.host + at, p.as.host + old, p.as.host + old + oldLen);
  p.as.unmapRange(old, oldLen);
  return at;
}

// ---------------------------------------------------------------------------
// time

function nowNs(clock: number, p: UserProcess): bigint {
  switch (clock) {
    case 0: // REALTIME
    case 5: // REALTIME_COARSE
    case 8: // REALTIME_ALARM
    case 11: // TAI
      return BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
    case 2: // PROCESS_CPUTIME_ID
    case 3: // THREAD_CPUTIME_ID
      return process.hrtime.bigint() - p.startTime;
    default: // MONOTONIC, MONOTONIC_RAW, COARSE, BOOTTIME
      return process.hrtime.bigint();
  }
}

function putTimespec(p: UserProcess, addr: number, ns: bigint): number {
  if (!p.as.valid(addr, 16)) return -E.FAULT;
  putU64(p, addr, ns / 1_000_000_000n);
  putU64(p, addr + 8, ns % 1_000_000_000n);
  return 0;
}

function sleepTimespec(p: UserProcess, addr: number): number {
  if (!p.as.valid(addr, 16)) return -E.FAULT;
  const sec = getS64(p, addr);
  const nsec = getS64(p, addr + 8);
  if (sec < 0 || nsec < 0 || nsec >= 1e9) return -E.INVAL;
  sleepMs(Math.min(sec * 1000 + nsec / 1e6, 2 ** 31 - 1));
  return 0;
}

// ---------------------------------------------------------------------------
// process control

function sysExecve(
  p: UserProcess,
  pathAddr: number,
  argvAddr: number,
  envAddr: number,
  dirfd = AT_FDCWD,
): number {
  const s = readCString(p, pathAddr);
  if (s === null) return -E.FAULT;
  const file = resolveAt(p, dirfd, s);
  if (typeof file === "number") return file;
  const argv = readPtrArray(p, argvAddr);
  const envp = readPtrArray(p, envAddr);
  if (argv === null || envp === null) return -E.FAULT;
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    return hostErrno(e);
  }
  if (st.isDirectory()) return -E.ACCES;
  if ((st.mode & 0o111) === 0) return -E.ACCES;
  // "#!" scripts: run the interpreter with the script as an argument (binfmt_script).
  let target = file;
  let args = argv;
  try {
    const fd = fs.openSync(file, "r");
    const head = Buffer.alloc(256);
    const n = fs.readSync(fd, head, 0, 256, 0);
    fs.closeSync(fd);
    if (n >= 2 && head[0] === 0x23 && head[1] === 0x21) {
      const line = head.subarray(2, n).toString("utf8").split("\n")[0]!.trim();
      const m = /^(\S+)(?:\s+(.*))?$/.exec(line);
      if (m === null) return -E.NOEXEC;
      target = mapSpecial(p, m[1]!);
      args = [m[1]!, ...(m[2] ? [m[2]] : []), s, ...argv.slice(1)];
    }
  } catch (e) {
    return hostErrno(e);
  }
  try {
    p.exec(target, args, envp);
  } catch (e) {
    if (e instanceof ElfError) {
      if (p.strace) p.strace(`execve: ${e.message}`);
      return -E.NOEXEC;
    }
    return hostErrno(e);
  }
  return 0;
}

function sysWait4(p: UserProcess, a: number[]): number {
  const pid = int(a[0]!);
  const statusAddr = a[1]!;
  const options = int(a[2]!);
  let found = -1;
  for (const k of p.zombies.keys()) {
    if (pid === -1 || pid === 0 || pid === k || (pid < -1 && true)) {
      found = k;
      break;
    }
  }
  if (found < 0) {
    if ((options & 1) !== 0 && p.zombies.size > 0) return 0; // WNOHANG
    return -E.CHILD;
  }
  const code = p.zombies.get(found)!;
  p.zombies.delete(found);
  if (statusAddr !== 0) {
    if (!p.as.valid(statusAddr, 4)) return -E.FAULT;
    putU32(p, statusAddr, code);
  }
  if (a[3] !== 0 && p.as.valid(a[3]!, 144)) p.as.bytes(a[3]!, 144).fill(0);
  return found;
}

// ---------------------------------------------------------------------------
// The table

const T: Record<number, [string, Handler]> = {};
function def(nr: number, name: string, h: Handler): void {
  T[nr] = [name, h];
}

def(17, "getcwd", (p, [buf, size]) => {
  const b = Buffer.from(`${p.cwd}\0`);
  if (b.length > size!) return -E.RANGE;
  const m = mem(p, buf!, b.length);
  if (m === null) return -E.FAULT;
  m.set(b);
  return b.length;
});
def(23, "dup", (p, [fd]) => {
  const f = fileOf(p, fd!);
  if (f === null) return -E.BADF;
  f.refs++;
  return p.fds.install(f);
});
def(24, "dup3", (p, [oldfd, newfd, flags]) => {
  const f = fileOf(p, oldfd!);
  if (f === null || int(newfd!) < 0 || int(newfd!) >= 1024) return -E.BADF;
  if (int(oldfd!) === int(newfd!)) return -E.INVAL;
  f.refs++;
  p.fds.installAt(int(newfd!), f, (int(flags!) & LINUX_O.CLOEXEC) !== 0);
  return int(newfd!);
});
def(25, "fcntl", (p, [fdArg, cmd, arg]) => {
  const fd = int(fdArg!);
  const f = p.fds.get(fd);
  if (f === null) return -E.BADF;
  switch (int(cmd!)) {
    case 0: // F_DUPFD
    case 1030: // F_DUPFD_CLOEXEC
      f.refs++;
      return p.fds.install(f, int(cmd!) === 1030, int(arg!));
    case 1: // F_GETFD
      return p.fds.getCloexec(fd) ? 1 : 0;
    case 2: // F_SETFD
      p.fds.setCloexec(fd, (int(arg!) & 1) !== 0);
      return 0;
    case 3: // F_GETFL
      return f.flags | (f.kind === "dir" ? LINUX_O.DIRECTORY : 0) | LINUX_O.LARGEFILE;
    case 4: // F_SETFL
      f.flags =
        (f.flags & ~(LINUX_O.APPEND | LINUX_O.NONBLOCK)) | (int(arg!) & (LINUX_O.APPEND | LINUX_O.NONBLOCK));
      return 0;
    case 5: // F_GETLK
    case 6:
    case 7:
      return 0;
    case 1031: // F_SETPIPE_SZ
    case 1032: // F_GETPIPE_SZ
      return 65536;
    default:
      return -E.INVAL;
  }
});
def(29, "ioctl", (p, [fd, req, arg]) => {
  const f = fileOf(p, fd!);
  if (f === null) return -E.BADF;
  const r = req! >>> 0;
  const tty = f.isTty();
  switch (r) {
    case 0x5401: // TCGETS
      if (!tty) return -E.NOTTY;
      if (!p.as.valid(arg!, 60)) return -E.FAULT;
      p.as.bytes(arg!, 60).fill(0);
      // A plausible cooked-mode termios: ICRNL, OPOST|ONLCR, B38400|CS8|CREAD, ISIG|ICANON|ECHO...
      putU32(p, arg!, 0x500);
      putU32(p, arg! + 4, 0x5);
      putU32(p, arg! + 8, 0xbf);
      putU32(p, arg! + 12, 0x8a3b);
      return 0;
    case 0x5402: // TCSETS
    case 0x5403:
    case 0x5404:
      return tty ? 0 : -E.NOTTY;
    case 0x5413: {
      // TIOCGWINSZ
      if (!tty) return -E.NOTTY;
      if (!p.as.valid(arg!, 8)) return -E.FAULT;
      const cols = process.stdout.columns ?? 80;
      const rows = process.stdout.rows ?? 24;
      p.as.dv.setUint16(p.as.host + arg!, rows, true);
      p.as.dv.setUint16(p.as.host + arg! + 2, cols, true);
      p.as.dv.setUint32(p.as.host + arg! + 4, 0, true);
      return 0;
    }
    case 0x540f: // TIOCGPGRP
      if (!tty) return -E.NOTTY;
      if (!p.as.valid(arg!, 4)) return -E.FAULT;
      putU32(p, arg!, p.pid);
      return 0;
    case 0x5410: // TIOCSPGRP
      return tty ? 0 : -E.NOTTY;
    case 0x541b: // FIONREAD
      if (!p.as.valid(arg!, 4)) return -E.FAULT;
      putU32(p, arg!, f instanceof PipeReadEnd ? f.pipe.size : 0);
      return 0;
    case 0x5421: // FIONBIO
      return 0;
    default:
      return tty ? -E.INVAL : -E.NOTTY;
  }
});
def(34, "mkdirat", (p, [dirfd, pathAddr, mode]) => {
  const f = atPath(p, dirfd!, pathAddr!);
  if (typeof f === "number") return f;
  try {
    fs.mkdirSync(f, { mode: int(mode!) & ~p.umask });
    return 0;
  } catch (e) {
    return hostErrno(e);
  }
});
def(35, "unlinkat", (p, [dirfd, pathAddr, flags]) => {
  const f = atPath(p, dirfd!, pathAddr!);
  if (typeof f === "number") return f;
  try {
    if ((int(flags!) & AT_REMOVEDIR) !== 0) fs.rmdirSync(f);
    else fs.unlinkSync(f);
    return 0;
  } catch (e) {
    return hostErrno(e);
  }
});
def(36, "symlinkat", (p, [target, dirfd, pathAddr]) => {
  const t = readCString(p, target!);
  const f = atPath(p, dirfd!, pathAddr!);
  if (t === null) return -E.FAULT;
  if (typeof f === "number") return f;
  try {
    fs.symlinkSync(t, f);
    return 0;
  } catch (e) {
    return hostErrno(e);
  }
});
def(38, "renameat", (p, [od, op, nd, np]) => {
  const a = atPath(p, od!, op!);
  const b = atPath(p, nd!, np!);
  if (typeof a === "number") return a;
  if (typeof b === "number") return b;
  try {
    fs.renameSync(a, b);
    return 0;
  } catch (e) {
    return hostErrno(e);
  }
});
def(276, "renameat2", (p, a) => T[38]![1](p, a));
def(46, "ftruncate", (p, [fd, len]) => {
  const f = fileOf(p, fd!);
  if (!(f instanceof HostFile)) return -E.INVAL;
  try {
    fs.ftruncateSync(f.fd, len!);
    return 0;
  } catch (e) {
    return hostErrno(e);
  }
});
def(48, "faccessat", (p, [dirfd, pathAddr, mode]) => {
  const f = atPath(p, dirfd!, pathAddr!);
  if (typeof f === "number") return f;
  try {
    fs.accessSync(f, int(mode!) & 7);
    return 0;
  } catch (e) {
    return hostErrno(e);
  }
});
def(439, "faccessat2", (p, a) => T[48]![1](p, a));
def(49, "chdir", (p, [pathAddr]) => {
  const s = readCString(p, pathAddr!);
  if (s === null) return -E.FAULT;
  const d = path.resolve(p.cwd, s);
  try {
    if (!fs.statSync(d).isDirectory()) return -E.NOTDIR;
    fs.accessSync(d, fs.constants.X_OK);
  } catch (e) {
    return hostErrno(e);
  }
  p.cwd = d;
  return 0;
});
def(50, "fchdir", (p, [fd]) => {
  const f = fileOf(p, fd!);
  if (f === null) return -E.BADF;
  if (f.kind !== "dir") return -E.NOTDIR;
  p.cwd = f.hostPath()!;
  return 0;
});
def(52, "fchmod", (p, [fd, mode]) => {
  const f = fileOf(p, fd!);
  if (!(f instanceof HostFile)) return -E.BADF;
  try {
    fs.fchmodSync(f.fd, int(mode!) & 0o7777);
    return 0;
  } catch (e) {
    return hostErrno(e);
  }
});
def(53, "fchmodat", (p, [dirfd, pathAddr, mode]) => {
  const f = atPath(p, dirfd!, pathAddr!);
  if (typeof f === "number") return f;
  try {
    fs.chmodSync(f, int(mode!) & 0o7777);
    return 0;
  } catch (e) {
    return hostErrno(e);
  }
});
def(54, "fchownat", () => 0);
def(55, "fchown", () => 0);
def(56, "openat", (p, [dirfd, pathAddr, flagsArg, mode]) => {
  const flags = int(flagsArg!);
  const f = atPath(p, dirfd!, pathAddr!);
  if (typeof f === "number") return f;
  const cloexec = (flags & LINUX_O.CLOEXEC) !== 0;
  let st: fs.Stats | null = null;
  try {
    st = fs.statSync(f);
  } catch {
    st = null;
  }
  if (st?.isDirectory()) {
    if ((flags & LINUX_O.ACCMODE) !== LINUX_O.RDONLY) return -E.ISDIR;
    try {
      fs.accessSync(f, fs.constants.R_OK);
    } catch (e) {
      if ((flags & LINUX_O.PATH) === 0) return hostErrno(e);
    }
    return p.fds.install(new DirFile(f, flags & LINUX_O.ACCMODE), cloexec);
  }
  if ((flags & LINUX_O.DIRECTORY) !== 0) return st === null ? -E.NOENT : -E.NOTDIR;
  try {
    const hfd = fs.openSync(f, hostOpenFlags(flags & ~LINUX_O.DIRECTORY), int(mode!) & 0o7777 & ~p.umask);
    const stream = st !== null && !st.isFile();
    return p.fds.install(
      new HostFile(hfd, f, flags & (LINUX_O.ACCMODE | LINUX_O.APPEND | LINUX_O.NONBLOCK), true, stream),
      cloexec,
    );
  } catch (e) {
    return hostErrno(e);
  }
});
def(57, "close", (p, [fd]) => p.fds.close(int(fd!)));
def(59, "pipe2", (p, [fdsAddr, flags]) => {
  if (!p.as.valid(fdsAddr!, 8)) return -E.FAULT;
  const pipe = new Pipe();
  const cloexec = (int(flags!) & LINUX_O.CLOEXEC) !== 0;
  const r = p.fds.install(new PipeReadEnd(pipe), cloexec);
  if (r < 0) return r;
  const w = p.fds.install(new PipeWriteEnd(pipe), cloexec);
  if (w < 0) {
    p.fds.close(r);
    return w;
  }
  putU32(p, fdsAddr!, r);
  putU32(p, fdsAddr! + 4, w);
  return 0;
});
def(61, "getdents64", (p, [fd, buf, count]) => {
  const f = fileOf(p, fd!);
  if (f === null) return -E.BADF;
  if (!(f instanceof DirFile)) return -E.NOTDIR;
  if (!p.as.valid(buf!, count!)) return -E.FAULT;
  f.loadEntries();
  let off = 0;
  const ents = f.entries!;
  while (f.pos < ents.length) {
    const e = ents[f.pos]!;
    const name = Buffer.from(e.name);
    const reclen = (19 + name.length + 1 + 7) & ~7;
    if (off + reclen > count!) {
      if (off === 0) return -E.INVAL;
      break;
    }
    const a = buf! + off;
    p.as.bytes(a, reclen).fill(0);
    putU64(p, a, e.ino);
    putU64(p, a + 8, f.pos + 1);
    p.as.dv.setUint16(p.as.host + a + 16, reclen, true);
    p.as.m8[p.as.host + a + 18] = e.type;
    p.as.bytes(a + 19, name.length).set(name);
    off += reclen;
    f.pos++;
  }
  return off;
});
def(62, "lseek", (p, [fd, off, whence]) => {
  const f = fileOf(p, fd!);
  if (f === null) return -E.BADF;
  return f.seek(s64(off!), int(whence!));
});
def(63, "read", (p, [fd, buf, count]) => {
  const f = fileOf(p, fd!);
  if (f === null) return -E.BADF;
  if ((f.flags & LINUX_O.ACCMODE) === LINUX_O.WRONLY && f.kind === "host") return -E.BADF;
  const n = Math.min(count!, 1 << 24);
  const m = mem(p, buf!, n);
  if (m === null) return -E.FAULT;
  return doRead(f, m);
});
def(64, "write", (p, [fd, buf, count]) => {
  const f = fileOf(p, fd!);
  if (f === null) return -E.BADF;
  const m = mem(p, buf!, count!);
  if (m === null) return -E.FAULT;
  const n = f.write(m);
  if (n === -E.PIPE) p.sendSignal(SIG.PIPE);
  return n;
});
def(65, "readv", (p, [fd, addr, cnt]) => {
  const f = fileOf(p, fd!);
  if (f === null) return -E.BADF;
  const v = iov(p, addr!, int(cnt!));
  if (typeof v === "number") return v;
  let total = 0;
  for (const { base, len } of v) {
    if (len === 0) continue;
    const n = f.read(p.as.bytes(base, len));
    if (n < 0) return total > 0 ? total : n;
    total += n;
    if (n < len) break;
  }
  return total;
});
def(66, "writev", (p, [fd, addr, cnt]) => {
  const f = fileOf(p, fd!);
  if (f === null) return -E.BADF;
  const v = iov(p, addr!, int(cnt!));
  if (typeof v === "number") return v;
  // Gather into one write so that a line written in pieces reaches the host in one go.
  const total = v.reduce((s, x) => s + x.len, 0);
  const all = new Uint8Array(total);
  let o = 0;
  for (const { base, len } of v) {
    all.set(p.as.bytes(base, len), o);
    o += len;
  }
  const n = f.write(all);
  if (n === -E.PIPE) p.sendSignal(SIG.PIPE);
  return n;
});
def(67, "pread64", (p, [fd, buf, count, off]) => {
  const f = fileOf(p, fd!);
  if (f === null) return -E.BADF;
  const m = mem(p, buf!, Math.min(count!, 1 << 24));
  if (m === null) return -E.FAULT;
  return f.pread(m, off!);
});
def(68, "pwrite64", (p, [fd, buf, count, off]) => {
  const f = fileOf(p, fd!);
  if (f === null) return -E.BADF;
  const m = mem(p, buf!, count!);
  if (m === null) return -E.FAULT;
  return f.pwrite(m, off!);
});
def(71, "sendfile", (p, [outFd, inFd, offAddr, count]) => {
  const out = fileOf(p, outFd!);
  const inp = fileOf(p, inFd!);
  if (out === null || inp === null) return -E.BADF;
  const buf = new Uint8Array(Math.min(count!, 1 << 20));
  let n: number;
  if (offAddr !== 0) {
    if (!p.as.valid(offAddr!, 8)) return -E.FAULT;
    const off = getU64(p, offAddr!);
    n = inp.pread(buf, off);
    if (n > 0) putU64(p, offAddr!, off + n);
  } else n = inp.read(buf);
  if (n <= 0) return n;
  return out.write(buf.subarray(0, n));
});
def(72, "pselect6", (p, [nfds, rd, wr, ex]) => {
  // Everything is always ready: leave the sets as they are and report the count.
  let count = 0;
  for (const set of [rd!, wr!]) {
    if (set === 0) continue;
    for (let i = 0; i < int(nfds!); i++) {
      const byte = p.as.m8[p.as.host + set + (i >> 3)]!;
      if (byte & (1 << (i & 7))) count++;
    }
  }
  if (ex !== 0 && p.as.valid(ex!, Math.ceil(int(nfds!) / 8)))
    p.as.bytes(ex!, Math.ceil(int(nfds!) / 8)).fill(0);
  return count;
});
def(73, "ppoll", (p, [fds, nfds]) => {
  const n = int(nfds!);
  if (!p.as.valid(fds!, n * 8)) return -E.FAULT;
  let ready = 0;
  for (let i = 0; i < n; i++) {
    const a = fds! + i * 8;
    const fd = p.as.dv.getInt32(p.as.host + a, true);
    const events = p.as.dv.getInt16(p.as.host + a + 4, true);
    let rev = 0;
    if (fd >= 0) {
      if (p.fds.get(fd) === null)
        rev = 0x20; // POLLNVAL
      else rev = events & 0x5; // POLLIN | POLLOUT
    }
    p.as.dv.setInt16(p.as.host + a + 6, rev, true);
    if (rev !== 0) ready++;
  }
  return ready;
});
def(78, "readlinkat", (p, [dirfd, pathAddr, buf, size]) => {
  const f = atPath(p, dirfd!, pathAddr!);
  if (typeof f === "number") return f;
  let target: string;
  const s = readCString(p, pathAddr!)!;
  if (s === "/proc/self/exe" || s === `/proc/${p.pid}/exe`) target = p.exePath;
  else {
    try {
      target = fs.readlinkSync(f);
    } catch (e) {
      return hostErrno(e);
    }
  }
  const b = Buffer.from(target);
  const n = Math.min(b.length, size!);
  const m = mem(p, buf!, n);
  if (m === null) return -E.FAULT;
  m.set(b.subarray(0, n));
  return n;
});
def(79, "newfstatat", (p, [dirfd, pathAddr, statAddr, flags]) => {
  const fl = int(flags!);
  const s = readCString(p, pathAddr!);
  if (s === null) return -E.FAULT;
  let st: fs.BigIntStats | number;
  if (s === "" && (fl & AT_EMPTY_PATH) !== 0)
    st = int(dirfd!) === AT_FDCWD ? statPath(p, p.cwd, true) : statFd(p, dirfd!);
  else st = statPath(p, resolveAt(p, int(dirfd!), s), (fl & AT_SYMLINK_NOFOLLOW) === 0);
  if (typeof st === "number") return st;
  return writeStat(p, statAddr!, st);
});
def(80, "fstat", (p, [fd, statAddr]) => {
  const st = statFd(p, fd!);
  if (typeof st === "number") return st;
  return writeStat(p, statAddr!, st);
});
def(291, "statx", (p, [dirfd, pathAddr, flags, , statAddr]) => {
  const fl = int(flags!);
  const s = readCString(p, pathAddr!);
  if (s === null) return -E.FAULT;
  let st: fs.BigIntStats | number;
  if (s === "" && (fl & AT_EMPTY_PATH) !== 0)
    st = int(dirfd!) === AT_FDCWD ? statPath(p, p.cwd, true) : statFd(p, dirfd!);
  else st = statPath(p, resolveAt(p, int(dirfd!), s), (fl & AT_SYMLINK_NOFOLLOW) === 0);
  if (typeof st === "number") return st;
  return writeStatx(p, statAddr!, st);
});
def(43, "statfs", () => -E.NOSYS);
def(44, "fstatfs", () => -E.NOSYS);
def(81, "sync", () => 0);
def(82, "fsync", () => 0);
def(83, "fdatasync", () => 0);
def(88, "utimensat", () => 0);
def(93, "exit", (_p, [code]) => {
  throw new ProcessExit(code! & 0xff);
});
def(94, "exit_group", (_p, [code]) => {
  throw new ProcessExit(code! & 0xff);
});
def(96, "set_tid_address", (p) => p.pid);
def(98, "futex", (_p, [, op]) => {
  // Single-threaded: a wait can never be woken by anyone, so say the value changed.
  const cmd = int(op!) & 0x7f;
  if (cmd === 0 || cmd === 9) return -E.AGAIN;
  return 0;
});
def(99, "set_robust_list", () => 0);
def(100, "get_robust_list", () => -E.NOSYS);
def(101, "nanosleep", (p, [req]) => sleepTimespec(p, req!));
def(113, "clock_gettime", (p, [clock, tp]) => putTimespec(p, tp!, nowNs(int(clock!), p)));
def(114, "clock_getres", (p, [, tp]) => (tp === 0 ? 0 : putTimespec(p, tp!, 1n)));
def(115, "clock_nanosleep", (p, [clock, flags, req]) => {
  if ((int(flags!) & 1) !== 0) {
    // TIMER_ABSTIME
    if (!p.as.valid(req!, 16)) return -E.FAULT;
    const target = BigInt(getS64(p, req!)) * 1_000_000_000n + BigInt(getS64(p, req! + 8));
    const d = target - nowNs(int(clock!), p);
    if (d > 0n) sleepMs(Number(d / 1_000_000n));
    return 0;
  }
  return sleepTimespec(p, req!);
});
def(122, "sched_setaffinity", () => 0);
def(123, "sched_getaffinity", (p, [, size, mask]) => {
  if (size! < 8) return -E.INVAL;
  if (!p.as.valid(mask!, 8)) return -E.FAULT;
  p.as.bytes(mask!, 8).fill(0);
  p.as.m8[p.as.host + mask!] = 1;
  return 8;
});
def(124, "sched_yield", () => 0);
def(129, "kill", (p, [pid, sig]) => {
  const target = int(pid!);
  const s = int(sig!);
  if (s < 0 || s > 64) return -E.INVAL;
  if (target === p.pid || target === 0 || target === -1 || target === -p.pid) {
    p.sendSignal(s);
    return 0;
  }
  if (p.zombies.has(target)) return 0;
  return -E.SRCH;
});
def(130, "tkill", (p, [tid, sig]) => T[129]![1](p, [tid!, sig!]));
def(131, "tgkill", (p, [, tid, sig]) => T[129]![1](p, [tid!, sig!]));
def(132, "sigaltstack", (p, [ss, old]) => {
  if (old !== 0) {
    if (!p.as.valid(old!, 24)) return -E.FAULT;
    putU64(p, old!, p.altStack.sp);
    putU32(p, old! + 8, p.altStack.flags);
    putU32(p, old! + 12, 0);
    putU64(p, old! + 16, p.altStack.size);
  }
  if (ss !== 0) {
    if (!p.as.valid(ss!, 24)) return -E.FAULT;
    const flags = p.as.dv.getInt32(p.as.host + ss! + 8, true);
    p.altStack = { sp: getU64(p, ss!), flags: flags & 2, size: getU64(p, ss! + 16) };
  }
  return 0;
});
def(134, "rt_sigaction", (p, [sigArg, act, old, size]) => {
  const sig = int(sigArg!);
  if (sig < 1 || sig > 64 || size !== 8) return -E.INVAL;
  const cur = p.sigactions[sig]!;
  if (old !== 0) {
    if (!p.as.valid(old!, 32)) return -E.FAULT;
    putU64(p, old!, cur.handler);
    putU64(p, old! + 8, cur.flags);
    putU64(p, old! + 16, cur.restorer);
    putU64(p, old! + 24, cur.mask);
  }
  if (act !== 0) {
    if (sig === SIG.KILL || sig === SIG.STOP) return -E.INVAL;
    if (!p.as.valid(act!, 32)) return -E.FAULT;
    p.sigactions[sig] = {
      handler: getU64(p, act!),
      flags: p.as.dv.getUint32(p.as.host + act! + 8, true),
      restorer: getU64(p, act! + 16),
      mask: p.as.dv.getBigUint64(p.as.host + act! + 24, true),
    };
  }
  return 0;
});
def(135, "rt_sigprocmask", (p, [how, set, old, size]) => {
  if (size !== 8) return -E.INVAL;
  if (old !== 0) {
    if (!p.as.valid(old!, 8)) return -E.FAULT;
    putU64(p, old!, p.sigmask);
  }
  if (set !== 0) {
    if (!p.as.valid(set!, 8)) return -E.FAULT;
    const s = p.as.dv.getBigUint64(p.as.host + set!, true) & ~((1n << 8n) | (1n << 18n));
    switch (int(how!)) {
      case 0:
        p.sigmask |= s;
        break;
      case 1:
        p.sigmask &= ~s;
        break;
      case 2:
        p.sigmask = s;
        break;
      default:
        return -E.INVAL;
    }
  }
  return 0;
});
def(136, "rt_sigpending", (p, [set]) => {
  if (!p.as.valid(set!, 8)) return -E.FAULT;
  let m = 0n;
  for (const s of p.pendingSignals) m |= 1n << BigInt(s - 1);
  putU64(p, set!, m);
  return 0;
});
def(137, "rt_sigtimedwait", () => -E.AGAIN);
def(133, "rt_sigsuspend", () => -E.INTR);
def(139, "rt_sigreturn", (p) => {
  p.sigreturn();
  return RESULT_KEEP;
});
def(140, "setpriority", () => 0);
def(141, "getpriority", () => 20);
def(153, "times", (p, [buf]) => {
  const ticks = Number((process.hrtime.bigint() - p.startTime) / 10_000_000n);
  if (buf !== 0) {
    if (!p.as.valid(buf!, 32)) return -E.FAULT;
    putU64(p, buf!, ticks);
    putU64(p, buf! + 8, 0);
    putU64(p, buf! + 16, 0);
    putU64(p, buf! + 24, 0);
  }
  return ticks + 1;
});
def(154, "setpgid", () => 0);
def(155, "getpgid", (p) => p.pid);
def(156, "getsid", (p) => p.pid);
def(157, "setsid", (p) => p.pid);
def(158, "getgroups", () => 0);
def(160, "uname", (p, [buf]) => {
  if (!p.as.valid(buf!, 390)) return -E.FAULT;
  const fields = ["Linux", os.hostname(), "6.1.0-armbox", "#1 SMP armbox", "aarch64", "(none)"];
  const m = p.as.bytes(buf!, 390);
  m.fill(0);
  fields.forEach((s, i) => {
    m.set(Buffer.from(s).subarray(0, 64), i * 65);
  });
  return 0;
});
def(163, "getrlimit", (p, [res, rl]) => rlimit(p, int(res!), rl!));
def(164, "setrlimit", () => 0);
def(165, "getrusage", (p, [, ru]) => {
  if (!p.as.valid(ru!, 144)) return -E.FAULT;
  p.as.bytes(ru!, 144).fill(0);
  const us = Number((process.hrtime.bigint() - p.startTime) / 1000n);
  putU64(p, ru!, Math.floor(us / 1e6));
  putU64(p, ru! + 8, us % 1e6);
  return 0;
});
def(166, "umask", (p, [mask]) => {
  const old = p.umask;
  p.umask = int(mask!) & 0o777;
  return old;
});
def(167, "prctl", () => -E.INVAL);
def(169, "gettimeofday", (p, [tv]) => {
  if (tv !== 0) {
    if (!p.as.valid(tv!, 16)) return -E.FAULT;
    const ns = nowNs(0, p);
    putU64(p, tv!, ns / 1_000_000_000n);
    putU64(p, tv! + 8, (ns % 1_000_000_000n) / 1000n);
  }
  return 0;
});
def(172, "getpid", (p) => p.pid);
def(173, "getppid", (p) => p.ppid);
def(174, "getuid", () => process.getuid?.() ?? 0);
def(175, "geteuid", () => process.geteuid?.() ?? 0);
def(176, "getgid", () => process.getgid?.() ?? 0);
def(177, "getegid", () => process.getegid?.() ?? 0);
def(178, "gettid", (p) => p.pid);
def(179, "sysinfo", (p, [info]) => {
  if (!p.as.valid(info!, 112)) return -E.FAULT;
  p.as.bytes(info!, 112).fill(0);
  putU64(p, info!, Math.floor(os.uptime()));
  putU64(p, info! + 32, p.ramSize);
  putU64(p, info! + 40, p.ramSize / 2);
  p.as.dv.setUint16(p.as.host + info! + 80, 1, true);
  putU32(p, info! + 104, 1);
  return 0;
});
def(214, "brk", (p, [addr]) => p.as.setBrk(addr!));
def(215, "munmap", (p, [addr, len]) => {
  if (addr! % PAGE !== 0 || len === 0) return -E.INVAL;
  if (!p.as.valid(addr!, pageUp(len!))) return -E.INVAL;
  p.as.unmapRange(addr!, pageUp(len!));
  return 0;
});
def(216, "mremap", sysMremap);
def(220, "clone", (p, [flags, newsp, , , ctid]) => {
  const f = flags! >>> 0;
  // CLONE_VM without CLONE_VFORK would be a thread: not supported.
  if ((f & 0x100) !== 0 && (f & 0x4000) === 0) return -E.NOSYS;
  const CLONE_CHILD_SETTID = 0x01000000;
  return p.fork(ctid!, (f & CLONE_CHILD_SETTID) !== 0, (f & 0x100) !== 0 ? newsp! : 0);
});
def(435, "clone3", () => -E.NOSYS);
def(221, "execve", (p, [pathAddr, argv, envp]) => sysExecve(p, pathAddr!, argv!, envp!));
def(281, "execveat", (p, [dirfd, pathAddr, argv, envp]) =>
  sysExecve(p, pathAddr!, argv!, envp!, int(dirfd!)),
);
def(222, "mmap", sysMmap);
def(226, "mprotect", (p, [addr, len]) => {
  if (addr! % PAGE !== 0) return -E.INVAL;
  if (!p.as.valid(addr!, len!)) return -E.NOMEM;
  return 0;
});
def(227, "msync", () => 0);
def(228, "mlock", () => 0);
def(229, "munlock", () => 0);
def(232, "mincore", () => -E.NOSYS);
def(233, "madvise", (p, [addr, len, advice]) => {
  // MADV_DONTNEED on private anonymous memory: the pages read back as zero.
  if (int(advice!) === 4 && addr! % PAGE === 0 && p.as.valid(addr!, pageUp(len!)))
    p.as.bytes(addr!, pageUp(len!)).fill(0);
  return 0;
});
def(260, "wait4", sysWait4);
def(261, "prlimit64", (p, [pid, res, , old]) => {
  if (int(pid!) !== 0 && int(pid!) !== p.pid) return -E.SRCH;
  if (old === 0) return 0;
  return rlimit(p, int(res!), old!);
});
def(278, "getrandom", (p, [buf, len]) => {
  const m = mem(p, buf!, Math.min(len!, 1 << 20));
  if (m === null) return -E.FAULT;
  randomFillSync(m);
  return m.length;
});
def(293, "rseq", () => -E.NOSYS);
def(283, "membarrier", () => 0);

function rlimit(p: UserProcess, res: number, addr: number): number {
  if (!p.as.valid(addr, 16)) return -E.FAULT;
  const INF = 2n ** 64n - 1n;
  let cur = INF;
  let max = INF;
  if (res === 3) {
    // RLIMIT_STACK
    cur = 8n << 20n;
  } else if (res === 7) {
    // RLIMIT_NOFILE
    cur = 1024n;
    max = 1024n;
  }
  putU64(p, addr, cur);
  putU64(p, addr + 8, max);
  return 0;
}

/** Returned by handlers that set the registers themselves (rt_sigreturn, execve success). */
const RESULT_KEEP = Number.NaN;

/** Names of calls we do not implement, for the one-time report. */
const UNSUPPORTED_NAMES: Record<number, string> = {
  5: "setxattr",
  8: "getxattr",
  19: "eventfd2",
  20: "epoll_create1",
  26: "inotify_init1",
  32: "flock",
  40: "mount",
  47: "fallocate",
  51: "chroot",
  74: "signalfd4",
  76: "splice",
  85: "timerfd_create",
  102: "getitimer",
  103: "setitimer",
  107: "timer_create",
  117: "ptrace",
  142: "reboot",
  198: "socket",
  199: "socketpair",
  203: "connect",
  242: "accept4",
  285: "copy_file_range",
  424: "pidfd_send_signal",
  434: "pidfd_open",
};

/** Executes the system call the guest just made (SVC #0). */
export function doSyscall(p: UserProcess): void {
  const cpu = p.cpu;
  const r = cpu.r;
  const nr = r[16]! + r[17]! * 2 ** 32;
  const a: number[] = [];
  // Arguments as exact numbers: values with the top bits set (small negatives such as
  // AT_FDCWD or -1) are read as signed so that they stay exact.
  for (let i = 0; i < 6; i++) {
    const hi = r[i * 2 + 1]!;
    a.push(r[i * 2]! + (hi >= 0x80000000 ? hi | 0 : hi) * 2 ** 32);
  }
  const entry = T[nr];
  let res: number;
  if (entry === undefined) {
    if (!p.reportedUnsupported.has(nr)) {
      p.reportedUnsupported.add(nr);
      p.diag(`armbox: unsupported syscall ${nr} (${UNSUPPORTED_NAMES[nr] ?? "unknown"})`);
    }
    res = -E.NOSYS;
  } else {
    const isExec = nr === 221 || nr === 281;
    try {
      res = entry[1](p, a);
    } catch (e) {
      if (p.strace && e instanceof ProcessExit) p.strace(`${entry[0]}(${a[0]}) = ?`);
      throw e;
    }
    if (isExec && res === 0) {
      if (p.strace) p.strace(`${entry[0]}(...) = 0`);
      return;
    }
  }
  if (p.strace)
    p.strace(
      `${entry?.[0] ?? `syscall_${nr}`}(${a.map((x) => (x < 0 ? String(x) : `0x${x.toString(16)}`)).join(", ")}) = ${Number.isNaN(res) ? "?" : res}`,
    );
  if (Number.isNaN(res)) return;
  const v = BigInt.asUintN(64, BigInt(res));
  r[0] = Number(v & 0xffffffffn);
  r[1] = Number(v >> 32n);
}

export const SYSCALL_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(T).map(([k, v]) => [Number(k), v[0]]),
);
