#include "api/threads.h"

#include <omp.h>
#include <pthread.h>

#include "api/scratch.h"
#include "fastconv/fastconv.h"

static int forked_child;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void mark_child(void) {
  __atomic_store_n(&forked_child, 1, __ATOMIC_RELAXED);
  fc_scratch_after_fork();
}
static void register_atfork(void) { pthread_atfork(NULL, NULL, mark_child); }

int fc_threads_resolve(int requested) {
  /* Registered before the first parallel region can run, since every execution resolves first. */
  pthread_once(&atfork_once, register_atfork);
  if (__atomic_load_n(&forked_child, __ATOMIC_RELAXED)) return 1;
  if (requested <= 0) return omp_get_max_threads();
  const int available = omp_get_num_procs();
  return requested < available ? requested : available;
}

int fc_default_num_threads(void) { return fc_threads_resolve(0); }

int fc_threads_for_work(int threads, double flops) {
  const double earned = 1.0 + flops / FC_FLOPS_PER_THREAD;
  return earned < (double)threads ? (int)earned : threads;
}
