/* The `bome` program as a user runs it: commands, help, errors, JSON, CSV,
 * and hyper-cleaning end to end on a small synthetic IDX data set. */
#include <criterion/criterion.h>

#include "prec.h"
#include "run_exe.h"

#include "bome/opt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static char out[1 << 16];

/* Runs the bome executable with args (a shell fragment); captures stdout
 * and stderr together into out; returns the exit status. */
static int bome(const char *args)
{
    const char *exe = getenv("BOME_EXE");
    cr_assert(exe, "BOME_EXE is not set (meson sets it)");
    return run_exe(exe, args, out, sizeof out);
}

Test(cli, help_and_list)
{
    cr_expect_eq(bome("--help"), 0);
    cr_expect(strstr(out, "usage: bome"));
    cr_expect_eq(bome("run --help"), 0);
    cr_expect(strstr(out, "--steps") && strstr(out, "--phi") && strstr(out, "--csv"));
    cr_expect_eq(bome("run coreset --help"), 0);
    /* the settings' help comes from the library's table, with the problem's defaults */
    cr_expect(strstr(out, "--lambda-eps X") && strstr(out, "(default 0.0001)"), "%s", out);
    cr_expect(strstr(out, "settings of --method aid-cg only:") && strstr(out, "--cg-steps N"), "%s", out);
    cr_expect_eq(bome("methods"), 0);
    for (int m = 0; m < bome_method_count(); m++)
        cr_expect(strstr(out, bome_method_name(m)), "bome methods lacks %s: %s", bome_method_name(m), out);
    cr_expect_eq(bome("list"), 0);
    cr_expect(strstr(out, "coreset") && strstr(out, "hyperclean") && strstr(out, "ridge"));
    cr_expect_eq(bome(""), 2);
    cr_expect_eq(bome("--version"), 0);
    cr_expect(!strcmp(out, "bome " BOME_VERSION_STRING " (" BOME_PRECISION_NAME ")\n"), "%s", out);
    /* a problem's own flags in its help, from its case's table */
    cr_expect_eq(bome("run hyperclean --help"), 0);
    cr_expect(strstr(out, "hyperclean only:") && strstr(out, "--warm-steps N") && strstr(out, "--save-v FILE") &&
                  strstr(out, "(default 50000,5000,5000,25000)"),
              "%s", out);
    cr_expect_eq(bome("run sinusoid --help"), 0);
    cr_expect(strstr(out, "sinusoid only:") && strstr(out, "--hidden X") && !strstr(out, "--save-v"), "%s", out);
}

Test(cli, errors_are_messages_and_codes)
{
    cr_expect_eq(bome("frobnicate"), 2);
    cr_expect(strstr(out, "unknown command"));
    cr_expect_eq(bome("run nosuch"), 2);
    cr_expect(strstr(out, "no problem named 'nosuch'"));
    cr_expect_eq(bome("run coreset --bogus"), 2);
    cr_expect(strstr(out, "unknown option '--bogus'"));
    cr_expect_eq(bome("run coreset --steps many"), 2);
    cr_expect(strstr(out, "--steps many"));
    cr_expect_eq(bome("run coreset --phi sometimes"), 2);
    cr_expect_eq(bome("run coreset --method sgd"), 2);
    cr_expect(strstr(out, "--method sgd: no such method; `bome methods` lists them"), "%s", out);
    cr_expect_eq(bome("run coreset --T 0"), 2);
    cr_expect(strstr(out, "--T 0: expected a whole number in [1, 1e+06]"), "%s", out);
    cr_expect_eq(bome("run coreset --T 2.5"), 2);
    cr_expect_eq(bome("run coreset --phi sometimes"), 2);
    cr_expect(strstr(out, "--phi sometimes: expected grad|value"), "%s", out);
    /* a method's own setting with another method is an error, not ignored */
    cr_expect_eq(bome("run coreset --cg-steps 3"), 2);
    cr_expect(strstr(out, "--cg-steps is a setting of --method aid-cg; this run uses bome"), "%s", out);
    cr_expect_eq(bome("run coreset --method aid-cg --cg-steps 0"), 2);
    cr_expect_eq(bome("run coreset --start 7"), 2);
    cr_expect_eq(bome("run coreset --threads 0"), 2);
    cr_expect(strstr(out, "--threads 0"), "%s", out);
    cr_expect_eq(bome("run coreset --threads 65"), 2);
    cr_expect_eq(bome("run coreset --csv /nonexistent-dir/x.csv"), 1);
    cr_expect(strstr(out, "cannot write"));
    cr_expect_eq(bome("run hyperclean --data-dir /nonexistent-dir --out-dir /tmp"), 1);
    cr_expect(strstr(out, "/nonexistent-dir/train-images"), "%s", out);
}

