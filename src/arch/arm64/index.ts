/**
 * Entry point of the CPU layer. Import from here: it loads the instruction tables before
 * the Cpu class, so the tables may use Cpu's statics at module load time.
 */
import "./isa.ts";

export {
  ACC,
  Cpu,
  type CpuExit,
  type CpuOptions,
  InstructionCountTimer,
  type PhysicalBus,
  type TimerProvider,
} from "./cpu.ts";
export { EC } from "./exceptions.ts";
export { createVmMemory, I, OFF, PSTATE, RAM_OFFSET, VCPU_STRIDE } from "./state.ts";
