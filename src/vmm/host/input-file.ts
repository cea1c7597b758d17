/**
 * Reading a file the user names (a kernel, an initrd, a DTB, a snapshot, an executable) with a
 * bound: it must be a regular file no larger than what its target can hold, and it is read
 * into a buffer of its stat'ed size, never further than the bound. `fs.readFileSync` of
 * `/dev/zero` or a FIFO grows without end (issue 9: `--kernel /dev/zero` passed 3 GiB with no
 * message); a file that grows while it is read is refused rather than followed.
 *
 * Node-only: a host adapter (the browser hands the VMM byte arrays it has already bounded).
 */
import * as fs from "node:fs";
import { MAX_GUEST_RAM } from "../../machine/memory-map.ts";

/** A file input refused before or while it was read; the message names file and reason. */
export class InputFileError extends Error {
  override name = "InputFileError";
}

/** At most this many bytes go into one read call (Node refuses single reads of 2 GiB or more). */
const CHUNK = 64 << 20;

/** "12.0 MiB" for messages. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[u]}`;
}

function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isFIFO()) return "a FIFO";
  if (st.isSocket()) return "a socket";
  return "not a regular file";
}

function openError(what: string, file: string, e: unknown): InputFileError {
  const code = (e as NodeJS.ErrnoException).code;
  const reason =
    code === "ENOENT"
      ? "no such file"
      : code === "EACCES" || code === "EPERM"
        ? "permission denied"
        : code === "EISDIR"
          ? "a directory"
          : (code ?? (e as Error).message);
  return new InputFileError(`${what} ${file}: ${reason}`);
}

function checkStat(what: string, file: string, st: fs.Stats, maxBytes: number, limit: string): void {
  if (!st.isFile()) throw new InputFileError(`${what} ${file}: ${kindOf(st)}, not a regular file`);
  if (st.size > maxBytes) {
    throw new InputFileError(
      `${what} ${file}: ${formatBytes(st.size)}, more than ${limit} (${formatBytes(maxBytes)})`,
    );
  }
}

export interface InputLimit {
  /** The largest acceptable size in bytes. */
  maxBytes: number;
  /** What the bound is, for the message: "the guest RAM (--memory)". */
  limit: string;
}

/**
 * A snapshot file or a `file:` migration stream holds at most the largest guest RAM, its page
 * index and the device state (`--restore`, QMP snapshot-load, `--incoming file:`).
 */
export const SNAPSHOT_LIMIT: InputLimit = {
  maxBytes: MAX_GUEST_RAM + (64 << 20),
  limit: "the largest snapshot (3 GiB of RAM and its state)",
};

/**
 * Reads `file` whole, refusing (InputFileError) a file that is not a regular file, is larger
 * than `maxBytes`, or grows past its stat'ed size while being read. `what` names the input
 * in messages ("kernel", "snapshot").
 */
export function readInputFile(what: string, file: string, bound: InputLimit): Uint8Array {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw openError(what, file, e);
  }
  try {
    const st = fs.fstatSync(fd);
    checkStat(what, file, st, bound.maxBytes, bound.limit);
    const out = new Uint8Array(st.size);
    let got = 0;
    while (got < out.length) {
      const n = fs.readSync(fd, out, got, Math.min(CHUNK, out.length - got), got);
      if (n === 0) return out.subarray(0, got); // shrank while read: what is there
      got += n;
    }
    // One byte more means it grew: the size checked is no longer the size read.
    if (fs.readSync(fd, new Uint8Array(1), 0, 1, got) !== 0) {
      throw new InputFileError(`${what} ${file}: grew while it was read (past ${formatBytes(got)})`);
    }
    return out;
  } catch (e) {
    if (e instanceof InputFileError) throw e;
    throw openError(what, file, e);
  } finally {
    fs.closeSync(fd);
  }
}

/** As readInputFile, without blocking the event loop (QMP's snapshot-load, file: migration). */
export async function readInputFileAsync(what: string, file: string, bound: InputLimit): Promise<Uint8Array> {
  let h: fs.promises.FileHandle;
  try {
    h = await fs.promises.open(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw openError(what, file, e);
  }
  try {
    const st = await h.stat();
    checkStat(what, file, st, bound.maxBytes, bound.limit);
    const out = new Uint8Array(st.size);
    let got = 0;
    while (got < out.length) {
      const { bytesRead } = await h.read(out, got, Math.min(CHUNK, out.length - got), got);
      if (bytesRead === 0) return out.subarray(0, got);
      got += bytesRead;
    }
    const { bytesRead } = await h.read(new Uint8Array(1), 0, 1, got);
    if (bytesRead !== 0) {
      throw new InputFileError(`${what} ${file}: grew while it was read (past ${formatBytes(got)})`);
    }
    return out;
  } catch (e) {
    if (e instanceof InputFileError) throw e;
    throw openError(what, file, e);
  } finally {
    await h.close();
  }
}