Test(cli, json_summary_of_a_toy)
{
    cr_assert_eq(bome("run nonsingleton --json"), 0, "%s", out);
    cr_expect(strncmp(out, "{\"problem\": \"nonsingleton\"", 26) == 0, "%s", out);
    cr_expect(strstr(out, "\"status\": \"ok\""));
    cr_expect(strstr(out, "\"steps\": 2000"));
    const char *d = strstr(out, "\"distance_to_answer\": ");
    cr_assert(d);
    cr_expect_lt(atof(d + strlen("\"distance_to_answer\": ")), 1e-3);
    cr_expect(strstr(out, "\"variables\": {\"x\": ["));
}

Test(cli, itd_method)
{
    cr_assert_eq(bome("run nonsingleton --method itd --json"), 0, "%s", out);
    cr_expect(strstr(out, "\"method\": \"itd\""), "%s", out);
    cr_expect(strstr(out, "\"lambda\": 0"), "%s", out);
    cr_assert_eq(bome("run coreset --method bsg-1 --steps 50 --json"), 0, "%s", out);
    cr_expect(strstr(out, "\"method\": \"bsg-1\""), "%s", out);
    cr_assert_eq(bome("run ridge --method aid-cg --cg-steps 5 --json"), 0, "%s", out);
    cr_expect(strstr(out, "\"method\": \"aid-cg\""), "%s", out);
    /* a run that fails (singular H on the non-singleton toy) says so */
    cr_expect_eq(bome("run nonsingleton --method aid-cg"), 1);
    cr_expect(strstr(out, "non-finite"), "%s", out);
}

Test(cli, inner_momentum_flags_reach_the_solver)
{
    cr_assert_eq(bome("run coreset --steps 20 --inner-momentum 0.5 --inner-momentum-keep 1 --json"), 0, "%s", out);
    cr_expect(strstr(out, "\"inner_momentum\": 0.5"), "%s", out);
    cr_expect(strstr(out, "\"inner_momentum_keep\": 1"), "%s", out);
    cr_expect_eq(bome("run coreset --inner-momentum 0.5 --inner-momentum-keep 2"), 2);
    cr_expect(strstr(out, "--inner-momentum-keep 2: expected a whole number in [0, 1]"), "%s", out);
}

Test(cli, csv_has_a_row_per_step)
{
    char path[] = "/tmp/bome-cli-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    char args[256];
    snprintf(args, sizeof args, "run minimax --steps 37 --csv %s --quiet", path);
    cr_assert_eq(bome(args), 0, "%s", out);
    FILE *f = fopen(path, "r");
    cr_assert(f);
    char line[512];
    int rows = 0;
    cr_assert(fgets(line, sizeof line, f));
    cr_expect(strncmp(line, "step,f,g,q,lambda", 17) == 0);
    while (fgets(line, sizeof line, f))
        rows++;
    fclose(f);
    remove(path);
    cr_expect_eq(rows, 37);
}

Test(cli, dot_export_of_the_bome_graph)
{
    char path[] = "/tmp/bome-dot-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    char args[256];
    snprintf(args, sizeof args, "run coreset --steps 1 --quiet --dot %s", path);
    cr_assert_eq(bome(args), 0, "%s", out);
    FILE *f = fopen(path, "r");
    cr_assert(f);
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    fclose(f);
    remove(path);
    cr_expect(strncmp(out, "digraph", 7) == 0);
    cr_expect(strstr(out, "stop_gradient"), "q-hat's stop-gradient node is in the graph");
    cr_expect(strstr(out, "softmax") && strstr(out, "'w'") && strstr(out, "'x_T'"));
}

/* --dot is an output like the others: a path that cannot be opened fails
 * the run before it starts, a write that fails (/dev/full: the old code
 * checked before flushing) fails it after; either way exit 1 and no CSV. */
Test(cli, dot_errors_exit_non_zero_and_leave_nothing)
{
    char dir[] = "/tmp/bome-dote-XXXXXX", args[512], csv[128];
    cr_assert(mkdtemp(dir));
    snprintf(csv, sizeof csv, "%s/log.csv", dir);
    snprintf(args, sizeof args, "run coreset --steps 3 --quiet --csv %s --dot %s/no-such-dir/g.dot", csv, dir);
    cr_expect_eq(bome(args), 1, "%s", out);
    cr_expect(strstr(out, "--dot: cannot write") && strstr(out, "no-such-dir/g.dot"), "%s", out);
    cr_expect_neq(access(csv, F_OK), 0, "the CSV was left behind");
    snprintf(args, sizeof args, "run coreset --steps 3 --quiet --csv %s --dot /dev/full", csv);
    cr_expect_eq(bome(args), 1, "%s", out);
    cr_expect(strstr(out, "--dot: writing /dev/full failed"), "%s", out);
    cr_expect_neq(access(csv, F_OK), 0, "the CSV was left behind");
    cr_expect_eq(access("/dev/full", F_OK), 0, "/dev/full was removed");
    rmdir(dir);
}

/* Two outputs naming one file are refused before anything is written, the
 * file left as it was: the same path, the same file by another path (./,
 * .., a hard link), the default CSV of an experiment, the file resumed. */
