/*
 * Boot stub. QEMU virt (and armbox) enter the boot CPU at _start in EL1h, MMU off,
 * DAIF masked, x0 = DTB address (QEMU passes 0 for a non-Linux ELF). CPUs started
 * by PSCI CPU_ON enter at secondary_entry with x0 = context ID (DEN 0022, 6.4).
 */
#define STACK_SIZE 0x4000
#define MAXCPU 8
#define FRAME 288   /* struct frame: x0..x30, elr, spsr, esr, far, kind (+pad) */

	.section .text.boot, "ax"
	.globl _start
_start:
	mov	x19, x0
	bl	cpu_index		// x0 = index
	cbnz	x0, park		// only CPU 0 boots; others wait for PSCI CPU_ON
	bl	setup_cpu
	// zero BSS (8-byte aligned by the linker script)
	ldr	x1, =__bss_start
	ldr	x2, =__bss_end
1:	cmp	x1, x2
	b.hs	2f
	str	xzr, [x1], #8
	b	1b
2:	mov	x0, x19
	bl	boot_c
park:	wfi
	b	park

	.globl secondary_entry
secondary_entry:
	mov	x19, x0
	bl	cpu_index
	cmp	x0, #MAXCPU
	b.hs	park
	bl	setup_cpu
	mov	x0, x19
	bl	secondary_c
	b	park

// x0 = cpu index from MPIDR_EL1 (Aff0 + 16 * Aff1); preserves x19.
cpu_index:
	mrs	x1, mpidr_el1
	and	x0, x1, #0xff
	ubfx	x1, x1, #8, #8
	add	x0, x0, x1, lsl #4
	ret

// x0 = cpu index (< MAXCPU). Stack, FP/SIMD, vectors. Leaves x0, x19 alone.
setup_cpu:
	msr	spsel, #1
	ldr	x1, =__stacks_end
	mov	x2, #STACK_SIZE
	msub	x1, x0, x2, x1		// top of this CPU's stack
	mov	sp, x1
	mov	x1, #(3 << 20)		// CPACR_EL1.FPEN = 3: no FP/SIMD traps
	msr	cpacr_el1, x1
	ldr	x1, =vectors
	msr	vbar_el1, x1
	isb
	ret

	.globl hvc_call
hvc_call:
	hvc	#0
	ret

/* Vector table (Arm ARM D1.10.2): 16 entries of 0x80 bytes. kind = entry index:
 * 0-3 current EL SP0, 4-7 current EL SPx, 8-11 lower EL A64, 12-15 lower EL A32;
 * kind & 3: 0 sync, 1 IRQ, 2 FIQ, 3 SError. */
.macro VENTRY kind
	.balign 0x80
	sub	sp, sp, #FRAME
	stp	x0, x1, [sp, #0]
	mov	x1, #\kind
	b	exc_common
.endm

	.section .text.vectors, "ax"
	.balign 0x800
	.globl vectors
vectors:
	VENTRY 0
	VENTRY 1
	VENTRY 2
	VENTRY 3
	VENTRY 4
	VENTRY 5
	VENTRY 6
	VENTRY 7
	VENTRY 8
	VENTRY 9
	VENTRY 10
	VENTRY 11
	VENTRY 12
	VENTRY 13
	VENTRY 14
	VENTRY 15

exc_common:
	stp	x2, x3, [sp, #16]
	stp	x4, x5, [sp, #32]
	stp	x6, x7, [sp, #48]
	stp	x8, x9, [sp, #64]
	stp	x10, x11, [sp, #80]
	stp	x12, x13, [sp, #96]
	stp	x14, x15, [sp, #112]
	stp	x16, x17, [sp, #128]
	stp	x18, x19, [sp, #144]
	stp	x20, x21, [sp, #160]
	stp	x22, x23, [sp, #176]
	stp	x24, x25, [sp, #192]
	stp	x26, x27, [sp, #208]
	stp	x28, x29, [sp, #224]
	mrs	x2, elr_el1
	mrs	x3, spsr_el1
	stp	x30, x2, [sp, #240]
	mrs	x4, esr_el1
	stp	x3, x4, [sp, #256]
	mrs	x5, far_el1
	stp	x5, x1, [sp, #272]
	mov	x0, sp
	bl	exc_dispatch
	ldp	x30, x2, [sp, #240]
	ldr	x3, [sp, #256]
	msr	elr_el1, x2
	msr	spsr_el1, x3
	ldp	x0, x1, [sp, #0]
	ldp	x2, x3, [sp, #16]
	ldp	x4, x5, [sp, #32]
	ldp	x6, x7, [sp, #48]
	ldp	x8, x9, [sp, #64]
	ldp	x10, x11, [sp, #80]
	ldp	x12, x13, [sp, #96]
	ldp	x14, x15, [sp, #112]
	ldp	x16, x17, [sp, #128]
	ldp	x18, x19, [sp, #144]
	ldp	x20, x21, [sp, #160]
	ldp	x22, x23, [sp, #176]
	ldp	x24, x25, [sp, #192]
	ldp	x26, x27, [sp, #208]
	ldp	x28, x29, [sp, #224]
	add	sp, sp, #FRAME
	eret
