/**
 * test/jit.test.ts's cases with write tracking on (src/arch/arm64/jit/jit.ts
 * `trackWrites`), the way a VM runs translated code: a store to a page with translations
 * drops them and ends the block that made it, so translations check their words only
 * when entered from JS. Self-modifying code, stores over later words of the running
 * block, remapped pages and faults must all still match the interpreter.
 */
(globalThis as { armboxJitTracked?: boolean }).armboxJitTracked = true;
await import("./jit.test.ts");
