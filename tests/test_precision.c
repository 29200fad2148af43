/*
 * The two precisions: the library a test links says the precision its
 * header says; `bome --precision` hands a run to the program of the other
 * precision and back; a bad or missing choice is an error with a message;
 * and the same toy run in both precisions agrees to float32's rounding.
 * Built and run once per precision, as every suite is.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bome/ad.h"
#include "run_exe.h"

static char out[1 << 16];

/* Runs exe with args, stdout and stderr into out; the exit status. */
static int run(const char *exe, const char *args)
{
    return run_exe(exe, args, out, sizeof out);
}

static const char *exe(const char *var)
{
    const char *e = getenv(var);
    cr_assert(e, "%s is not set (meson sets it)", var);
    return e;
}

static double json_number(const char *key)
{
    char k[128];
    snprintf(k, sizeof k, "\"%s\": ", key);
    const char *at = strstr(out, k);
    return at ? atof(at + strlen(k)) : NAN;
}

Test(precision, header_and_library_agree)
{
    cr_expect(BOME_PRECISION_CHECK());
    cr_expect_eq(bome_real_bits(), (int)(8 * sizeof(bome_real)));
    cr_expect_eq(BOME_REAL_EPSILON, BOME_REAL_BITS == 32 ? 0x1p-23 : 0x1p-52);
    /* one ulp above 1 is 1 + eps in the library's own arithmetic */
    bome_graph *g = bome_graph_new();
    bome_real one = 1, e = (bome_real)BOME_REAL_EPSILON;
    bome_node *a = bome_const(g, BOME_SCALAR, &one), *b = bome_const(g, BOME_SCALAR, &e);
    bome_node *s = bome_add(g, a, b), *h = bome_add(g, a, bome_scale(g, b, 0.5));
    bome_node *outs[2] = {s, h};
    cr_assert_eq(bome_eval(g, 2, outs), BOME_OK);
    cr_expect(bome_value(s) > 1 && bome_value(h) == 1, "1 + eps = %.17g, 1 + eps/2 = %.17g", bome_value(s),
              bome_value(h));
    bome_graph_free(g);
}

/* The program of either precision runs the precision asked for, and says so. */
Test(precision, each_program_runs_either_precision)
{
    const char *progs[2] = {exe("BOME_EXE"), exe("BOME_EXE_OTHER")};
    for (int p = 0; p < 2; p++)
        for (int bits = 32; bits <= 64; bits += 32) {
            char args[128];
            snprintf(args, sizeof args, "run ridge --steps 3 --json --precision float%d", bits);
            cr_assert_eq(run(progs[p], args), 0, "%s %s: %s", progs[p], args, out);
            char want[64];
            snprintf(want, sizeof want, "\"precision\": \"float%d\"", bits);
            cr_expect(strstr(out, want), "%s %s: %s", progs[p], args, out);
        }
    cr_assert_eq(run(progs[0], "run ridge --steps 3 --precision=float32"), 0, "%s", out);
    cr_expect(strstr(out, "in float32"), "%s", out);
}

Test(precision, bad_choices_are_errors)
{
    const char *b = exe("BOME_EXE");
    cr_expect_eq(run(b, "run ridge --precision float16"), 2);
    cr_expect(strstr(out, "--precision takes float32 or float64, not 'float16'"), "%s", out);
    cr_expect_eq(run(b, "run ridge --precision"), 2);
    cr_expect(strstr(out, "not ''"), "%s", out);
    cr_expect_eq(run(b, "run ridge --precision float32 --precision float64"), 2);
    cr_expect(strstr(out, "given twice"), "%s", out);
}

/* A program installed without its sibling cannot hand the run over: it
 * says which program is missing and exits 2, instead of running in the
 * wrong precision. */
Test(precision, missing_sibling_is_an_error)
{
    char dir[] = "/tmp/bome-prec-XXXXXX";
    cr_assert(mkdtemp(dir));
    char copy[256], cmd[1024];
    snprintf(copy, sizeof copy, "%s/bome-alone", dir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", exe("BOME_EXE"), copy);
    cr_assert_eq(system(cmd), 0);
    const char *other = BOME_REAL_BITS == 64 ? "float32" : "float64";
    char args[128];
    snprintf(args, sizeof args, "run ridge --steps 3 --precision %s", other);
    cr_expect_eq(run(copy, args), 2, "%s", out);
    cr_expect(strstr(out, BOME_REAL_BITS == 64 ? "runs bome-f32, which is not beside this program"
                                                : "runs bome, which is not beside this program"),
              "%s", out);
    unlink(copy);
    rmdir(dir);
}

/* The ridge toy's first 50 BOME steps in float32 follow float64's, to
 * float32's share of the digits (tests/prec.h). Later, with lambda near 20,
 * each step amplifies the difference: measured, 2.6e-7 relative in f after
 * 50 steps, 2.4e-4 after 200, where both runs still approach the answer. */
Test(precision, ridge_agrees_across_precisions)
{
    const char *b = exe("BOME_EXE");
    cr_assert_eq(run(b, "run ridge --steps 50 --json --precision float64"), 0, "%s", out);
    double f64 = json_number("f"), v64 = json_number("kkt");
    cr_assert_eq(run(b, "run ridge --steps 50 --json --precision float32"), 0, "%s", out);
    double f32 = json_number("f"), v32 = json_number("kkt");
    cr_assert(isfinite(f64) && isfinite(f32));
    /* what TOL(1e-9) is in the float32 build, whichever build runs this */
    double tol = pow(1e-9, log(0x1p-23) / log(0x1p-52));
    cr_expect(fabs(f32 - f64) <= tol * fmax(1, fabs(f64)), "f: float32 %.9g, float64 %.9g", f32, f64);
    cr_expect(fabs(v32 - v64) <= tol * fmax(1, fabs(v64)), "kkt: float32 %.9g, float64 %.9g", v32, v64);
}

/* A checkpoint records its precision: the other precision refuses it with
 * a message that says so, instead of reading a double's bytes as floats. */
Test(precision, checkpoint_of_the_other_precision_is_refused)
{
    char dir[] = "/tmp/bome-prec-ck-XXXXXX";
    cr_assert(mkdtemp(dir));
    const char *b = exe("BOME_EXE");
    const char *mine = BOME_REAL_BITS == 64 ? "float64" : "float32", *other = BOME_REAL_BITS == 64 ? "float32" : "float64";
    char args[512], ck[256];
    snprintf(ck, sizeof ck, "%s/ck", dir);
    snprintf(args, sizeof args, "run ridge --steps 5 --checkpoint %s --checkpoint-every 5 --precision %s", ck, mine);
    cr_assert_eq(run(b, args), 0, "%s", out);
    snprintf(args, sizeof args, "run ridge --steps 10 --resume %s --precision %s", ck, other);
    cr_expect_neq(run(b, args), 0, "%s", out);
    cr_expect(strstr(out, "float64") && strstr(out, "float32") && strstr(out, "precision"), "%s", out);
    snprintf(args, sizeof args, "run ridge --steps 10 --resume %s --precision %s", ck, mine);
    cr_expect_eq(run(b, args), 0, "the same precision resumes: %s", out);
    unlink(ck);
    rmdir(dir);
}
