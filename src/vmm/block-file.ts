/**
 * A raw disk image file as a virtio-blk backend (QEMU's `-drive file=X,format=raw`), with
 * Node's synchronous file calls: a request completes inside the guest's QueueNotify write,
 * as the device model expects. The browser has its own backend (a byte array, or OPFS).
 */
import * as fs from "node:fs";
import type { BlockBackend } from "../devices/virtio/blk.ts";

export interface FileBlockBackend extends BlockBackend {
  readonly path: string;
  readonly readOnly: boolean;
  close(): void;
}

/** Opens `path` (read-write unless `readOnly`); errors name the file. */
export function openBlockFile(path: string, opts: { readOnly?: boolean } = {}): FileBlockBackend {
  const readOnly = opts.readOnly ?? false;
  let fd: number;
  try {
    fd = fs.openSync(path, readOnly ? "r" : "r+");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`${path}: ${code === "ENOENT" ? "no such file" : (e as Error).message}`);
  }
  const size = fs.fstatSync(fd).size;
  let open = true;
  const live = (): number => {
    if (!open) throw new Error(`${path}: closed`);
    return fd;
  };
  return {
    path,
    readOnly,
    size,
    read(offset, buf) {
      const f = live();
      let done = 0;
      while (done < buf.length) {
        const n = fs.readSync(f, buf, done, buf.length - done, offset + done);
        if (n === 0) break;
        done += n;
      }
      buf.fill(0, done); // past the end of a file that shrank: zeros
    },
    write(offset, buf) {
      if (readOnly) throw new Error(`${path}: opened read-only`);
      const f = live();
      let done = 0;
      while (done < buf.length) done += fs.writeSync(f, buf, done, buf.length - done, offset + done);
    },
    flush() {
      if (!readOnly) fs.fsyncSync(live());
    },
    close() {
      if (open) fs.closeSync(fd);
      open = false;
    },
  };
}
