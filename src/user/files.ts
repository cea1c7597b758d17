/**
 * The guest's file descriptor table and open file descriptions, backed by the host
 * through Node's synchronous fs API. Errors are returned as negative Linux errno values,
 * the way the syscall layer hands them to the guest.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tty from "node:tty";

/** Linux errno values (asm-generic/errno-base.h, errno.h). */
export const E = {
  PERM: 1,
  NOENT: 2,
  SRCH: 3,
  INTR: 4,
  IO: 5,
  NXIO: 6,
  E2BIG: 7,
  NOEXEC: 8,
  BADF: 9,
  CHILD: 10,
  AGAIN: 11,
  NOMEM: 12,
  ACCES: 13,
  FAULT: 14,
  BUSY: 16,
  EXIST: 17,
  XDEV: 18,
  NOTDIR: 20,
  ISDIR: 21,
  INVAL: 22,
  NFILE: 23,
  MFILE: 24,
  NOTTY: 25,
  FBIG: 27,
  NOSPC: 28,
  SPIPE: 29,
  ROFS: 30,
  PIPE: 32,
  RANGE: 34,
  NAMETOOLONG: 36,
  NOSYS: 38,
  NOTEMPTY: 39,
  LOOP: 40,
  NODATA: 61,
  OVERFLOW: 75,
  NOTSUP: 95,
} as const;

/** Maps a Node fs error to -errno. */
export function hostErrno(e: unknown): number {
  const code = (e as { code?: string }).code;
  if (code !== undefined) {
    const key = code.startsWith("E") ? code.slice(1) : code;
    const v = (E as Record<string, number>)[key];
    if (v !== undefined) return -v;
    const n = (e as { errno?: number }).errno;
    if (typeof n === "number" && n < 0) return n; // libuv uses -errno (Linux numbering on Linux hosts)
  }
  return -E.IO;
}

/** Something that accepts output bytes (a captured stdout in tests, for example). */
export interface ByteSink {
  write(data: Uint8Array): void;
}
/** Something that supplies input bytes; returns 0 at end of input. */
export interface ByteSource {
  read(buf: Uint8Array): number;
}

/** An open file description (shared by dup'ed descriptors). */
export abstract class OpenFile {
  refs = 1;
  /** Linux open flags kept for F_GETFL (access mode, O_APPEND, O_NONBLOCK). */
  flags = 0;
  abstract readonly kind: "host" | "dir" | "pipe-r" | "pipe-w" | "sink" | "source";
  read(_buf: Uint8Array): number {
    return -E.BADF;
  }
  write(_buf: Uint8Array): number {
    return -E.BADF;
  }
  pread(_buf: Uint8Array, _pos: number): number {
    return -E.SPIPE;
  }
  pwrite(_buf: Uint8Array, _pos: number): number {
    return -E.SPIPE;
  }
  seek(_off: number, _whence: number): number {
    return -E.SPIPE;
  }
  /** Host stat, or null for things that are not host files (pipes, sinks). */
  stat(): fs.BigIntStats | null {
    return null;
  }
  isTty(): boolean {
    return false;
  }
  hostPath(): string | null {
    return null;
  }
  close(): void {}
}

/** A host file (or a host fd such as the real stdin/stdout), accessed with a position. */
export class HostFile extends OpenFile {
  readonly kind = "host";
  pos = 0;
  constructor(
    readonly fd: number,
    readonly path: string | null,
    flags: number,
    private readonly owned = true,
    /** Streams (ttys, pipes, stdin) are read/written at the "current position" of the host. */
    private readonly stream = false,
  ) {
    super();
    this.flags = flags;
  }
  override read(buf: Uint8Array): number {
    try {
      const n = this.stream
        ? readRetry(this.fd, buf, null)
        : fs.readSync(this.fd, buf, 0, buf.length, this.pos);
      if (!this.stream) this.pos += n;
      return n;
    } catch (e) {
      return hostErrno(e);
    }
  }
  override write(buf: Uint8Array): number {
    try {
      if (this.stream) return writeAll(this.fd, buf);
      if ((this.flags & LINUX_O.APPEND) !== 0) this.pos = Number(fs.fstatSync(this.fd).size);
      const n = fs.writeSync(this.fd, buf, 0, buf.length, this.pos);
      this.pos += n;
      return n;
    } catch (e) {
      return hostErrno(e);
    }
  }
  override pread(buf: Uint8Array, p: number): number {
    if (this.stream) return -E.SPIPE;
    try {
      return fs.readSync(this.fd, buf, 0, buf.length, p);
    } catch (e) {
      return hostErrno(e);
    }
  }
  override pwrite(buf: Uint8Array, p: number): number {
    if (this.stream) return -E.SPIPE;
    try {
      return fs.writeSync(this.fd, buf, 0, buf.length, p);
    } catch (e) {
      return hostErrno(e);
    }
  }
  override seek(off: number, whence: number): number {
    if (this.stream) return -E.SPIPE;
    let base = 0;
    if (whence === 1) base = this.pos;
    else if (whence === 2) {
      const st = this.stat();
      base = st === null ? 0 : Number(st.size);
    } else if (whence !== 0) return -E.INVAL;
    const np = base + off;
    if (np < 0) return -E.INVAL;
    this.pos = np;
    return np;
  }
  override stat(): fs.BigIntStats | null {
    try {
      return fs.fstatSync(this.fd, { bigint: true });
    } catch {
      return null;
    }
  }
  override isTty(): boolean {
    try {
      return tty.isatty(this.fd);
    } catch {
      return false;
    }
  }
  override hostPath(): string | null {
    return this.path;
  }
  override close(): void {
    if (this.owned) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // already gone
      }
    }
  }
}

