/* The BLAS kernel: the decision (which OPENBLAS_CORETYPE, if any) over a
 * table, its message, the report of this process, products through the ad
 * engine under the kernel this process runs, and the `bome` command's
 * re-execution.
 *
 * No test here ever starts a process without the OPENBLAS_CORETYPE it
 * inherited (some machines need it: an OpenBLAS older than the CPU can crash
 * while detecting it). The re-execution is tried through the CLI's test hook,
 * BOME_TEST_FAKE_CORENAME, which makes the start-up check believe OpenBLAS
 * chose a generic kernel by itself; the process then runs again with
 * OPENBLAS_CORETYPE set to the decision, Haswell or SkylakeX, both of which
 * the CPU offers (the decision says so). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <bome/ad.h>
#include <bome/blas.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

extern char *openblas_get_corename(void) __attribute__((weak));

static const bome_cpu_features NONE = {0};
static const bome_cpu_features AVX2_NO_FMA = {.avx2 = true};
static const bome_cpu_features AVX2 = {.avx2 = true, .fma = true};
static const bome_cpu_features AVX512 = {true, true, true, true, true, true};
static const bome_cpu_features AVX512_NO_DQ = {true, true, true, true, true, false};
static const bome_cpu_features AVX512F_ONLY = {.avx2 = true, .fma = true, .avx512f = true};

typedef struct pick_case {
    const bome_cpu_features *cpu;
    const char *corename, *user, *want;
} pick_case;

static const pick_case pick_cases[] = {
    /* a generic or older kernel on a CPU that has better: set one */
    {&AVX2, "Prescott", NULL, "Haswell"},
    {&AVX512, "Prescott", NULL, "SkylakeX"},
    {&AVX512, "PRESCOTT", NULL, "SkylakeX"}, /* a single-target build's capitals */
    {&AVX512, "Core2", NULL, "SkylakeX"},
    {&AVX512, "Penryn", NULL, "SkylakeX"},
    {&AVX512, "Nehalem", NULL, "SkylakeX"},
    {&AVX512, "Atom", NULL, "SkylakeX"},
    {&AVX512, "Sandybridge", NULL, "SkylakeX"},
    {&AVX2, "Dunnington", NULL, "Haswell"},
    {&AVX2, "Barcelona", NULL, "Haswell"},
    {&AVX2, "Bulldozer", NULL, "Haswell"},
    {&AVX2, "Unknown", NULL, "Haswell"},
    {&AVX2, "generic", NULL, "Haswell"},
    /* SkylakeX only with all four AVX-512 subsets */
    {&AVX512_NO_DQ, "Prescott", NULL, "Haswell"},
    {&AVX512F_ONLY, "Prescott", NULL, "Haswell"},
    /* a kernel that fits: leave it */
    {&AVX512, "Haswell", NULL, NULL},
    {&AVX512, "SkylakeX", NULL, NULL},
    {&AVX512, "Cooperlake", NULL, NULL},
    {&AVX512, "SapphireRapids", NULL, NULL},
    {&AVX2, "Zen", NULL, NULL},
    {&AVX2, "Excavator", NULL, NULL},
    {&AVX2, "Haswell", NULL, NULL},
    /* the user's OPENBLAS_CORETYPE, whatever it says */
    {&AVX512, "Prescott", "Prescott", NULL},
    {&AVX512, "Prescott", "Haswell", NULL},
    {&AVX512, "Prescott", "", NULL},
    {&AVX512, "Prescott", "NoSuchCore", NULL},
    {&AVX2, "Haswell", "Haswell", NULL},
    /* nothing better to offer */
    {&NONE, "Prescott", NULL, NULL},
    {&AVX2_NO_FMA, "Prescott", NULL, NULL},
    {&AVX2_NO_FMA, "Sandybridge", NULL, NULL},
    /* not OpenBLAS */
    {&AVX512, NULL, NULL, NULL},
    {&AVX512, "", NULL, NULL},
};

/* The parameter is an index: Criterion may run each case in a process of
 * its own, where pointers into the table would not survive. */
ParameterizedTestParameters(blas, pick_coretype)
{
    enum { N = sizeof pick_cases / sizeof pick_cases[0] };
    static int index[N];
    for (int i = 0; i < N; i++)
        index[i] = i;
    return cr_make_param_array(int, index, N);
}

