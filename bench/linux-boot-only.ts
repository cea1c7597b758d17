/** `npx tsx bench/linux-boot-only.ts`: just the Linux boot figures of `npm run bench`. */
import { runLinuxBootBench } from "./linux-boot.ts";

await runLinuxBootBench((name, value) => console.log(`${name.padEnd(44)} ${value}`));
