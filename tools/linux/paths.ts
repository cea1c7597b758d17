/**
 * Where the Debian kernel and the test initramfs that tools/linux/fetch-debian.sh and
 * make-initramfs.sh build are found: ARMBOX_LINUX_KERNEL / ARMBOX_LINUX_INITRD, else the
 * cache (ARMBOX_CACHE, else $XDG_CACHE_HOME or ~/.cache, then armbox/linux/).
 */
import os from "node:os";
import path from "node:path";

const env = process.env;
const cacheRoot =
  env.ARMBOX_CACHE ?? path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "armbox");
export const kernelPath = env.ARMBOX_LINUX_KERNEL ?? path.join(cacheRoot, "linux/vmlinuz");
export const initrdPath = env.ARMBOX_LINUX_INITRD ?? path.join(cacheRoot, "linux/initrd.cpio.gz");
