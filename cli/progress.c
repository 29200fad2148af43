/* The progress bar on stderr and the clock it and the summary read. */
#include "cli.h"

#include <time.h>
#include <unistd.h>

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cli_progress_start(cli_progress *p, long total, bool quiet)
{
    p->on = !quiet && isatty(STDERR_FILENO);
    p->total = total;
    p->last_draw = 0;
}

void cli_progress_draw(cli_progress *p, long done, const char *text)
{
    if (!p->on)
        return;
    double t = cli_now();
    if (done < p->total && t - p->last_draw < 0.1)
        return;
    p->last_draw = t;
    enum { W = 24 };
    int fill = p->total > 0 ? (int)(W * done / p->total) : W;
    char bar[W + 1];
    for (int i = 0; i < W; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[W] = '\0';
    fprintf(stderr, "\r\033[K[%s] %ld/%ld %s", bar, done, p->total, text ? text : "");
    fflush(stderr);
}

void cli_progress_end(cli_progress *p)
{
    if (p->on)
        fputs("\n", stderr);
}