/** Reads from a host stream fd, waiting out EAGAIN (Node may leave fds non-blocking). */
function readRetry(fd: number, buf: Uint8Array, pos: number | null): number {
  for (;;) {
    try {
      return fs.readSync(fd, buf, 0, buf.length, pos);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "EAGAIN") {
        sleepMs(1);
        continue;
      }
      if (code === "EOF") return 0;
      throw e;
    }
  }
}
function writeAll(fd: number, buf: Uint8Array): number {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      if ((e as { code?: string }).code === "EAGAIN") {
        sleepMs(1);
        continue;
      }
      if (off > 0) return off;
      throw e;
    }
  }
  return off;
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** Blocks the thread for `ms` milliseconds (the guest is synchronous). */
export function sleepMs(ms: number): void {
  if (ms > 0) Atomics.wait(sleepCell, 0, 0, ms);
}

/** A directory opened for getdents64 (and as a dirfd). */
export class DirFile extends OpenFile {
  readonly kind = "dir";
  entries: { name: string; ino: bigint; type: number }[] | null = null;
  pos = 0;
  constructor(
    readonly path: string,
    flags: number,
  ) {
    super();
    this.flags = flags;
  }
  override read(): number {
    return -E.ISDIR;
  }
  override seek(off: number, whence: number): number {
    if (whence === 0 && off >= 0) {
      this.pos = off;
      return off;
    }
    if (whence === 1 && this.pos + off >= 0) {
      this.pos += off;
      return this.pos;
    }
    return -E.INVAL;
  }
  override stat(): fs.BigIntStats | null {
    try {
      return fs.statSync(this.path, { bigint: true });
    } catch {
      return null;
    }
  }
  override hostPath(): string {
    return this.path;
  }
  loadEntries(): void {
    if (this.entries !== null) return;
    const out: { name: string; ino: bigint; type: number }[] = [];
    const self = this.stat();
    out.push({ name: ".", ino: self?.ino ?? 1n, type: 4 });
    let parent: fs.BigIntStats | null = null;
    try {
      parent = fs.statSync(path.dirname(this.path), { bigint: true });
    } catch {
      // no parent
    }
    out.push({ name: "..", ino: parent?.ino ?? 1n, type: 4 });
    try {
      for (const d of fs.readdirSync(this.path, { withFileTypes: true })) {
        let ino = 0n;
        try {
          ino = fs.lstatSync(path.join(this.path, d.name), { bigint: true }).ino;
        } catch {
          ino = BigInt(out.length + 1);
        }
        const type = d.isFile()
          ? 8
          : d.isDirectory()
            ? 4
            : d.isSymbolicLink()
              ? 10
              : d.isFIFO()
                ? 1
                : d.isCharacterDevice()
                  ? 2
                  : d.isBlockDevice()
                    ? 6
                    : d.isSocket()
                      ? 12
                      : 0;
        out.push({ name: d.name, ino, type });
      }
    } catch {
      // unreadable: only . and ..
    }
    this.entries = out;
  }
}

/** An in-memory pipe shared by its two ends. */
export class Pipe {
  chunks: Uint8Array[] = [];
  size = 0;
  readers = 0;
  writers = 0;
}

export class PipeReadEnd extends OpenFile {
  readonly kind = "pipe-r";
  constructor(readonly pipe: Pipe) {
    super();
    pipe.readers++;
  }
  override read(buf: Uint8Array): number {
    const p = this.pipe;
    if (p.size === 0) {
      // Nothing can run while we wait (the guest is single-threaded and children run to
      // completion first), so an empty pipe is end of file even with writers left.
      return 0;
    }
    let n = 0;
    while (n < buf.length && p.chunks.length > 0) {
      const c = p.chunks[0]!;
      const take = Math.min(c.length, buf.length - n);
      buf.set(c.subarray(0, take), n);
      n += take;
      if (take === c.length) p.chunks.shift();
      else p.chunks[0] = c.subarray(take);
    }
    p.size -= n;
    return n;
  }
  override close(): void {
    this.pipe.readers--;
  }
}

