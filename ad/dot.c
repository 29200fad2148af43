/* Graphviz DOT export: one box per node, labelled with op, name and shape;
 * parameters, inputs and constants coloured so a reader finds the leaves. */
#include "internal.h"

#include <string.h>

static const char *fill(const bome_node *v)
{
    switch (v->kind) {
    case NODE_PARAM: return "#f4c27a";
    case NODE_INPUT: return "#a9d0f5";
    case NODE_LABELS: return "#c5e8b7";
    case NODE_CONST: return "#e0e0e0";
    default: return v->op->backward ? "#ffffff" : "#f2b8b8"; /* stop-gradient in red */
    }
}

/* Names are the user's: keep quotes and backslashes from breaking the file. */
static void put_escaped(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', out);
        fputc(*s, out);
    }
}

int bome_graph_dot(bome_graph *g, FILE *out, int n, bome_node *const *outs)
{
    if (!g)
        return BOME_ERR_ARG;
    if (!out)
        return ad_error(g, BOME_ERR_ARG, "bome_graph_dot: out is NULL");
    size_t top = g->n_nodes;
    unsigned char *keep = NULL;
    if (n > 0) {
        keep = ad_raw_alloc(g, top);
        if (!keep)
            return ad_error(g, BOME_ERR_NOMEM, "bome_graph_dot: out of memory");
        memset(keep, 0, top);
        for (int i = 0; i < n; i++) {
            if (!outs || !outs[i]) {
                ad_raw_free(g, keep, top);
                return ad_error(g, BOME_ERR_ARG, "bome_graph_dot: outs[%d] is NULL", i);
            }
            if (!ad_own(g, outs[i], "bome_graph_dot, outs[%d]", i)) {
                ad_raw_free(g, keep, top);
                return BOME_ERR_ARG;
            }
            keep[outs[i]->id] = 1;
        }
        for (size_t id = top; id-- > 0;)
            if (keep[id])
                for (int s = 0; s < g->nodes[id]->nsrc; s++)
                    keep[g->nodes[id]->src[s]->id] = 1;
    }
    fprintf(out, "digraph bome {\n  rankdir=BT;\n  node [shape=box, style=filled, fontname=\"Helvetica\"];\n");
    for (size_t id = 0; id < top; id++) {
        const bome_node *v = g->nodes[id];
        if (keep && !keep[id])
            continue;
        char sh[40];
        fprintf(out, "  n%zu [label=\"%s", id, v->op->name);
        if (v->name) {
            fputs(" '", out);
            put_escaped(out, v->name);
            fputc('\'', out);
        }
        fprintf(out, "\\n%s\", fillcolor=\"%s\"];\n", ad_shape_str(v->shape, sh), fill(v));
        for (int s = 0; s < v->nsrc; s++)
            fprintf(out, "  n%d -> n%zu;\n", v->src[s]->id, id);
    }
    fputs("}\n", out);
    if (keep)
        ad_raw_free(g, keep, top);
    return ferror(out) ? ad_error(g, BOME_ERR_IO, "bome_graph_dot: write failed") : BOME_OK;
}