ParameterizedTest(int *i, blas, pick_coretype)
{
    const pick_case *c = &pick_cases[*i];
    const char *got = bome_blas_pick_coretype(c->cpu, c->corename, c->user);
    const char *core = c->corename ? c->corename : "NULL", *user = c->user ? c->user : "(unset)";
    if (c->want)
        cr_expect(got && !strcmp(got, c->want), "kernel %s, user %s: got %s, want %s", core, user,
                  got ? got : "NULL", c->want);
    else
        cr_expect_null(got, "kernel %s, user %s: got %s, want NULL", core, user, got);
}

static bome_blas_info fake_info(const bome_cpu_features *cpu, const char *corename, const char *user, bool dynamic)
{
    bome_blas_info b = {0};
    b.openblas = true;
    b.dynamic_arch = dynamic;
    snprintf(b.config, sizeof b.config, "OpenBLAS 0.3.21 %s MAX_THREADS=64", dynamic ? "DYNAMIC_ARCH" : "");
    snprintf(b.corename, sizeof b.corename, "%s", corename);
    b.user_set = user != NULL;
    snprintf(b.user_coretype, sizeof b.user_coretype, "%s", user ? user : "");
    b.cpu = *cpu;
    return b;
}

Test(blas, advice_needs_an_openblas_that_can_switch)
{
    bome_blas_info b = fake_info(&AVX512, "Prescott", NULL, true);
    cr_expect_str_eq(bome_blas_advice(&b), "SkylakeX");
    b.dynamic_arch = false; /* one kernel built in: the variable does nothing */
    cr_expect_null(bome_blas_advice(&b));
    b = fake_info(&AVX512, "Prescott", NULL, true);
    b.openblas = false;
    cr_expect_null(bome_blas_advice(&b));
    b = fake_info(&AVX512, "Prescott", "", true); /* set, if empty */
    cr_expect_null(bome_blas_advice(&b));
}

Test(blas, message_text)
{
    char m[BOME_BLAS_MSG_SIZE];
    bome_blas_info b = fake_info(&AVX512, "Prescott", NULL, true);
    cr_assert(bome_blas_message(&b, m, sizeof m));
    cr_expect_str_eq(m, "OpenBLAS runs its generic Prescott kernel on this AVX-512 CPU; set OPENBLAS_CORETYPE=SkylakeX");
    b = fake_info(&AVX2, "Nehalem", NULL, true);
    cr_assert(bome_blas_message(&b, m, sizeof m));
    cr_expect_str_eq(m, "OpenBLAS runs its older Nehalem kernel on this AVX2 CPU; set OPENBLAS_CORETYPE=Haswell");
    /* the user's choice is named, not overruled */
    b = fake_info(&AVX512, "Prescott", "Prescott", true);
    cr_assert(bome_blas_message(&b, m, sizeof m));
    cr_expect_str_eq(m, "OpenBLAS runs its generic Prescott kernel on this AVX-512 CPU with OPENBLAS_CORETYPE=Prescott; "
                        "SkylakeX would be faster");
    b = fake_info(&AVX2, "PRESCOTT", NULL, false);
    cr_assert(bome_blas_message(&b, m, sizeof m));
    cr_expect_str_eq(m, "OpenBLAS was built for the PRESCOTT kernel only and runs it on this AVX2 CPU; an OpenBLAS "
                        "built with DYNAMIC_ARCH or for Haswell would be faster");
    /* nothing to say */
    const struct { const bome_cpu_features *cpu; const char *core; } quiet[] = {
        {&AVX512, "Haswell"}, {&AVX512, "SkylakeX"}, {&AVX2, "Zen"}, {&AVX2_NO_FMA, "Prescott"}, {&NONE, "Prescott"},
    };
    for (size_t i = 0; i < sizeof quiet / sizeof quiet[0]; i++) {
        b = fake_info(quiet[i].cpu, quiet[i].core, NULL, true);
        strcpy(m, "junk");
        cr_expect_not(bome_blas_message(&b, m, sizeof m), "%s", quiet[i].core);
        cr_expect_str_eq(m, "");
    }
    b = fake_info(&AVX512, "Prescott", NULL, true);
    b.openblas = false;
    cr_expect_not(bome_blas_message(&b, m, sizeof m));
    /* cut to fit, always terminated; size 0 writes nothing */
    b = fake_info(&AVX512, "Prescott", NULL, true);
    char small[12];
    cr_expect(bome_blas_message(&b, small, sizeof small));
    cr_expect_str_eq(small, "OpenBLAS ru");
    cr_expect(bome_blas_message(&b, NULL, 0));
}

