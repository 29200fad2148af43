/* The CLI's side of checkpoints and signals: the solver's bytes written
 * atomically (a temporary, fsync, rename, fsync of the folder), read back
 * whole, the per-step CSV cut back to the checkpoint's step on resume, and
 * SIGINT / SIGTERM turned into a stop at the end of the step. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

volatile sig_atomic_t cli_signal;

static void on_signal(int sig) { cli_signal = sig; }

void cli_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* The folder of path, fsynced so that a rename in it is durable. */
static void sync_dir(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

void cli_remove_output(const char *path)
{
    /* only a file of ours: --csv /dev/full must never remove the device */
    struct stat st;
    if (path && lstat(path, &st) == 0 && S_ISREG(st.st_mode))
        unlink(path);
}

int cli_write_atomic(const char *path, const void *buf, size_t n, char *err, size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write %.900s: %s", tmp, strerror(errno));
        return BOME_ERR_IO;
    }
    const char *p = buf;
    size_t left = n;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(err, errlen, "cannot write %.900s: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            return BOME_ERR_IO;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        snprintf(err, errlen, "cannot write %.900s: %s", tmp, strerror(errno));
        unlink(tmp);
        return BOME_ERR_IO;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot rename %.900s to %.900s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return BOME_ERR_IO;
    }
    sync_dir(path);
    return BOME_OK;
}

int cli_checkpoint_save(const char *path, bome_solver *s, char *err, size_t errlen)
{
    size_t n = bome_solver_state_size(s);
    void *buf = n ? malloc(n) : NULL;
    if (!buf) {
        snprintf(err, errlen, "checkpoint: %s", n ? "out of memory" : "the solver has no state to save");
        return BOME_ERR_NOMEM;
    }
    int rc = bome_solver_save(s, buf, n);
    if (rc)
        snprintf(err, errlen, "checkpoint: %s", bome_solver_errmsg(s));
    else
        rc = cli_write_atomic(path, buf, n, err, errlen);
    free(buf);
    return rc;
}

int cli_checkpoint_load(const char *path, bome_solver *s, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read %.900s: %s", path, strerror(errno));
        return BOME_ERR_IO;
    }
    /* Twice this run's state and more: room for the same run's checkpoint in
     * the other precision, whose header then says so; a file longer than
     * this run's state is refused by the library anyway. */
    size_t cap = 2 * bome_solver_state_size(s) + 64, n = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return BOME_ERR_NOMEM;
    }
    n = fread(buf, 1, cap, f);
    int rc = ferror(f) ? BOME_ERR_IO : BOME_OK;
    fclose(f);
    if (rc)
        snprintf(err, errlen, "cannot read %.900s", path);
    else if ((rc = bome_solver_load(s, buf, n)))
        snprintf(err, errlen, "%.900s: %s", path, bome_solver_errmsg(s));
    free(buf);
    return rc;
}

FILE *cli_csv_resume(const char *path, long step, char *err, size_t errlen)
{
    FILE *in = fopen(path, "r");
    if (!in) {
        snprintf(err, errlen, "--resume: cannot read the run's CSV %.900s: %s", path, strerror(errno));
        return NULL;
    }
    /* keep the header and every complete row up to the checkpoint's step */
    size_t cap = 1 << 16, n = 0;
    char *keep = malloc(cap), line[8192];
    bool first = true;
    while (keep && fgets(line, sizeof line, in)) {
        size_t len = strlen(line);
        if (len == 0 || line[len - 1] != '\n')
            break; /* a row cut short by the crash */
        if (!first && strtol(line, NULL, 10) > step)
            break;
        first = false;
        if (n + len + 1 > cap) {
            char *k = realloc(keep, cap = 2 * (n + len + 1));
            if (!k) {
                free(keep);
                keep = NULL;
                break;
            }
            keep = k;
        }
        memcpy(keep + n, line, len);
        n += len;
    }
    fclose(in);
    int rc = keep ? cli_write_atomic(path, keep, n, err, errlen) : BOME_ERR_NOMEM;
    free(keep);
    if (rc)
        return NULL;
    FILE *out = fopen(path, "a");
    if (!out)
        snprintf(err, errlen, "cannot append to %.900s: %s", path, strerror(errno));
    return out;
}
