/* How many threads an execution runs with. */
#ifndef FASTCONV_API_THREADS_H
#define FASTCONV_API_THREADS_H

/* requested > 0 is taken, up to the processors available (more threads than cores only slow
 * compute-bound kernels, and an absurd request must not start thousands); otherwise OpenMP's
 * current default. Always 1 in a child process
 * forked after fastconv ran: GNU libgomp's thread pool does not survive fork, and a child that
 * enters a parallel region hangs, so a child runs serially (every parallel region in fastconv has
 * an if (num_threads > 1) clause, which keeps it off the pool). */
int fc_threads_resolve(int requested);

#endif