Test(blas, kernel_names)
{
    cr_expect(bome_blas_kernel_is_generic("Prescott"));
    cr_expect(bome_blas_kernel_is_generic("prescott"));
    cr_expect(bome_blas_kernel_is_generic("GENERIC"));
    cr_expect_not(bome_blas_kernel_is_generic("Haswell"));
    cr_expect_not(bome_blas_kernel_is_generic("SkylakeX"));
    cr_expect_not(bome_blas_kernel_is_generic(""));
    cr_expect_not(bome_blas_kernel_is_generic(NULL));
}

/* What bome_blas_info_get reports is what OpenBLAS, the environment and the
 * compiler's CPU checks say. */
Test(blas, info_of_this_process)
{
    bome_blas_info b;
    bome_blas_info_get(&b);
    cr_expect_eq(b.openblas, openblas_get_corename != NULL);
    if (b.openblas) {
        cr_expect_str_eq(b.corename, openblas_get_corename());
        cr_expect(strstr(b.config, "OpenBLAS"), "%s", b.config);
    }
    const char *env = getenv("OPENBLAS_CORETYPE");
    cr_expect_eq(b.user_set, env != NULL);
    cr_expect_str_eq(b.user_coretype, env ? env : "");
    if (env)
        cr_expect_null(bome_blas_advice(&b), "the user's OPENBLAS_CORETYPE=%s must stand", env);
#if defined(__x86_64__) || defined(__i386__)
    cr_expect_eq(b.cpu.avx2, !!__builtin_cpu_supports("avx2"));
    cr_expect_eq(b.cpu.fma, !!__builtin_cpu_supports("fma"));
    cr_expect_eq(b.cpu.avx512f, !!__builtin_cpu_supports("avx512f"));
    cr_expect_eq(b.cpu.avx512dq, !!__builtin_cpu_supports("avx512dq"));
#endif
}

/* c (m x n, row-major) = alpha a b by loops, where a's (i, l) element is
 * a[i * ar + l * ac] and b's (l, j) is b[l * br + j * bc]: strides give the
 * transposes without copies. */
static void naive(int m, int n, int k, double alpha, const double *a, int ar, int ac, const double *b, int br, int bc,
                  double *c)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int l = 0; l < k; l++)
                s += a[i * ar + l * ac] * b[l * br + j * bc];
            c[i * n + j] = alpha * s;
        }
}

/* Products through the engine (dgemm forward and in the reverse rules) agree
 * with plain loops to rounding, under whatever kernel this process runs. */
