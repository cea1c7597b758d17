#!/usr/bin/env node
// Launcher: runs the TypeScript sources through tsx, so `node bin/armbox.js` works after `npm ci`.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
const code = await main(process.argv.slice(2));
// Flush stdout/stderr before leaving with the guest's exit status.
process.exitCode = code;
