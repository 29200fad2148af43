/* The BLAS in use, its kernel and the CPU; see include/bome/blas.h. */
#include "bome/blas.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* OpenBLAS's introspection. Weak, so that bome links and runs against any
 * CBLAS: with another BLAS these stay NULL. */
extern char *openblas_get_config(void) __attribute__((weak));
extern char *openblas_get_corename(void) __attribute__((weak));

void bome_cpu_features_get(bome_cpu_features *cpu)
{
    memset(cpu, 0, sizeof *cpu);
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    /* The builtins test the OS's XSAVE state too, so a flag is set only when
     * the registers are usable; cpu_init makes them safe to call from code
     * that may run before constructors. */
    __builtin_cpu_init();
    cpu->avx2 = __builtin_cpu_supports("avx2");
    cpu->fma = __builtin_cpu_supports("fma");
    cpu->avx512f = __builtin_cpu_supports("avx512f");
    cpu->avx512bw = __builtin_cpu_supports("avx512bw");
    cpu->avx512vl = __builtin_cpu_supports("avx512vl");
    cpu->avx512dq = __builtin_cpu_supports("avx512dq");
#endif
}

static void copy(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

void bome_blas_info_get(bome_blas_info *info)
{
    memset(info, 0, sizeof *info);
    info->openblas = openblas_get_config != NULL;
    if (info->openblas) {
        copy(info->config, sizeof info->config, openblas_get_config());
        copy(info->corename, sizeof info->corename, openblas_get_corename ? openblas_get_corename() : NULL);
        info->dynamic_arch = strstr(info->config, "DYNAMIC_ARCH") != NULL;
    }
    const char *env = getenv("OPENBLAS_CORETYPE");
    info->user_set = env != NULL;
    copy(info->user_coretype, sizeof info->user_coretype, env);
    bome_cpu_features_get(&info->cpu);
}

/* The x86 kernels an AVX2 CPU should never run: OpenBLAS's names for its
 * generic target and for every core before AVX2 and FMA (driver/others/
 * dynamic.c's table; a single-target build reports the same names in capitals,
 * hence the case-blind compare). Prescott is the fallback of a DYNAMIC_ARCH
 * build that does not know the CPU; Sandybridge (AVX, no FMA) is what it picks
 * for some models it half knows. Excavator and Zen are left out: they are the
 * right kernels for AMD CPUs that have AVX2. */
static const char *const generic_kernels[] = {
    "Unknown", "Generic", "Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Atom", "Core2",
    "Penryn", "Dunnington", "Nehalem", "Sandybridge", "Athlon", "Opteron", "Opteron_SSE3", "Barcelona",
    "Nano", "Bobcat", "Bulldozer", "Piledriver", "Steamroller",
};

bool bome_blas_kernel_is_generic(const char *corename)
{
    if (!corename)
        return false;
    for (size_t i = 0; i < sizeof generic_kernels / sizeof generic_kernels[0]; i++)
        if (!strcasecmp(corename, generic_kernels[i]))
            return true;
    return false;
}

/* The kernel this CPU deserves, whatever runs now: SkylakeX needs the four
 * AVX-512 subsets its kernels use, Haswell AVX2 and FMA. */
static const char *best_kernel(const bome_cpu_features *cpu)
{
    if (!cpu || !cpu->avx2 || !cpu->fma)
        return NULL;
    if (cpu->avx512f && cpu->avx512bw && cpu->avx512vl && cpu->avx512dq)
        return "SkylakeX";
    return "Haswell";
}

const char *bome_blas_pick_coretype(const bome_cpu_features *cpu, const char *corename, const char *user_coretype)
{
    /* The user's setting wins, even a value OpenBLAS rejects: they may be
     * working around a fault we cannot see from here. */
    if (user_coretype || !bome_blas_kernel_is_generic(corename))
        return NULL;
    return best_kernel(cpu);
}

/* The inputs of the decision as *info has them: no kernel name unless the
 * variable can change it. */
static const char *kernel_of(const bome_blas_info *info)
{
    return info->openblas && info->dynamic_arch ? info->corename : NULL;
}

const char *bome_blas_advice(const bome_blas_info *info)
{
    return bome_blas_pick_coretype(&info->cpu, kernel_of(info), info->user_set ? info->user_coretype : NULL);
}

bool bome_blas_message(const bome_blas_info *info, char *buf, size_t size)
{
    if (size)
        buf[0] = '\0';
    const char *best = best_kernel(&info->cpu);
    if (!info->openblas || !best || !bome_blas_kernel_is_generic(info->corename))
        return false;
    const char *cpu = !strcmp(best, "SkylakeX") ? "AVX-512" : "AVX2";
    /* Prescott is what OpenBLAS calls its generic x86-64 kernel; the others
     * are real cores, only older than this one. */
    const char *kind = !strcasecmp(info->corename, "Prescott") || !strcasecmp(info->corename, "Generic") ||
                               !strcasecmp(info->corename, "Unknown")
                           ? "generic"
                           : "older";
    if (!info->dynamic_arch)
        snprintf(buf, size,
                 "OpenBLAS was built for the %s kernel only and runs it on this %s CPU; an OpenBLAS built with "
                 "DYNAMIC_ARCH or for %s would be faster",
                 info->corename, cpu, best);
    else if (info->user_set)
        snprintf(buf, size, "OpenBLAS runs its %s %s kernel on this %s CPU with OPENBLAS_CORETYPE=%s; %s would be faster",
                 kind, info->corename, cpu, info->user_coretype, best);
    else
        snprintf(buf, size, "OpenBLAS runs its %s %s kernel on this %s CPU; set OPENBLAS_CORETYPE=%s",
                 kind, info->corename, cpu, best);
    return true;
}
