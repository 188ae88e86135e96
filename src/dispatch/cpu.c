/* Feature detection: cpuid plus xgetbv on x86-64 (the OS must save the wide registers, not only the
 * CPU have them), hwcaps on ARM64. Done once; the result never changes during a process. */
#include "dispatch/cpu.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fastconv/fastconv.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>

static unsigned long long read_xcr0(void) {
  unsigned eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return ((unsigned long long)edx << 32) | eax;
}

static unsigned detect(void) {
  unsigned a, b, c, d, found = 1u << FC_ISA_SCALAR;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return found;
  const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
  if (!osxsave || !avx) return found;
  const unsigned long long xcr0 = read_xcr0();
  if ((xcr0 & 0x6) != 0x6) return found; /* XMM and YMM state */
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return found;
  const int avx2 = (b >> 5) & 1;
  if (avx2 && fma) found |= 1u << FC_ISA_AVX2;
  const int avx512 = ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);
  if (avx512 && fma && avx2 && (xcr0 & 0xE6) == 0xE6) /* opmask, ZMM upper halves, ZMM16-31 */
    found |= 1u << FC_ISA_AVX512;
  return found;
}
#elif defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
static unsigned detect(void) {
  unsigned found = 1u << FC_ISA_SCALAR;
  if (getauxval(AT_HWCAP) & HWCAP_ASIMD) found |= 1u << FC_ISA_NEON;
  return found;
}
#else
static unsigned detect(void) { return 1u << FC_ISA_SCALAR; }
#endif

static const char *const names[FC_ISA_COUNT] = {"scalar", "neon", "avx2", "avx512"};

const char *fc_isa_name(fc_isa isa) {
  return isa >= 0 && isa < FC_ISA_COUNT ? names[isa] : "unknown";
}

/* The ISAs this build has kernels for (meson defines FC_HAVE_<ISA>). */
static unsigned compiled(void) {
  unsigned mask = 1u << FC_ISA_SCALAR;
#ifdef FC_HAVE_NEON
  mask |= 1u << FC_ISA_NEON;
#endif
#ifdef FC_HAVE_AVX2
  mask |= 1u << FC_ISA_AVX2;
#endif
#ifdef FC_HAVE_AVX512
  mask |= 1u << FC_ISA_AVX512;
#endif
  return mask;
}

/* FASTCONV_DISABLE=avx512,avx2 removes ISAs by name; "simd" removes them all. */
static unsigned disabled(void) {
  const char *env = getenv("FASTCONV_DISABLE");
  unsigned mask = 0;
  if (!env) return 0;
  for (int isa = FC_ISA_NEON; isa < FC_ISA_COUNT; isa++) {
    const char *p = env;
    size_t len = strlen(names[isa]);
    while ((p = strstr(p, names[isa])) != NULL) {
      const int starts = p == env || p[-1] == ',' || p[-1] == ' ';
      const int ends = p[len] == '\0' || p[len] == ',' || p[len] == ' ';
      if (starts && ends) mask |= 1u << isa;
      p += len;
    }
  }
  if (strstr(env, "simd")) mask |= ~(1u << FC_ISA_SCALAR);
  return mask;
}

static unsigned detected_mask;
static fc_isa selected_isa;
static char compiled_names[64], detected_names[64];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void append_names(unsigned mask, char *buffer, size_t size) {
  buffer[0] = '\0';
  for (int isa = 0; isa < FC_ISA_COUNT; isa++) {
    if (!(mask & (1u << isa))) continue;
    if (buffer[0]) strncat(buffer, ",", size - strlen(buffer) - 1);
    strncat(buffer, names[isa], size - strlen(buffer) - 1);
  }
}

static void init(void) {
  detected_mask = detect();
  const unsigned usable = detected_mask & compiled() & ~disabled();
  selected_isa = FC_ISA_SCALAR;
  for (int isa = 0; isa < FC_ISA_COUNT; isa++)
    if (usable & (1u << isa)) selected_isa = (fc_isa)isa;
  append_names(compiled(), compiled_names, sizeof compiled_names);
  append_names(detected_mask, detected_names, sizeof detected_names);
}

unsigned fc_cpu_detected(void) {
  pthread_once(&once, init);
  return detected_mask;
}

fc_isa fc_cpu_selected(void) {
  pthread_once(&once, init);
  return selected_isa;
}

const char *fc_isas_compiled(void) {
  pthread_once(&once, init);
  return compiled_names;
}

const char *fc_isas_detected(void) {
  pthread_once(&once, init);
  return detected_names;
}

const char *fc_isa_selected(void) { return fc_isa_name(fc_cpu_selected()); }
