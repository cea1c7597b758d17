/* malloc-heavy linked lists: build, reverse, sort by insertion, free; realloc growth. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node { struct node *next; uint32_t key; char name[20]; };

static uint32_t seed = 2463534242u;
static uint32_t rnd(void) { seed ^= seed << 13; seed ^= seed >> 17; seed ^= seed << 5; return seed; }

static struct node *push(struct node *head, uint32_t key) {
  struct node *n = malloc(sizeof *n);
  n->next = head;
  n->key = key;
  snprintf(n->name, sizeof n->name, "n%u", key % 100000);
  return n;
}

static struct node *reverse(struct node *h) {
  struct node *prev = NULL;
  while (h) { struct node *nx = h->next; h->next = prev; prev = h; h = nx; }
  return prev;
}

static struct node *merge(struct node *a, struct node *b) {
  struct node head, *t = &head;
  while (a && b) {
    if (a->key <= b->key) { t->next = a; a = a->next; } else { t->next = b; b = b->next; }
    t = t->next;
  }
  t->next = a ? a : b;
  return head.next;
}
static struct node *msort(struct node *h) {
  if (!h || !h->next) return h;
  struct node *slow = h, *fast = h->next;
  while (fast && fast->next) { slow = slow->next; fast = fast->next->next; }
  struct node *b = slow->next;
  slow->next = NULL;
  return merge(msort(h), msort(b));
}

int main(void) {
  for (int round = 0; round < 5; round++) {
    struct node *h = NULL;
    int n = 5000 + round * 3000;
    for (int i = 0; i < n; i++) h = push(h, rnd());
    h = reverse(h);
    h = msort(h);
    uint64_t sum = 0;
    int count = 0, sorted = 1;
    for (struct node *p = h; p; p = p->next) {
      sum = sum * 1000003 + p->key + (uint64_t)strlen(p->name);
      if (p->next && p->key > p->next->key) sorted = 0;
      count++;
    }
    printf("round %d: count=%d sorted=%d first=%s hash=%016llx\n", round, count, sorted, h->name, (unsigned long long)sum);
    while (h) { struct node *nx = h->next; free(h); h = nx; }
  }
  /* realloc growth and big blocks (mmap threshold). */
  size_t cap = 16, len = 0;
  uint32_t *v = malloc(cap * sizeof *v);
  for (int i = 0; i < 300000; i++) {
    if (len == cap) { cap *= 2; v = realloc(v, cap * sizeof *v); }
    v[len++] = (uint32_t)i * 2654435761u;
  }
  uint32_t x = 0;
  for (size_t i = 0; i < len; i++) x ^= v[i] + (uint32_t)i;
  printf("vector len=%zu cap=%zu xor=%08x\n", len, cap, x);
  free(v);
  char *blocks[64];
  for (int i = 0; i < 64; i++) { blocks[i] = calloc(1, 1000 + i * 9000); blocks[i][i] = (char)i; }
  long total = 0;
  for (int i = 0; i < 64; i++) { total += blocks[i][i]; free(blocks[i]); }
  printf("calloc blocks total=%ld\n", total);
  return 0;
}