Test(cli, outputs_naming_one_file_are_refused)
{
    char dir[] = "/tmp/bome-same-XXXXXX", args[1024], script[2048];
    cr_assert(mkdtemp(dir));
    const char *cases[][2] = {
        {"run coreset --steps 3 --csv %s/x --dot %s/x", "--csv and --dot name the same file"},
        {"run coreset --steps 3 --csv %s/x --dot %s/./sub/../x", "--csv and --dot"},
        {"run coreset --steps 3 --csv %s/x --checkpoint %s/link", "--csv and --checkpoint"},
        {"run coreset --steps 3 --csv %s/x --resume %s/x", "--csv and --resume"},
        {"run hyperclean --csv %s/x --save-v %s/x", "--csv and --save-v"},
        {"run hyperclean --out-dir %s --save-v %s/hyperclean.csv", "--csv and --save-v"},
        {"run hyperclean --data-dir /nonexistent --out-dir %s --no-plot --csv %s/o.csv --dot %s/hyperclean.png", NULL},
        {"run hyperclean --out-dir %s --csv %s/o.csv --dot %s/hyperclean.png", "--dot and the plot"},
    };
    snprintf(script, sizeof script, "mkdir %s/sub && echo kept > %s/x && ln %s/x %s/link && echo kept > %s/hyperclean.csv",
             dir, dir, dir, dir, dir);
    cr_assert_eq(system(script), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(args, sizeof args, cases[i][0], dir, dir, dir);
        int rc = bome(args);
        if (!cases[i][1]) { /* no plot: the name is free (the run fails on the missing data) */
            cr_expect(rc != 2 && !strstr(out, "same file"), "%s: %s", args, out);
            continue;
        }
        cr_expect_eq(rc, 2, "%s: %s", args, out);
        cr_expect(strstr(out, cases[i][1]) && strstr(out, "same file"), "%s: %s", args, out);
    }
    snprintf(script, sizeof script, "cd %s && cat x hyperclean.csv | tr -d '\n'; ls | tr '\n' ' '", dir);
    FILE *p = popen(script, "r");
    cr_assert(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    pclose(p);
    cr_expect_str_eq(out, "keptkepthyperclean.csv link sub x ", "files were written or changed");
    snprintf(script, sizeof script, "rm -rf %s", dir);
    cr_expect_eq(system(script), 0);
}

/* ---- hyper-cleaning on a small synthetic IDX set ------------------------------ */

static void put_be32(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8),
    p[3] = (unsigned char)v;
}

/* Images whose class shows in their pixels, so a classifier can learn;
 * shift moves every label (and the pixels that show it): another data set
 * of the same shapes. */
static void write_set_shifted(const char *dir, const char *prefix, int n, int side, int shift)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    gzFile f = gzopen(path, "wb");
    cr_assert(f);
    unsigned char h[16];
    put_be32(h, 0x803), put_be32(h + 4, (unsigned)n), put_be32(h + 8, (unsigned)side), put_be32(h + 12, (unsigned)side);
    gzwrite(f, h, 16);
    for (int i = 0; i < n; i++)
        for (int p = 0; p < side * side; p++) {
            unsigned char px = (unsigned char)((p % 10 == (i + shift) % 10 ? 200 : 20) + (i * 7 + p * 13) % 40);
            gzwrite(f, &px, 1);
        }
    gzclose(f);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    f = gzopen(path, "wb");
    cr_assert(f);
    put_be32(h, 0x801), put_be32(h + 4, (unsigned)n);
    gzwrite(f, h, 8);
    for (int i = 0; i < n; i++) {
        unsigned char y = (unsigned char)((i + shift) % 10);
        gzwrite(f, &y, 1);
    }
    gzclose(f);
}

static void write_set(const char *dir, const char *prefix, int n, int side)
{
    write_set_shifted(dir, prefix, n, side, 0);
}

/* A temporary directory holding a small synthetic IDX data set: 600 training
 * and 200 test images of 8 x 8 pixels. dir is a mkdtemp template. */
static void synthetic_idx_dir(char *dir)
{
    cr_assert(mkdtemp(dir));
    write_set(dir, "train", 600, 8);
    write_set(dir, "t10k", 200, 8);
}

Test(cli, hyperclean_end_to_end, .timeout = 120)
{
    char dir[] = "/tmp/bome-hc-XXXXXX";
    synthetic_idx_dir(dir);
    char args[1024];
    snprintf(args, sizeof args,
             "run hyperclean --data-dir %s --out-dir %s/out --sizes 400,100,100,200 --warm-steps 20 --steps 6 "
             "--eval-every 2 --no-plot --json --threads 1",
             dir, dir);
    cr_assert_eq(bome(args), 0, "%s", out);
    const char *json = strstr(out, "{\"problem\": \"hyperclean\"");
    cr_assert(json, "%s", out);
    cr_expect(strstr(json, "\"steps\": 6"));
    const char *acc = strstr(json, "\"test_accuracy\": ");
    cr_assert(acc);
    double a = atof(acc + strlen("\"test_accuracy\": "));
    cr_expect(a > 0.3 && a <= 1.0, "test accuracy %g", a);
    cr_expect(strstr(json, "\"f1\": "));
    /* the released grid's settings for BOME: a plain inner loop, v step 100 */
    cr_expect(strstr(json, "\"inner_momentum\": 0, \"inner_momentum_keep\": 0"), "%s", json);
    cr_expect(strstr(json, "\"lr_outer\": 100,"), "%s", json);
    const char *best = strstr(json, "\"best_held_out_step\": ");
    cr_assert(best, "%s", json);
    long k = atol(best + strlen("\"best_held_out_step\": "));
    cr_expect(k == 2 || k == 4 || k == 6, "best held-out step %ld is not a logged step", k);

    char csv[600];
    snprintf(csv, sizeof csv, "%s/out/hyperclean.csv", dir);
    FILE *f = fopen(csv, "r");
    cr_assert(f);
    char line[1024];
    int rows = 0;
    cr_assert(fgets(line, sizeof line, f));
    cr_expect(strstr(line, "test_acc") && strstr(line, "f1") && strstr(line, "lambda"));
    while (fgets(line, sizeof line, f))
        rows++;
    fclose(f);
    cr_expect_eq(rows, 4, "rows for steps 0, 2, 4, 6"); /* step 0 is the warm start */

    /* A second run finds the warm start in the cache and says so. */
    snprintf(args, sizeof args,
             "run hyperclean --data-dir %s --out-dir %s/out --sizes 400,100,100,200 --warm-steps 20 --steps 2 "
             "--eval-every 1 --no-plot --threads 1",
             dir, dir);
    cr_assert_eq(bome(args), 0, "%s", out);
    cr_expect(strstr(out, "loaded from cache"), "%s", out);
    cr_expect(strstr(out, "oracle"));
    cr_expect(strstr(out, "precision"));

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}

/* The warm-start cache answers only for its own experiment: another data
 * set of the same shapes, or another corrupted-label count, in the same
 * --out-dir trains anew; a damaged cache is refused in one line and
 * replaced; the same run again loads it. */
Test(cli, cache_is_keyed_by_data_and_sizes, .timeout = 180)
{
    char dir[] = "/tmp/bome-hcc-XXXXXX", other[700], args[2048];
    synthetic_idx_dir(dir);
    snprintf(other, sizeof other, "%s/other", dir);
    cr_assert_eq(mkdir(other, 0777), 0);
    write_set_shifted(other, "train", 600, 8, 3);
    write_set_shifted(other, "t10k", 200, 8, 3);
    const char *run = "run hyperclean --out-dir %s/out --data-dir %s --sizes 400,100,100,%s --warm-steps 20 --steps 1 "
                      "--eval-every 1 --no-plot --threads 1";
    snprintf(args, sizeof args, run, dir, dir, "200");
    cr_assert_eq(bome(args), 0, "%s", out);
    cr_expect(!strstr(out, "loaded from cache") && strstr(out, "cached"), "%s", out);
    snprintf(args, sizeof args, run, dir, other, "200");
    cr_assert_eq(bome(args), 0, "%s", out);
    cr_expect(!strstr(out, "loaded from cache"), "another data set got the first one's models: %s", out);
    snprintf(args, sizeof args, run, dir, dir, "0");
    cr_assert_eq(bome(args), 0, "%s", out);
    /* the comparisons that never see the corrupted labels are the same fits */
    cr_expect(strstr(out, "warm start (noisy train + validation): trained"),
              "--sizes ...,0 got the corrupted run's warm start: %s", out);
    cr_expect(strstr(out, "comparison: validation only: loaded from cache"), "%s", out);
    snprintf(args, sizeof args, run, dir, dir, "200");
    cr_assert_eq(bome(args), 0, "%s", out);
    cr_expect(strstr(out, "warm start (noisy train + validation): loaded from cache"), "%s", out);
    /* damage every cache file in the middle of its parameters */
    char script[1024];
    snprintf(script, sizeof script,
             "for f in %s/out/cache/*.bin; do printf 'zzzzzzzz' | dd of=$f bs=1 seek=300 conv=notrunc 2>/dev/null; done",
             dir);
    cr_assert_eq(system(script), 0);
    snprintf(args, sizeof args, run, dir, dir, "200");
    cr_assert_eq(bome(args), 0, "%s", out);
    cr_expect(strstr(out, "rejected: checksum mismatch") && strstr(out, "training anew"), "%s", out);
    cr_expect(!strstr(out, "loaded from cache"), "%s", out);
    cr_assert_eq(bome(args), 0, "%s", out);
    cr_expect(strstr(out, "warm start (noisy train + validation): loaded from cache"), "not rewritten: %s", out);
    snprintf(script, sizeof script, "rm -rf %s", dir);
    cr_expect_eq(system(script), 0);
}

/* --save-v: a row per training example, traceable to its image in the IDX
 * file: the synthetic set's label is its index mod 10, so "clean" must say
 * exactly whether the row's label is index % 10. */
Test(cli, hyperclean_save_v, .timeout = 120)
{
    char dir[] = "/tmp/bome-hcv-XXXXXX";
    synthetic_idx_dir(dir);
    char args[1024];
    snprintf(args, sizeof args,
             "run hyperclean --data-dir %s --out-dir %s/out --sizes 400,100,100,200 --warm-steps 10 --steps 20 "
             "--eval-every 5 --no-plot --threads 1 --json --save-v %s/v.csv",
             dir, dir, dir);
    cr_assert_eq(bome(args), 0, "%s", out);
    char path[600], key[700];
    snprintf(path, sizeof path, "%s/v.csv", dir);
    snprintf(key, sizeof key, "\"v_file\": \"%s\"", path);
    cr_expect(strstr(out, key), "the JSON names the file: %s", out);
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s was not written", path);
    char line[256];
    cr_assert(fgets(line, sizeof line, f));
    cr_expect_str_eq(line, "index,v,label,clean\n");
    static unsigned char seen[600];
    memset(seen, 0, sizeof seen);
    int rows = 0, clean_rows = 0, moved = 0;
    while (fgets(line, sizeof line, f)) {
        int index, label, clean;
        double v;
        cr_assert_eq(sscanf(line, "%d,%lf,%d,%d", &index, &v, &label, &clean), 4, "row '%s'", line);
        cr_assert(index >= 0 && index < 600, "index %d", index);
        cr_expect(!seen[index], "image %d appears twice", index);
        seen[index] = 1;
        cr_expect(v >= 0.0 && v <= 1.0, "v %g outside [0, 1]", v);
        cr_expect(label >= 0 && label < 10);
        cr_expect_eq(clean, label == index % 10, "row '%s': clean disagrees with the original label", line);
        clean_rows += clean;
        moved += v != 0.5;
        rows++;
    }
    fclose(f);
    cr_expect_eq(rows, 400);
    cr_expect(clean_rows >= 200 && clean_rows < 400, "%d clean rows: 200 labels were redrawn", clean_rows);
    /* lambda is 0 for the first steps here (f and q agree), then v moves */
    cr_expect(moved > 0, "20 BOME steps left every weight at its start");

    /* A path that cannot be written fails before any training, naming it. */
    snprintf(args, sizeof args,
             "run hyperclean --data-dir %s --out-dir %s/out --sizes 400,100,100,200 --warm-steps 10 --steps 3 "
             "--no-plot --threads 1 --save-v %s/no-such-dir/v.csv",
             dir, dir, dir);
    cr_expect_eq(bome(args), 1, "%s", out);
    cr_expect(strstr(out, "--save-v: cannot write") && strstr(out, "no-such-dir/v.csv"), "%s", out);
    cr_expect(!strstr(out, "warm start"), "it trained before failing: %s", out);

    /* A run that fails after opening the file leaves no empty file behind. */
    snprintf(args, sizeof args, "run hyperclean --data-dir %s/no-data --out-dir %s/out --no-plot --save-v %s/v2.csv",
             dir, dir, dir);
    cr_expect_eq(bome(args), 1, "%s", out);
    snprintf(path, sizeof path, "%s/v2.csv", dir);
    cr_expect_neq(access(path, F_OK), 0, "%s was left behind", path);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}

/* ---- Checkpoints: kill -9 mid-run, resume, and the run is the uninterrupted one ---- */

/* Runs a shell script with $B set to the bome executable; returns its exit status. */
static int sh(const char *script)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "B='%s'; %s", getenv("BOME_EXE"), script);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Every column but the wall time (column 9) of the CSV, for comparison. */
static char *csv_without_seconds(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "cut -d, -f1-8,10- %s", path);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    static char buf[2][1 << 18];
    static int which;
    char *b = buf[which ^= 1];
    size_t n = fread(b, 1, sizeof buf[0] - 1, p);
    b[n] = '\0';
    pclose(p);
    return b;
}

/* A number from the JSON in out, NAN when the key is missing or null. */
static double json_number(const char *key)
{
    char k[128];
    snprintf(k, sizeof k, "\"%s\": ", key);
    const char *at = strstr(out, k);
    if (!at || !strncmp(at + strlen(k), "null", 4))
        return NAN;
    return atof(at + strlen(k));
}

/* Learnable regularization end to end on the synthetic set: the comparison
 * points are there and finite, v moves, and every file is written. (eta 100:
 * on these easy images the paper's 1e-4 leaves lambda, and so v, at 0.) */
Test(cli, l2reg_end_to_end, .timeout = 180)
{
    char dir[] = "/tmp/bome-l2-XXXXXX";
    synthetic_idx_dir(dir);
    char args[1024];
    snprintf(args, sizeof args,
             "run l2reg --data-dir %s --out-dir %s/out --sizes 300,100,100,0 --fit-steps 30 --steps 30 "
             "--eval-every 10 --threads 1 --json --eta 100 --save-v %s/v.csv",
             dir, dir, dir);
    cr_assert_eq(bome(args), 0, "%s", out);
    cr_assert(strstr(out, "{\"problem\": \"l2reg\""), "%s", out);
    cr_expect(strstr(out, "\"steps\": 30"), "%s", out);
    static const char *const keys[] = {"test_accuracy", "test_loss", "no_reg_test_accuracy", "no_reg_test_loss",
                                       "scalar_test_accuracy", "scalar_test_loss", "scalar_val_loss",
                                       "refit_test_accuracy", "refit_test_loss", "scalar_weight"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        double x = json_number(keys[i]);
        cr_expect(isfinite(x), "%s is %g: %s", keys[i], x, out);
    }
    cr_expect(json_number("scalar_test_accuracy") > 0.3, "%s", out);
    cr_expect(json_number("v_sd") > 0, "v did not move: %s", out);

    char path[700];
    snprintf(path, sizeof path, "%s/out/l2reg.csv", dir);
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s was not written", path);
    char line[1024];
    int rows = 0;
    cr_assert(fgets(line, sizeof line, f));
    cr_expect(strstr(line, "test_acc") && strstr(line, "val_loss") && strstr(line, "v_sd"), "%s", line);
    while (fgets(line, sizeof line, f))
        rows++;
    fclose(f);
    cr_expect_eq(rows, 4, "rows for steps 0, 10, 20, 30");

    /* a row per pixel of the 8 x 8 images, v and exp(v) consistent */
    snprintf(path, sizeof path, "%s/v.csv", dir);
    f = fopen(path, "r");
    cr_assert(f, "%s was not written", path);
    cr_assert(fgets(line, sizeof line, f));
    cr_expect_str_eq(line, "pixel,row,col,v,exp_v\n");
    int pixels = 0, moved = 0;
    for (int px, r, c; fgets(line, sizeof line, f); pixels++) {
        double v, w;
        cr_assert_eq(sscanf(line, "%d,%d,%d,%lf,%lf", &px, &r, &c, &v, &w), 5, "%s", line);
        cr_expect(px == pixels && r == px / 8 && c == px % 8, "%s", line);
        cr_expect(fabs(w - exp(v)) <= TOL(1e-12) * w, "%s", line);
        moved += v != 0;
    }
    fclose(f);
    cr_expect_eq(pixels, 64);
    cr_expect_gt(moved, 0);
    if (system("command -v gnuplot >/dev/null 2>&1") == 0) {
        static const char *const pngs[] = {"l2reg.png", "l2reg-v.png"};
        for (int i = 0; i < 2; i++) {
            struct stat st;
            snprintf(path, sizeof path, "%s/out/%s", dir, pngs[i]);
            cr_expect(stat(path, &st) == 0 && st.st_size > 0, "%s was not drawn", path);
        }
    }
    /* hyper-cleaning's flags are not l2reg's */
    cr_expect_eq(bome("run l2reg --model mlp"), 2);
    cr_expect(strstr(out, "--model is not a setting of l2reg"), "%s", out);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}

/* An experiment through the same loop: stopped after a checkpoint and
 * resumed, its CSV (a row per logged step) and its best held-out step are
 * those of the run that was never stopped. */
Test(cli, hyperclean_checkpoint_and_resume, .timeout = 120)
{
    char dir[] = "/tmp/bome-hck-XXXXXX", script[4096];
    synthetic_idx_dir(dir);
    const char *run = "$B run hyperclean --data-dir . --out-dir o --sizes 400,100,100,200 --warm-steps 20 "
                      "--eval-every 2 --no-plot --threads 1 --quiet";
    snprintf(script, sizeof script,
             "cd %s && %s --steps 12 --csv full.csv --json > full.json && "
             "%s --steps 7 --csv part.csv --checkpoint ck --checkpoint-every 3 > /dev/null && "
             "%s --steps 12 --csv part.csv --checkpoint ck --resume ck --json > part.json && "
             "cut -d, -f1-10 full.csv > a && cut -d, -f1-10 part.csv > b && cmp a b && wc -l < a && "
             "grep -o '\"best_held_out_step\": [0-9]*' full.json part.json | cut -d: -f3 | uniq | wc -l",
             dir, run, run, run);
    cr_assert_eq(sh(script), 0, "%s", out);
    long rows, distinct;
    cr_assert_eq(sscanf(out, "%ld %ld", &rows, &distinct), 2, "%s", out);
    cr_expect_eq(rows, 8, "header and steps 0, 2, ..., 12");
    cr_expect_eq(distinct, 1, "the best held-out steps differ");
    snprintf(script, sizeof script, "rm -rf %s", dir);
    sh(script);
}

