/* Mirror of tools/difftest/layout.ts (run.ts checks that they agree). */
#define CODE_PAGE 0x20000000UL
#define CODE (CODE_PAGE + 0x800)
#define WINDOW (CODE_PAGE + 0x1000)
#define WINDOW_SIZE 0x1000
#define MAX_WORDS 8
#define SB_X 0
#define SB_NZCV 248
#define SB_V 256
#define SB_FPSR 768
#define SB_FPCR 772
#define SB_SIZE 776
#define SB_HSP 776
#define SB_HRET 784
#define SB_ALLOC 800
