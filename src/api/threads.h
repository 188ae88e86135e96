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

/* Starting a parallel region and meeting at its barriers costs tens of microseconds, more than a
 * small layer's arithmetic (and far more when the other cores are busy): each thread past the
 * first must have FC_FLOPS_PER_THREAD of work. */
#define FC_FLOPS_PER_THREAD 2.0e6
int fc_threads_for_work(int threads, double flops);

#endif
