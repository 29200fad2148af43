/* The projection of a point onto the convex hull of a few points in the
 * plane, by brute force over vertices and segments: the coreset toy's answer
 * computed without any of BOME's machinery. */
#include "cases.h"

#include <math.h>

/* Whether y lies inside the hull: on the same side of every hull edge. An
 * edge (i, j) is a hull edge when all points lie on one side of it. A hull
 * without area (one point, or all on a line) has no inside: the boundary
 * search below handles it. */
static int inside(const double *c, int k, const double y[2])
{
    int area = 0;
    for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++) {
            if (i == j)
                continue;
            double ex = c[2 * j] - c[2 * i], ey = c[2 * j + 1] - c[2 * i + 1];
            int hull_edge = 1;
            for (int m = 0; m < k; m++) {
                double cr = ex * (c[2 * m + 1] - c[2 * i + 1]) - ey * (c[2 * m] - c[2 * i]);
                if (cr < -1e-12)
                    hull_edge = 0;
                area = area || fabs(cr) > 1e-12;
            }
            if (hull_edge && ex * (y[1] - c[2 * i + 1]) - ey * (y[0] - c[2 * i]) < 0)
                return 0;
        }
    return area;
}

void prob_hull_projection(const double *c, int k, const double y[2], double out[2])
{
    if (inside(c, k, y)) {
        out[0] = y[0];
        out[1] = y[1];
        return;
    }
    double best = INFINITY;
    /* Outside: the nearest point of the hull lies on its boundary, which is
     * covered by the segments between all pairs of points. */
    for (int i = 0; i < k; i++)
        for (int j = i; j < k; j++) {
            double ax = c[2 * i], ay = c[2 * i + 1], dx = c[2 * j] - ax, dy = c[2 * j + 1] - ay;
            double len2 = dx * dx + dy * dy;
            double t = len2 > 0 ? ((y[0] - ax) * dx + (y[1] - ay) * dy) / len2 : 0;
            t = t < 0 ? 0 : (t > 1 ? 1 : t);
            double px = ax + t * dx, py = ay + t * dy, d = hypot(y[0] - px, y[1] - py);
            if (d < best) {
                best = d;
                out[0] = px;
                out[1] = py;
            }
        }
}
