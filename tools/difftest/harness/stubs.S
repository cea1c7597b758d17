/* Stubs of the difftest harness. The entry and exit stubs are copied into the code page
   around the test words; they address the state block only through SP (tests never
   touch SP), so they leave no register of the test state to the harness. */
#include "layout.h"
	.text
	.global entry_start, entry_end, exit_start, exit_end, run_case, fp_reset
entry_start:
	clrex  /* no exclusive monitor left over from an earlier case */
	ldr x0, [sp, #SB_NZCV]
	msr nzcv, x0
	ldr w0, [sp, #SB_FPCR]
	msr fpcr, x0
	ldr w0, [sp, #SB_FPSR]
	msr fpsr, x0
	ldp q0, q1, [sp, #(SB_V + 0)]
	ldp q2, q3, [sp, #(SB_V + 32)]
	ldp q4, q5, [sp, #(SB_V + 64)]
	ldp q6, q7, [sp, #(SB_V + 96)]
	ldp q8, q9, [sp, #(SB_V + 128)]
	ldp q10, q11, [sp, #(SB_V + 160)]
	ldp q12, q13, [sp, #(SB_V + 192)]
	ldp q14, q15, [sp, #(SB_V + 224)]
	ldp q16, q17, [sp, #(SB_V + 256)]
	ldp q18, q19, [sp, #(SB_V + 288)]
	ldp q20, q21, [sp, #(SB_V + 320)]
	ldp q22, q23, [sp, #(SB_V + 352)]
	ldp q24, q25, [sp, #(SB_V + 384)]
	ldp q26, q27, [sp, #(SB_V + 416)]
	ldp q28, q29, [sp, #(SB_V + 448)]
	ldp q30, q31, [sp, #(SB_V + 480)]
	ldp x0, x1, [sp, #(SB_X + 0)]
	ldp x2, x3, [sp, #(SB_X + 16)]
	ldp x4, x5, [sp, #(SB_X + 32)]
	ldp x6, x7, [sp, #(SB_X + 48)]
	ldp x8, x9, [sp, #(SB_X + 64)]
	ldp x10, x11, [sp, #(SB_X + 80)]
	ldp x12, x13, [sp, #(SB_X + 96)]
	ldp x14, x15, [sp, #(SB_X + 112)]
	ldp x16, x17, [sp, #(SB_X + 128)]
	ldp x18, x19, [sp, #(SB_X + 144)]
	ldp x20, x21, [sp, #(SB_X + 160)]
	ldp x22, x23, [sp, #(SB_X + 176)]
	ldp x24, x25, [sp, #(SB_X + 192)]
	ldp x26, x27, [sp, #(SB_X + 208)]
	ldp x28, x29, [sp, #(SB_X + 224)]
	ldr x30, [sp, #(SB_X + 240)]
entry_end:
exit_start:
	stp x0, x1, [sp, #(SB_X + 0)]
	stp x2, x3, [sp, #(SB_X + 16)]
	stp x4, x5, [sp, #(SB_X + 32)]
	stp x6, x7, [sp, #(SB_X + 48)]
	stp x8, x9, [sp, #(SB_X + 64)]
	stp x10, x11, [sp, #(SB_X + 80)]
	stp x12, x13, [sp, #(SB_X + 96)]
	stp x14, x15, [sp, #(SB_X + 112)]
	stp x16, x17, [sp, #(SB_X + 128)]
	stp x18, x19, [sp, #(SB_X + 144)]
	stp x20, x21, [sp, #(SB_X + 160)]
	stp x22, x23, [sp, #(SB_X + 176)]
	stp x24, x25, [sp, #(SB_X + 192)]
	stp x26, x27, [sp, #(SB_X + 208)]
	stp x28, x29, [sp, #(SB_X + 224)]
	str x30, [sp, #(SB_X + 240)]
	stp q0, q1, [sp, #(SB_V + 0)]
	stp q2, q3, [sp, #(SB_V + 32)]
	stp q4, q5, [sp, #(SB_V + 64)]
	stp q6, q7, [sp, #(SB_V + 96)]
	stp q8, q9, [sp, #(SB_V + 128)]
	stp q10, q11, [sp, #(SB_V + 160)]
	stp q12, q13, [sp, #(SB_V + 192)]
	stp q14, q15, [sp, #(SB_V + 224)]
	stp q16, q17, [sp, #(SB_V + 256)]
	stp q18, q19, [sp, #(SB_V + 288)]
	stp q20, q21, [sp, #(SB_V + 320)]
	stp q22, q23, [sp, #(SB_V + 352)]
	stp q24, q25, [sp, #(SB_V + 384)]
	stp q26, q27, [sp, #(SB_V + 416)]
	stp q28, q29, [sp, #(SB_V + 448)]
	stp q30, q31, [sp, #(SB_V + 480)]
	mrs x0, nzcv
	str x0, [sp, #SB_NZCV]
	mrs x0, fpsr
	str w0, [sp, #SB_FPSR]
	mrs x0, fpcr
	str w0, [sp, #SB_FPCR]
	msr fpcr, xzr
	msr fpsr, xzr
	ldr x30, [sp, #SB_HRET]
	ldr x0, [sp, #SB_HSP]
	mov sp, x0
	ret
exit_end:

/* void run_case(void *block, void *entry): saves callee-saved state, points SP at the
   block and jumps to the entry stub; the exit stub returns to 1: below. */
run_case:
	stp x29, x30, [sp, #-176]!
	stp x19, x20, [sp, #16]
	stp x21, x22, [sp, #32]
	stp x23, x24, [sp, #48]
	stp x25, x26, [sp, #64]
	stp x27, x28, [sp, #80]
	stp d8, d9, [sp, #96]
	stp d10, d11, [sp, #112]
	stp d12, d13, [sp, #128]
	stp d14, d15, [sp, #144]
	str x18, [sp, #160]
	mov x2, sp
	str x2, [x0, #SB_HSP]
	adr x2, 1f
	str x2, [x0, #SB_HRET]
	mov sp, x0
	br x1
1:
	ldp x19, x20, [sp, #16]
	ldp x21, x22, [sp, #32]
	ldp x23, x24, [sp, #48]
	ldp x25, x26, [sp, #64]
	ldp x27, x28, [sp, #80]
	ldp d8, d9, [sp, #96]
	ldp d10, d11, [sp, #112]
	ldp d12, d13, [sp, #128]
	ldp d14, d15, [sp, #144]
	ldr x18, [sp, #160]
	ldp x29, x30, [sp], #176
	ret

fp_reset:
	msr fpcr, xzr
	msr fpsr, xzr
	ret
	.section .note.GNU-stack,"",%progbits