export class PipeWriteEnd extends OpenFile {
  readonly kind = "pipe-w";
  constructor(readonly pipe: Pipe) {
    super();
    pipe.writers++;
    this.flags = LINUX_O.WRONLY;
  }
  override write(buf: Uint8Array): number {
    if (this.pipe.readers === 0) return -E.PIPE;
    this.pipe.chunks.push(buf.slice());
    this.pipe.size += buf.length;
    return buf.length;
  }
  override close(): void {
    this.pipe.writers--;
  }
}

/** Output captured by the embedder (tests). */
export class SinkFile extends OpenFile {
  readonly kind = "sink";
  constructor(private readonly sink: ByteSink) {
    super();
    this.flags = LINUX_O.WRONLY;
  }
  override write(buf: Uint8Array): number {
    this.sink.write(buf.slice());
    return buf.length;
  }
}

/** Input supplied by the embedder (tests). */
export class SourceFile extends OpenFile {
  readonly kind = "source";
  constructor(private readonly src: ByteSource) {
    super();
  }
  override read(buf: Uint8Array): number {
    return this.src.read(buf);
  }
}

/** Linux (arm64 = asm-generic) open flags; they differ from x86-64 for DIRECTORY etc. */
export const LINUX_O = {
  ACCMODE: 3,
  RDONLY: 0,
  WRONLY: 1,
  RDWR: 2,
  CREAT: 0o100,
  EXCL: 0o200,
  NOCTTY: 0o400,
  TRUNC: 0o1000,
  APPEND: 0o2000,
  NONBLOCK: 0o4000,
  DSYNC: 0o10000,
  DIRECTORY: 0o40000,
  NOFOLLOW: 0o100000,
  DIRECT: 0o200000,
  LARGEFILE: 0o400000,
  NOATIME: 0o1000000,
  CLOEXEC: 0o2000000,
  PATH: 0o10000000,
  TMPFILE: 0o20000000,
} as const;

/** Converts Linux arm64 open flags to the host's (Node's) flags. */
export function hostOpenFlags(f: number): number {
  const C = fs.constants;
  let h = f & 3;
  if (f & LINUX_O.CREAT) h |= C.O_CREAT;
  if (f & LINUX_O.EXCL) h |= C.O_EXCL;
  if (f & LINUX_O.NOCTTY) h |= C.O_NOCTTY;
  if (f & LINUX_O.TRUNC) h |= C.O_TRUNC;
  if (f & LINUX_O.APPEND) h |= C.O_APPEND;
  if (f & LINUX_O.DIRECTORY) h |= C.O_DIRECTORY;
  if (f & LINUX_O.NOFOLLOW) h |= C.O_NOFOLLOW;
  return h;
}

interface Slot {
  file: OpenFile;
  cloexec: boolean;
}

/** The per-process descriptor table. */
export class FdTable {
  private slots: (Slot | undefined)[] = [];
  static readonly MAX = 1024;

  get(fd: number): OpenFile | null {
    if (fd < 0 || fd >= this.slots.length) return null;
    return this.slots[fd]?.file ?? null;
  }
  getCloexec(fd: number): boolean {
    return this.slots[fd]?.cloexec ?? false;
  }
  setCloexec(fd: number, v: boolean): void {
    const s = this.slots[fd];
    if (s) s.cloexec = v;
  }
  /** Installs `file` at the lowest free descriptor >= min. The table takes one reference. */
  install(file: OpenFile, cloexec = false, min = 0): number {
    for (let fd = min; fd < FdTable.MAX; fd++) {
      if (this.slots[fd] === undefined) {
        this.slots[fd] = { file, cloexec };
        return fd;
      }
    }
    release(file);
    return -E.MFILE;
  }
  /** Places `file` at exactly `fd`, closing what was there. */
  installAt(fd: number, file: OpenFile, cloexec = false): void {
    this.close(fd);
    this.slots[fd] = { file, cloexec };
  }
  close(fd: number): number {
    const s = this.slots[fd];
    if (s === undefined) return -E.BADF;
    this.slots[fd] = undefined;
    release(s.file);
    return 0;
  }
  /** A copy sharing every open file description (fork). */
  clone(): FdTable {
    const t = new FdTable();
    t.slots = this.slots.map((s) => {
      if (s === undefined) return undefined;
      s.file.refs++;
      return { file: s.file, cloexec: s.cloexec };
    });
    return t;
  }
  /** Closes descriptors marked close-on-exec (execve). */
  closeOnExec(): void {
    for (let fd = 0; fd < this.slots.length; fd++) if (this.slots[fd]?.cloexec) this.close(fd);
  }
  closeAll(): void {
    for (let fd = 0; fd < this.slots.length; fd++) if (this.slots[fd] !== undefined) this.close(fd);
  }
}

export function release(f: OpenFile): void {
  if (--f.refs === 0) f.close();
}