Test(blas, dgemm_through_ad_under_this_kernel)
{
    enum { M = 37, K = 29, N = 23 };
    static bome_real A[M * K], B[K * N], C[M * N], GA[M * K], GB[K * N];
    for (int i = 0; i < M * K; i++)
        A[i] = sin(0.7 * i) + 0.25;
    for (int i = 0; i < K * N; i++)
        B[i] = cos(1.3 * i) - 0.1;
    bome_graph *g = bome_graph_new();
    bome_node *a = bome_param(g, "a", BOME_MATRIX(M, K));
    bome_node *b = bome_param(g, "b", BOME_MATRIX(K, N));
    bome_node *c = bome_matmul(g, a, 0, b, 0);
    bome_node *y = bome_sumsq(g, c); /* dy/da = 2 C B^T, dy/db = 2 A^T C: two more dgemms */
    bome_node *wrt[2] = {a, b}, *grads[2];
    cr_assert_eq(bome_grad(g, y, 2, wrt, grads), BOME_OK);
    cr_assert_eq(bome_graph_status(g), BOME_OK, "%s", bome_graph_errmsg(g));
    bome_set(g, a, A);
    bome_set(g, b, B);
    bome_node *outs[3] = {y, grads[0], grads[1]};
    cr_assert_eq(bome_eval(g, 3, outs), BOME_OK);

    /* C = A B, dy/dA = 2 C B^T, dy/dB = 2 A^T C, by loops */
    naive(M, N, K, 1, A, K, 1, B, N, 1, C);
    naive(M, K, N, 2, C, N, 1, B, 1, N, GA);
    naive(K, N, M, 2, A, 1, K, C, N, 1, GB);
    double ys = 0, scale = 0;
    for (int i = 0; i < M * N; i++)
        ys += C[i] * C[i];
    for (int i = 0; i < M * K; i++)
        scale = fmax(scale, fabs(GA[i]));
    for (int i = 0; i < K * N; i++)
        scale = fmax(scale, fabs(GB[i]));
    /* a few ulps per term of the longest sum */
    const double tol = 64 * 2.220446049250313e-16 * (M + N + K);
    cr_expect_leq(fabs(bome_value(y) - ys), tol * ys, "y %.17g vs %.17g", bome_value(y), ys);
    const bome_real *ga = bome_data(grads[0]), *gb = bome_data(grads[1]);
    double worst = 0;
    for (int i = 0; i < M * K; i++)
        worst = fmax(worst, fabs(ga[i] - GA[i]));
    for (int i = 0; i < K * N; i++)
        worst = fmax(worst, fabs(gb[i] - GB[i]));
    cr_expect_leq(worst, tol * scale, "gradients differ by %g (scale %g) under kernel %s", worst, scale,
                  openblas_get_corename ? openblas_get_corename() : "(not OpenBLAS)");
    bome_graph_free(g);
}

/* ---- the bome command --------------------------------------------------- */

static char out[1 << 16], err[1 << 14];

/* Runs "ENV bome ARGS" through the shell, the environment otherwise this
 * process's (OPENBLAS_CORETYPE included); stdout into out, stderr into err;
 * returns the exit status. */
