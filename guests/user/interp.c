/* A tiny stack-machine bytecode interpreter running a few programs (switch dispatch). */
#include <stdint.h>
#include <stdio.h>

enum { PUSH, ADD, SUB, MUL, DIV, MOD, DUP, SWAP, OVER, DROP, JZ, JMP, LT, PRINT, HALT, LOAD, STORE };

static int64_t run(const int64_t *code, int trace) {
  int64_t stack[256], mem[16] = {0};
  int sp = 0;
  long steps = 0;
  for (int pc = 0;;) {
    steps++;
    int64_t op = code[pc++], a, b;
    switch (op) {
      case PUSH: stack[sp++] = code[pc++]; break;
      case ADD: b = stack[--sp]; stack[sp - 1] += b; break;
      case SUB: b = stack[--sp]; stack[sp - 1] -= b; break;
      case MUL: b = stack[--sp]; stack[sp - 1] *= b; break;
      case DIV: b = stack[--sp]; stack[sp - 1] /= b; break;
      case MOD: b = stack[--sp]; stack[sp - 1] %= b; break;
      case DUP: stack[sp] = stack[sp - 1]; sp++; break;
      case SWAP: a = stack[sp - 1]; stack[sp - 1] = stack[sp - 2]; stack[sp - 2] = a; break;
      case OVER: stack[sp] = stack[sp - 2]; sp++; break;
      case DROP: sp--; break;
      case JZ: a = stack[--sp]; if (a == 0) pc = (int)code[pc]; else pc++; break;
      case JMP: pc = (int)code[pc]; break;
      case LT: b = stack[--sp]; stack[sp - 1] = stack[sp - 1] < b; break;
      case PRINT: if (trace) printf("  out %lld\n", (long long)stack[sp - 1]); break;
      case LOAD: stack[sp++] = mem[code[pc++]]; break;
      case STORE: mem[code[pc++]] = stack[--sp]; break;
      case HALT: printf("  steps=%ld\n", steps); return sp ? stack[sp - 1] : 0;
      default: printf("bad op %lld\n", (long long)op); return -1;
    }
  }
}

int main(void) {
  /* sum of i*i for i < 1000 */
  const int64_t sumsq[] = {PUSH, 0, STORE, 0, PUSH, 0, STORE, 1,
                           /*8*/ LOAD, 1, PUSH, 1000, LT, JZ, 33,
                           LOAD, 1, DUP, MUL, LOAD, 0, ADD, STORE, 0,
                           LOAD, 1, PUSH, 1, ADD, STORE, 1, JMP, 8,
                           /*33*/ LOAD, 0, HALT};
  printf("sumsq=%lld\n", (long long)run(sumsq, 0));
  /* gcd(1071, 462) printing each remainder */
  const int64_t gcd[] = {PUSH, 1071, PUSH, 462,
                         /*4*/ DUP, JZ, 13, SWAP, OVER, MOD, PRINT, JMP, 4,
                         /*13*/ DROP, HALT};
  printf("gcd=%lld\n", (long long)run(gcd, 1));
  /* factorial 20 */
  const int64_t fact[] = {PUSH, 1, STORE, 0, PUSH, 20, STORE, 1,
                          /*8*/ LOAD, 1, JZ, 28, LOAD, 0, LOAD, 1, MUL, STORE, 0, LOAD, 1, PUSH, 1, SUB, STORE, 1, JMP, 8,
                          /*28*/ LOAD, 0, HALT};
  printf("20!=%lld\n", (long long)run(fact, 0));
  /* collatz steps for 27 */
  const int64_t collatz[] = {PUSH, 27, STORE, 0, PUSH, 0, STORE, 1,
                             /*8*/ LOAD, 0, PUSH, 1, SUB, JZ, 53,
                             LOAD, 1, PUSH, 1, ADD, STORE, 1,
                             LOAD, 0, PUSH, 2, MOD, JZ, 44,
                             LOAD, 0, PUSH, 3, MUL, PUSH, 1, ADD, STORE, 0, JMP, 8, 0, 0, 0,
                             /*44*/ LOAD, 0, PUSH, 2, DIV, STORE, 0, JMP, 8,
                             /*53*/ LOAD, 1, HALT};
  printf("collatz(27)=%lld\n", (long long)run(collatz, 0));
  return 0;
}
