#include "api/threads.h"

#include <omp.h>
#include <pthread.h>

#include "api/scratch.h"
#include "fastconv/fastconv.h"

static int forked_child;
static pthread_once_t first_use_once = PTHREAD_ONCE_INIT;

static void mark_child(void) {
  __atomic_store_n(&forked_child, 1, __ATOMIC_RELAXED);
  fc_scratch_after_fork();
}
/* The processors this process may use, read once: omp_get_num_procs() asks the kernel for the
 * affinity mask on every call, a system call per layer. Like OpenMP's own default team size, it
 * does not follow affinity changes made after the first execution. */
static int available;

static void first_use(void) {
  pthread_atfork(NULL, NULL, mark_child);
  available = omp_get_num_procs();
}

int fc_threads_resolve(int requested) {
  /* Registered before the first parallel region can run, since every execution resolves first. */
  pthread_once(&first_use_once, first_use);
  if (__atomic_load_n(&forked_child, __ATOMIC_RELAXED)) return 1;
  if (requested <= 0) return omp_get_max_threads();
  return requested < available ? requested : available;
}

int fc_default_num_threads(void) { return fc_threads_resolve(0); }

int fc_threads_for_work(int threads, double flops) {
  const double earned = 1.0 + flops / FC_FLOPS_PER_THREAD;
  return earned < (double)threads ? (int)earned : threads;
}
