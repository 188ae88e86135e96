/* Scratch buffers reused across executions. A fresh multi-megabyte malloc per call is paid again
 * in page faults every time (glibc hands large freed blocks back to the OS), which costs as much
 * as a depthwise layer's arithmetic; the pool keeps a few blocks and hands them out again. */
#ifndef FASTCONV_API_SCRATCH_H
#define FASTCONV_API_SCRATCH_H

#include <stddef.h>

/* A 64-byte-aligned block of at least `bytes`, or NULL. Thread-safe. */
void *fc_scratch_get(size_t bytes);
/* Returns a block from fc_scratch_get (NULL is ignored). */
void fc_scratch_put(void *block);
/* Called in a forked child: the pool's lock may have been held by a thread that is gone. */
void fc_scratch_after_fork(void);

#endif
