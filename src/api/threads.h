/* How many threads an execution runs with. */
#ifndef FASTCONV_API_THREADS_H
#define FASTCONV_API_THREADS_H

/* requested > 0 is taken as is; otherwise OpenMP's current default. Always 1 in a child process
 * forked after fastconv ran: GNU libgomp's thread pool does not survive fork, and a child that
 * enters a parallel region hangs, so a child runs serially (every parallel region in fastconv has
 * an if (num_threads > 1) clause, which keeps it off the pool). */
int fc_threads_resolve(int requested);

#endif
