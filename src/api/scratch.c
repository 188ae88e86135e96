#include "api/scratch.h"

#include <pthread.h>
#include <stdlib.h>

/* Blocks kept for reuse, and the bytes they may hold together: beyond that a block is freed. */
#define FC_SCRATCH_SLOTS 8
#define FC_SCRATCH_MAX_BYTES ((size_t)512 << 20)

/* Each block starts with its size, 64 bytes before what the caller sees. */
#define FC_SCRATCH_HEADER 64

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *slots[FC_SCRATCH_SLOTS];
static size_t kept_bytes;

static size_t block_size(void *block) { return *(size_t *)((char *)block - FC_SCRATCH_HEADER); }

/* The thread that returned a block last (its header's second word): a thread is handed back a
 * block it used, whose lines its own core's caches still hold, rather than another thread's, whose
 * lines would first cross from the other core (resnet50.l3.3x3 direct at two threads: five runs
 * 0.486-0.576 ms, two of them slow, against 0.485-0.500). */
static _Thread_local char thread_tag;
static const void **block_owner(void *block) {
  return (const void **)((char *)block - FC_SCRATCH_HEADER + sizeof(size_t));
}

void *fc_scratch_get(size_t bytes) {
  pthread_mutex_lock(&lock);
  int best = -1;
  for (int i = 0; i < FC_SCRATCH_SLOTS; i++)
    if (slots[i] && block_size(slots[i]) >= bytes &&
        (best < 0 || block_size(slots[i]) < block_size(slots[best])))
      best = i;
  /* this thread's own smallest fitting block instead, unless over twice the best fit's size */
  const size_t fit = best >= 0 ? block_size(slots[best]) : 0;
  int own = -1;
  for (int i = 0; i < FC_SCRATCH_SLOTS; i++)
    if (slots[i] && *block_owner(slots[i]) == &thread_tag && block_size(slots[i]) >= bytes &&
        block_size(slots[i]) <= 2 * fit &&
        (own < 0 || block_size(slots[i]) < block_size(slots[own])))
      own = i;
  if (own >= 0) best = own;
  void *block = NULL;
  if (best >= 0) {
    block = slots[best];
    slots[best] = NULL;
    kept_bytes -= block_size(block);
  }
  pthread_mutex_unlock(&lock);
  if (block) return block;
  const size_t total = (bytes + FC_SCRATCH_HEADER + 63) / 64 * 64;
  if (total < bytes) return NULL; /* overflow */
  char *raw = aligned_alloc(64, total);
  if (!raw) return NULL;
  *(size_t *)raw = total - FC_SCRATCH_HEADER;
  return raw + FC_SCRATCH_HEADER;
}

/* A returned block takes a free slot, or evicts smaller kept blocks: the large buffers (a layer's
 * transformed weights, its padded input) are the ones whose page faults cost most when each call
 * allocates them afresh. */
void fc_scratch_put(void *block) {
  if (!block) return;
  *block_owner(block) = &thread_tag;
  const size_t size = block_size(block);
  void *evicted[FC_SCRATCH_SLOTS];
  int evicted_count = 0;
  pthread_mutex_lock(&lock);
  for (;;) {
    int empty = -1, smallest = -1;
    for (int i = 0; i < FC_SCRATCH_SLOTS; i++) {
      if (!slots[i]) {
        if (empty < 0) empty = i;
      } else if (smallest < 0 || block_size(slots[i]) < block_size(slots[smallest])) {
        smallest = i;
      }
    }
    if (empty >= 0 && kept_bytes + size <= FC_SCRATCH_MAX_BYTES) {
      slots[empty] = block;
      kept_bytes += size;
      block = NULL;
      break;
    }
    if (smallest < 0 || block_size(slots[smallest]) >= size) break;
    evicted[evicted_count++] = slots[smallest];
    kept_bytes -= block_size(slots[smallest]);
    slots[smallest] = NULL;
  }
  pthread_mutex_unlock(&lock);
  for (int i = 0; i < evicted_count; i++) free((char *)evicted[i] - FC_SCRATCH_HEADER);
  if (block) free((char *)block - FC_SCRATCH_HEADER);
}

void fc_scratch_after_fork(void) { pthread_mutex_init(&lock, NULL); }
