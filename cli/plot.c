/* Plots through gnuplot, when it is installed: an experiment's panels from
 * its CSV, and a picture of its outer variable. Each script is kept next
 * to its PNG, so that a plot can be redrawn or changed by hand. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* The script png.gp, open for writing, if gnuplot is there to run it. */
static FILE *begin(const char *png, char *gp, size_t len, bool quiet)
{
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        if (!quiet)
            fprintf(stderr, "gnuplot is not installed: no plot (apt-get install gnuplot-nox)\n");
        return NULL;
    }
    snprintf(gp, len, "%s.gp", png);
    FILE *f = fopen(gp, "w");
    if (!f && !quiet)
        fprintf(stderr, "cannot write %s: no plot\n", gp);
    return f;
}

/* Closes the script and runs it. */
static int finish(FILE *f, const char *gp, bool quiet)
{
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "gnuplot '%s' 2>/dev/null", gp);
    if (fclose(f) == 0 && system(cmd) == 0)
        return 0;
    if (!quiet)
        fprintf(stderr, "gnuplot failed: no plot\n");
    return 1;
}

int cli_plot_panels(const prob_case *c, const char *csv, const char *png, bool quiet)
{
    char gp[4200];
    FILE *f = begin(png, gp, sizeof gp, quiet);
    if (!f)
        return 1;
    fprintf(f,
            "set terminal pngcairo size 1200,800 noenhanced\nset output '%s'\nset datafile separator ','\n"
            "set key off\nset grid\nset multiplot layout 2,2 title '%s'\n",
            png, c->plot_title);
    for (int i = 0; i < c->n_panels; i++) {
        const prob_panel *p = &c->panels[i];
        fprintf(f, "set xlabel '%s'\nset title '%s'\n%s\n",
                !strcmp(p->x, "seconds") ? "seconds (evaluation excluded)" : "outer step", p->title,
                p->logy ? "set logscale y" : "unset logscale y");
        fprintf(f, "plot '%s' using %d:%d every ::%d with %s lw 2\n", csv, cli_csv_column(c, p->x),
                cli_csv_column(c, p->y), p->first, !strcmp(p->x, "seconds") ? "linespoints" : "lines");
    }
    fputs("unset multiplot\n", f);
    return finish(f, gp, quiet);
}

int cli_plot_image(const prob_image *img, const char *png, bool quiet)
{
    char gp[4200];
    FILE *f = begin(png, gp, sizeof gp, quiet);
    if (!f)
        return 1;
    /* the values inline, row 0 at the top as in the image */
    fprintf(f,
            "set terminal pngcairo size 640,600 noenhanced\nset output '%s'\nset title '%s'\n"
            "set size ratio -1\nset xrange [-0.5:%d.5]\nset yrange [%d.5:-0.5]\nunset key\n"
            "set palette grey\n%s\nplot '-' matrix with image\n",
            png, img->title, img->cols - 1, img->rows - 1, img->log ? "set logscale cb" : "");
    for (int i = 0; i < img->rows; i++)
        for (int j = 0; j < img->cols; j++)
            fprintf(f, "%.6g%s", img->values[(size_t)i * img->cols + j], j + 1 < img->cols ? " " : "\n");
    fputs("e\n", f);
    return finish(f, gp, quiet);
}
