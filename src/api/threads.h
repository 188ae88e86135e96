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
 * small layer's arithmetic, and far more when the other cores are busy: the region ends only when
 * every thread has run, and a woken worker waits for the scheduler. With the threshold lowered to
 * 0.5 MFLOP, a 7 x 7 depthwise layer (0.85 MFLOP) at two threads took 0.033 ms at best, but 16 to
 * 40 ms in a quarter of the calls on the loaded 2-core host (one thread: 0.054 to 0.2 ms). So each
 * thread past the first must have FC_FLOPS_PER_THREAD of work. */
#define FC_FLOPS_PER_THREAD 2.0e6
int fc_threads_for_work(int threads, double flops);

#endif
