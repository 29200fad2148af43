/*
 * bome/blas.h: which BLAS the process runs, which of its kernels, and whether
 * that kernel fits the CPU.
 *
 * OpenBLAS built with DYNAMIC_ARCH (Debian's, for one) picks a kernel when it
 * is loaded, from the CPU model. A version older than the CPU does not know
 * the model and may fall back to a generic kernel (Prescott: SSE3 only) that
 * runs dense products several times slower than the AVX2 or AVX-512 kernels
 * the CPU could run. The environment variable OPENBLAS_CORETYPE overrides the
 * choice, but OpenBLAS reads it once, at load: a program that wants to set it
 * must do so before it starts (or re-execute itself, as the `bome` command
 * does). These functions report and advise; none prints or sets anything.
 *
 *     bome_blas_info b;
 *     bome_blas_info_get(&b);
 *     char msg[BOME_BLAS_MSG_SIZE];
 *     if (bome_blas_message(&b, msg, sizeof msg))
 *         fprintf(stderr, "%s\n", msg);   // e.g. "... set OPENBLAS_CORETYPE=SkylakeX"
 */
#ifndef BOME_BLAS_H
#define BOME_BLAS_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What the CPU and the operating system together offer (the AVX-512 and
 * AVX2 register state must be enabled by the OS, which the checks include).
 * All false on a CPU other than x86. */
typedef struct bome_cpu_features {
    bool avx2, fma;
    bool avx512f, avx512bw, avx512vl, avx512dq;
} bome_cpu_features;

/* The BLAS of this process, as found by bome_blas_info_get. */
typedef struct bome_blas_info {
    bool openblas;          /* OpenBLAS's own functions are linked in */
    bool dynamic_arch;      /* OpenBLAS chooses its kernel at load (DYNAMIC_ARCH) and
                               so honours OPENBLAS_CORETYPE; a build for one target
                               has one kernel and ignores the variable */
    char config[160];       /* openblas_get_config(), e.g. "OpenBLAS 0.3.21 ... DYNAMIC_ARCH ..."; "" if not OpenBLAS */
    char corename[48];      /* openblas_get_corename(), e.g. "Haswell"; "" if not OpenBLAS */
    bool user_set;          /* OPENBLAS_CORETYPE was in the environment (whatever its value) */
    char user_coretype[48]; /* its value, cut to fit; "" when unset */
    bome_cpu_features cpu;
} bome_blas_info;

/* Room for any line bome_blas_message writes. */
#define BOME_BLAS_MSG_SIZE 256

/* Fills *cpu for the CPU this runs on. */
void bome_cpu_features_get(bome_cpu_features *cpu);
/* Fills *info for this process: the BLAS, its kernel, OPENBLAS_CORETYPE, the CPU. */
void bome_blas_info_get(bome_blas_info *info);

/* True for the names OpenBLAS gives its generic and pre-AVX2 x86 kernels
 * (Prescott, Core2, Penryn, Nehalem, Atom, Sandybridge, Unknown, Generic, the
 * older AMD ones...), any case: kernels no AVX2 CPU should run. False for
 * Haswell, Zen, Excavator, SkylakeX, Cooperlake, SapphireRapids, and NULL. */
bool bome_blas_kernel_is_generic(const char *corename);

/*
 * The decision, a pure function: the OPENBLAS_CORETYPE to set, or NULL to
 * leave things be. corename is the kernel OpenBLAS runs (NULL when the BLAS
 * is not OpenBLAS, or is an OpenBLAS that ignores the variable); user_coretype
 * is OPENBLAS_CORETYPE's value, or NULL when it is unset.
 *   "SkylakeX" for a generic kernel on a CPU with AVX-512 F, BW, VL and DQ
 *              (and AVX2 and FMA);
 *   "Haswell"  for a generic kernel on a CPU with AVX2 and FMA;
 *   NULL       otherwise: a kernel that fits, a CPU without AVX2 and FMA, not
 *              OpenBLAS, and whenever the user set OPENBLAS_CORETYPE, to any
 *              value (even "" or one OpenBLAS does not know): that is the
 *              user's choice.
 * The strings are static.
 */
const char *bome_blas_pick_coretype(const bome_cpu_features *cpu, const char *corename, const char *user_coretype);

/* bome_blas_pick_coretype with the inputs in *info (corename NULL unless
 * OpenBLAS with DYNAMIC_ARCH; user_coretype NULL unless user_set). */
const char *bome_blas_advice(const bome_blas_info *info);

/*
 * One line, no newline, about a kernel that does not fit the CPU: what runs,
 * on what, and what to do, e.g.
 *   "OpenBLAS runs its generic Prescott kernel on this AVX-512 CPU; set OPENBLAS_CORETYPE=SkylakeX"
 * and, when the user's OPENBLAS_CORETYPE selected the kernel or a single-
 * target OpenBLAS has no other, says that instead. Returns true and fills buf
 * (cut to size, NUL-terminated) when there is a mismatch; otherwise returns
 * false and leaves buf "" (when size > 0). Pure: reads only *info.
 */
bool bome_blas_message(const bome_blas_info *info, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif
