// A fuzz worker thread's entry: TypeScript through tsx's loader, then worker.ts.
import { register } from "tsx/esm/api";

register();
await import("./worker.ts");
