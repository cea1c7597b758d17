/** One chunk of one target in a worker thread (engine.ts starts it and watches its progress). */
import { parentPort, workerData } from "node:worker_threads";
import { type Chunk, targetsOf } from "./core.ts";
import { runInProcess } from "./engine.ts";

const data = workerData as { module: string; target: string; chunk: Chunk; sab: SharedArrayBuffer };
const mod = (await import(data.module)) as Record<string, unknown>;
const target = targetsOf(mod).find((t) => t.name === data.target);
if (!target) throw new Error(`${data.module} exports no target '${data.target}'`);
const tally = await runInProcess(target, data.chunk, new Int32Array(data.sab));
parentPort!.postMessage(tally);
