/* Two outputs of one run naming the same file would overwrite each other
 * (--csv X --save-v X: the log lost under the weights): refused before
 * anything is written. */
/* realpath is XSI */
#define _XOPEN_SOURCE 700

#include "cli.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct named {
    const char *what, *path;
    char canon[PATH_MAX + 256];
    struct stat st;
    bool exists;
} named;

/* The path with its directory resolved (symbolic links, "..", "./"), so
 * that out/x.csv and ./out/../out/x.csv compare equal; as given when the
 * directory does not exist yet. */
static void resolve(named *n)
{
    n->exists = stat(n->path, &n->st) == 0;
    char dir[PATH_MAX], real[PATH_MAX];
    const char *slash = strrchr(n->path, '/'), *base = slash ? slash + 1 : n->path;
    size_t dlen = slash ? (size_t)(slash - n->path) : 1;
    if (dlen >= sizeof dir)
        dlen = sizeof dir - 1;
    memcpy(dir, slash ? n->path : ".", dlen);
    dir[dlen] = '\0';
    if (slash && dlen == 0)
        strcpy(dir, "/");
    if (realpath(dir, real))
        snprintf(n->canon, sizeof n->canon, "%s/%s", real, base);
    else
        snprintf(n->canon, sizeof n->canon, "%s", n->path);
}

static bool same(const named *a, const named *b)
{
    /* two writers into a device or a pipe (/dev/null) take nothing from each other */
    if (a->exists && b->exists && !S_ISREG(a->st.st_mode))
        return false;
    if (a->exists && b->exists)
        return a->st.st_dev == b->st.st_dev && a->st.st_ino == b->st.st_ino;
    return strcmp(a->canon, b->canon) == 0;
}

int cli_outputs_check(const cli_args *a, const char *csv, const char *plot, const char *image)
{
    static named n[7];
    int k = 0;
    const char *what[] = {"--csv", "--save-v", "--dot", "--checkpoint", "the plot", "the picture of v", "--resume"};
    const char *path[] = {csv, a->save_path, a->dot_path, a->checkpoint_path, plot, image, a->resume_path};
    for (int i = 0; i < 7; i++)
        if (path[i] && path[i][0]) {
            n[k].what = what[i];
            n[k].path = path[i];
            resolve(&n[k++]);
        }
    for (int i = 0; i < k; i++)
        for (int j = i + 1; j < k; j++) {
            /* resuming from the checkpoint a run goes on writing is the point */
            bool input = !strcmp(n[j].what, "--resume");
            if (input && !strcmp(n[i].what, "--checkpoint"))
                continue;
            if (same(&n[i], &n[j])) {
                fprintf(stderr, "bome: %s and %s name the same file (%s)%s\n", n[i].what, n[j].what, n[j].path,
                        input ? ": it would be overwritten while it is read" : ": one would overwrite the other");
                return 2;
            }
        }
    return 0;
}