Test(cli, kill_9_and_resume_is_bit_for_bit, .timeout = 300)
{
    char dir[] = "/tmp/bome-ckpt-XXXXXX", script[4096];
    cr_assert(mkdtemp(dir));
    const char *run = "$B run sinusoid --method ufo-blo --hidden 10 --batch 5 --eval-tasks 20 --eval-every 40 "
                      "--steps 4000 --seed 3 --quiet";
    snprintf(script, sizeof script, "cd %s && %s --csv full.csv --json > full.json", dir, run);
    cr_assert_eq(sh(script), 0, "%s", out);
    /* kill -9 once a checkpoint exists and the CSV has reached a random row
     * (a random step, whatever the machine's speed: a random wait of up to
     * 0.3 s outlasted the whole run on an idle machine), in the first third
     * of the run, so that the shell's polling cannot miss the end */
    srand((unsigned)time(NULL));
    snprintf(script, sizeof script,
             "cd %s && (%s --csv part.csv --checkpoint ck --checkpoint-every 25 > /dev/null 2>&1 & echo $! > pid; "
             "wait) & sleep 0.05; while [ ! -s %s/ck ]; do sleep 0.01; done; "
             "while [ $(wc -l < %s/part.csv) -lt %d ] && kill -0 $(cat %s/pid) 2>/dev/null; do sleep 0.002; done; "
             "kill -9 $(cat %s/pid) 2>/dev/null && echo killed; wait",
             dir, run, dir, dir, 50 + rand() % 1250, dir, dir);
    cr_assert_eq(sh(script), 0, "%s", out);
    bool killed = strstr(out, "killed") != NULL;
    snprintf(script, sizeof script, "cd %s && wc -l < part.csv", dir);
    sh(script);
    long rows_at_kill = atol(out);
    snprintf(script, sizeof script,
             "cd %s && %s --csv part.csv --checkpoint ck --checkpoint-every 25 --resume ck --json > part.json", dir,
             run);
    cr_assert_eq(sh(script), 0, "%s", out);
    char *a = csv_without_seconds(strcat(strcpy(script, dir), "/full.csv"));
    char *b = csv_without_seconds(strcat(strcpy(script, dir), "/part.csv"));
    cr_expect(killed && rows_at_kill < 4000, "the run was not interrupted (%ld rows)", rows_at_kill);
    cr_expect(strlen(a) > 1000 && strcmp(a, b) == 0, "the resumed CSV differs from the uninterrupted one");
    /* the held-out score is a function of phi: equal only if phi is */
    snprintf(script, sizeof script, "cd %s && grep -o '\"test_mse\": [^,]*' full.json part.json | cut -d: -f3 | uniq | wc -l",
             dir);
    sh(script);
    cr_expect_eq(atoi(out), 1, "the final held-out scores differ");
    /* refused: a corrupt checkpoint, another problem's; the CSV is left alone */
    snprintf(script, sizeof script,
             "cd %s && printf 'x' | dd of=ck bs=1 seek=100 conv=notrunc 2>/dev/null; cp part.csv before.csv; "
             "%s --csv part.csv --resume ck 2>&1; echo \"rc=$?\"; cmp -s part.csv before.csv && echo same",
             dir, run);
    sh(script);
    cr_expect(strstr(out, "checksum") && strstr(out, "rc=1") && strstr(out, "same"), "%s", out);
    snprintf(script, sizeof script, "cd %s && %s --csv part.csv --checkpoint ck2 --checkpoint-every 1 --steps 2 && "
             "$B run ufo-toy --resume ck2 2>&1; echo \"rc=$?\"", dir, run);
    sh(script);
    cr_expect(strstr(out, "does not fit") && strstr(out, "rc=1"), "%s", out);
    snprintf(script, sizeof script, "rm -rf %s", dir);
    sh(script);
}

/* SIGTERM: the run stops at the end of a step, writes its checkpoint and
 * exits with 128 + 15; without --checkpoint it leaves no partial CSV. */
Test(cli, sigterm_stops_cleanly, .timeout = 120)
{
    char dir[] = "/tmp/bome-sig-XXXXXX", script[4096];
    cr_assert(mkdtemp(dir));
    const char *run = "$B run sinusoid --method fo-blo --hidden 10 --batch 5 --eval-tasks 20 --steps 1000000 --quiet";
    snprintf(script, sizeof script,
             "cd %s && (%s --csv a.csv --checkpoint ck & p=$!; while [ ! -s a.csv ]; do sleep 0.01; done; sleep 0.2; "
             "kill -TERM $p; wait $p; echo \"rc=$?\"); test -s ck && echo ckpt; "
             "(%s --csv b.csv & p=$!; while [ ! -s b.csv ]; do sleep 0.01; done; sleep 0.2; kill -TERM $p; wait $p; "
             "echo \"rc2=$?\"); test -e b.csv || echo no-csv",
             dir, run, run);
    sh(script);
    cr_expect(strstr(out, "rc=143") && strstr(out, "ckpt"), "%s", out);
    cr_expect(strstr(out, "rc2=143") && strstr(out, "no-csv"), "%s", out);
    snprintf(script, sizeof script, "rm -rf %s", dir);
    sh(script);
}

Test(cli, unwritable_csv_is_an_error)
{
    cr_expect_eq(bome("run coreset --steps 50 --csv /dev/full"), 1, "%s", out);
    cr_expect(strstr(out, "cannot write /dev/full"), "%s", out);
    cr_expect_eq(bome("run coreset --checkpoint-every 5"), 2);
}

/* Numbers are range-checked, never wrapped; a flag of another problem is an
 * error that names both. */
