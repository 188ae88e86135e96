/* The CPU's SIMD features, read once, and the ISA the kernels run with. */
#ifndef FASTCONV_DISPATCH_CPU_H
#define FASTCONV_DISPATCH_CPU_H

typedef enum fc_isa {
  FC_ISA_SCALAR = 0, /* the portable engines only */
  FC_ISA_NEON = 1,
  FC_ISA_AVX2 = 2,   /* AVX2 + FMA */
  FC_ISA_AVX512 = 3, /* AVX-512 F, BW, DQ, VL */
  FC_ISA_COUNT
} fc_isa;

/* Bit (1 << isa) for each ISA the CPU and the OS support. */
unsigned fc_cpu_detected(void);
/* The best ISA that is compiled in, detected, and not disabled by FASTCONV_DISABLE. */
fc_isa fc_cpu_selected(void);
const char *fc_isa_name(fc_isa isa);

#endif