static int bome(const char *env, const char *args)
{
    const char *exe = getenv("BOME_EXE");
    cr_assert(exe, "BOME_EXE is not set (meson sets it)");
    char errpath[] = "/tmp/bome-blas-XXXXXX";
    int fd = mkstemp(errpath);
    cr_assert_geq(fd, 0);
    close(fd);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s %s 2>%s", env, exe, args, errpath);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    FILE *f = fopen(errpath, "r");
    cr_assert(f);
    n = fread(err, 1, sizeof err - 1, f);
    err[n] = '\0';
    fclose(f);
    remove(errpath);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* The decision the CLI makes when the test hook fakes `kernel`. */
static const char *pick_for(const char *kernel)
{
    bome_cpu_features cpu;
    bome_cpu_features_get(&cpu);
    return bome_blas_pick_coretype(&cpu, kernel, NULL);
}

/* The variable takes only in an OpenBLAS that chooses its kernel at load. */
static bool can_switch(void)
{
    bome_blas_info b;
    bome_blas_info_get(&b);
    return b.openblas && b.dynamic_arch;
}

Test(blas_cli, report)
{
    bome_blas_info b;
    bome_blas_info_get(&b);
    cr_assert_eq(bome("", "blas"), 0, "%s%s", out, err);
    if (!bome_blas_advice(&b))
        cr_expect_str_eq(err, "", "nothing to fix here, yet: %s", err);
    cr_expect(strstr(out, "BLAS:"), "%s", out);
    cr_expect(strstr(out, "CPU:"), "%s", out);
    cr_expect(strstr(out, "advice:"), "%s", out);
    char line[128];
    if (b.openblas && !bome_blas_advice(&b)) {
        snprintf(line, sizeof line, "kernel:            %s\n", b.corename);
        cr_expect(strstr(out, line), "%s", out);
    }
    if (b.user_set) {
        snprintf(line, sizeof line, "OPENBLAS_CORETYPE: %s (from the environment)", b.user_coretype);
        cr_expect(strstr(out, line), "%s", out);
    }
    if (b.cpu.avx2)
        cr_expect(strstr(out, " avx2"), "%s", out);
    cr_expect_eq(bome("", "blas --help"), 0);
    cr_expect(strstr(out, "usage: bome blas"), "%s", out);
    cr_expect_eq(bome("", "blas extra"), 2);
    cr_expect_eq(bome("", "help"), 0);
    cr_expect(strstr(out, "  blas "), "%s", out);
}

/* A generic kernel, as far as the start-up check knows: bome says what it
 * does, runs itself again once with OPENBLAS_CORETYPE set, and the second
 * process runs that kernel. */
Test(blas_cli, reexec_with_the_chosen_kernel)
{
    const char *pick = pick_for("Prescott");
    cr_assert_eq(bome("BOME_TEST_FAKE_CORENAME=Prescott", "blas"), 0, "%s%s", out, err);
    cr_expect(strstr(out, "test hook:         BOME_TEST_FAKE_CORENAME=Prescott"), "%s", out);
    if (!pick) { /* no AVX2 and FMA here: nothing to do */
        cr_expect_str_eq(err, "");
        return;
    }
    char want[160];
    snprintf(want, sizeof want, "bome: OpenBLAS chose its Prescott kernel on this %s CPU; running again with "
                                "OPENBLAS_CORETYPE=%s (set the variable to choose yourself)\n",
             strcmp(pick, "SkylakeX") ? "AVX2" : "AVX-512", pick);
    cr_expect_str_eq(err, want, "once, and nothing else");
    snprintf(want, sizeof want, "OPENBLAS_CORETYPE: %s (set by bome, which ran itself again)", pick);
    cr_expect(strstr(out, want), "%s", out);
    if (can_switch()) {
        snprintf(want, sizeof want, "kernel:            %s\n", pick);
        cr_expect(strstr(out, want), "the second process runs %s: %s", pick, out);
    }
    /* the arguments reach the second process unchanged */
    cr_assert_eq(bome("BOME_TEST_FAKE_CORENAME=Prescott", "run coreset --steps 7 --json"), 0, "%s%s", out, err);
    cr_expect(strstr(out, "\"steps\": 7"), "%s", out);
    cr_expect_eq(count(err, "running again"), 1, "%s", err);
    /* and errors are the second process's */
    cr_expect_eq(bome("BOME_TEST_FAKE_CORENAME=Prescott", "run coreset --bogus"), 2);
    cr_expect(strstr(err, "unknown option '--bogus'"), "%s", err);
}

Test(blas_cli, no_reexec_for_a_fitting_kernel)
{
    cr_assert_eq(bome("BOME_TEST_FAKE_CORENAME=Haswell", "blas"), 0, "%s%s", out, err);
    cr_expect_str_eq(err, "");
    cr_expect_not(strstr(out, "set by bome"), "%s", out);
    cr_assert_eq(bome("BOME_TEST_FAKE_CORENAME=SkylakeX", "list"), 0, "%s%s", out, err);
    cr_expect_str_eq(err, "");
}

/* The marker stops a second round even when the check still asks for one. */
Test(blas_cli, the_marker_stops_a_loop)
{
    bome_blas_info b;
    bome_blas_info_get(&b);
    char env[128];
    snprintf(env, sizeof env, "BOME_TEST_FAKE_CORENAME=Prescott BOME_BLAS_REEXEC=%s", b.openblas ? b.corename : "Haswell");
    cr_assert_eq(bome(env, "blas"), 0, "%s%s", out, err);
    cr_expect_str_eq(err, "");
    cr_expect(strstr(out, "(set by bome, which ran itself again)"), "%s", out);
}

/* Told it set a kernel OpenBLAS does not run, the second process says so. */
Test(blas_cli, a_setting_that_did_not_take)
{
    bome_blas_info b;
    bome_blas_info_get(&b);
    if (!b.openblas || !strcasecmp(b.corename, "Nehalem"))
        return;
    cr_assert_eq(bome("BOME_BLAS_REEXEC=Nehalem", "list"), 0, "%s%s", out, err);
    char want[160];
    snprintf(want, sizeof want, "bome: OPENBLAS_CORETYPE=Nehalem did not take: OpenBLAS runs its %s kernel\n", b.corename);
    cr_expect_str_eq(err, want);
}