Test(cli, strict_arguments)
{
    cr_expect_eq(bome("run coreset --T 4294967297"), 2, "%s", out);
    cr_expect(strstr(out, "--T 4294967297: expected a whole number"), "%s", out);
    cr_expect_eq(bome("run hyperclean --sizes 4294969296,1,1,1"), 2, "%s", out);
    cr_expect(strstr(out, "each from 0 to 2147483647"), "%s", out);
    cr_expect_eq(bome("run hyperclean --sizes 1,2,3"), 2);
    cr_expect_eq(bome("run hyperclean --sizes 1,2,3,4,5"), 2);
    cr_expect_eq(bome("run hyperclean --hidden 99999999999"), 2);
    cr_expect_eq(bome("run coreset --save-v x.csv"), 2);
    cr_expect(strstr(out, "--save-v is not a setting of coreset"), "%s", out);
    cr_expect_eq(bome("run coreset --warm-steps 3"), 2);
    cr_expect(strstr(out, "--warm-steps is not a setting of coreset"), "%s", out);
    cr_expect_eq(bome("run nonsingleton --no-plot"), 2);
    cr_expect(strstr(out, "--no-plot is not a setting of nonsingleton"), "%s", out);
    cr_expect_eq(bome("run hyperclean --eval-every 0"), 2);
    cr_expect_eq(bome("run hyperclean --start 1"), 2);
    cr_expect(strstr(out, "--start is not a setting of hyperclean"), "%s", out);
    cr_expect_eq(bome("run ufo-toy --window -1 --steps 1"), 1, "%s", out);
    cr_expect_eq(bome("run sinusoid --hidden 0 --steps 1"), 1, "%s", out);
    cr_expect(strstr(out, "must be whole numbers >= 1"), "%s", out);
}

/* ---- issue 12's examples of output lost with exit 0 ---- */

/* An option refused by the problem or the solver leaves no header-only CSV. */
Test(cli, option_error_leaves_no_csv)
{
    char dir[] = "/tmp/bome-opt-XXXXXX", args[512], csv[128];
    cr_assert(mkdtemp(dir));
    snprintf(csv, sizeof csv, "%s/log.csv", dir);
    const char *runs[] = {"run ufo-toy --window -1 --steps 1 --csv %s", "run coreset --lr-outer -1 --csv %s",
                          "run coreset --T 0 --csv %s", "run sinusoid --hidden 0 --steps 1 --csv %s"};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        snprintf(args, sizeof args, runs[i], csv);
        cr_expect_neq(bome(args), 0, "%s: %s", args, out);
        cr_expect_neq(access(csv, F_OK), 0, "%s left %s", args, csv);
        remove(csv);
    }
    rmdir(dir);
}

/* SIGTERM during an experiment with --save-v: exit 128 + 15, and neither
 * the CSV nor an empty --save-v file is left. */
Test(cli, sigterm_leaves_no_empty_save_v, .timeout = 120)
{
    char dir[] = "/tmp/bome-sigv-XXXXXX", script[4096];
    synthetic_idx_dir(dir);
    snprintf(script, sizeof script,
             "cd %s && ($B run hyperclean --data-dir . --out-dir o --sizes 400,100,100,200 --warm-steps 5 --steps 1000000 "
             "--eval-every 100000 --no-plot --threads 1 --quiet --csv a.csv --save-v v.csv & p=$!; "
             "while kill -0 $p 2>/dev/null && [ ! -s a.csv ]; do sleep 0.01; done; sleep 0.3; kill -TERM $p; wait $p; echo \"rc=$?\"); "
             "test -e v.csv && echo v-left; test -e a.csv && echo csv-left; true",
             dir);
    sh(script);
    cr_expect(strstr(out, "rc=143"), "%s", out);
    cr_expect(!strstr(out, "v-left") && !strstr(out, "csv-left"), "%s", out);
    snprintf(script, sizeof script, "rm -rf %s", dir);
    sh(script);
}

/* SIGTERM during the set-up's training (the warm start: minutes on the full
 * data set, with no solver step to stop at) stops it too: exit 128 + 15,
 * no cache of the unfinished fit, no empty --save-v. */
Test(cli, sigterm_during_the_warm_start, .timeout = 60)
{
    char dir[] = "/tmp/bome-sigw-XXXXXX", script[4096];
    synthetic_idx_dir(dir);
    snprintf(script, sizeof script,
             "cd %s && ($B run hyperclean --data-dir . --out-dir o --sizes 400,100,100,200 --warm-steps 2000000000 "
             "--steps 1 --no-plot --threads 1 --save-v v.csv 2>&1 & p=$!; "
             "while kill -0 $p 2>/dev/null && [ ! -d o/cache ]; do sleep 0.01; done; sleep 0.3; kill -TERM $p; "
             "wait $p; echo \"rc=$?\"); ls o/cache | wc -l; test -e v.csv && echo v-left; true",
             dir);
    sh(script);
    cr_expect(strstr(out, "rc=143"), "%s", out);
    cr_expect(strstr(out, "stopped by signal 15 during the set-up (training interrupted"), "%s", out);
    cr_expect(strstr(out, "\n0\n") && !strstr(out, "v-left"), "%s", out);
    snprintf(script, sizeof script, "rm -rf %s", dir);
    sh(script);
}
