/*
 * tests/test_cases.c: the contract every problem keeps with the program,
 * checked over the registry, so that a new case is held to it as soon as
 * its line is added: names unique and flag-shaped, tables within their
 * bounds, an experiment's hooks complete and its plot's columns real.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "cases.h"

/* the CSV columns an experiment has: step, its metrics, f, q, lambda, seconds */
static bool has_column(const prob_case *c, const char *name)
{
    static const char *const fixed[] = {"step", "f", "q", "lambda", "seconds"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(name, fixed[i]))
            return true;
    for (int i = 0; i < c->n_metrics; i++)
        if (!strcmp(name, c->metrics[i].name))
            return true;
    return false;
}

Test(cases, the_registry_keeps_the_contract)
{
    int n = 0;
    for (const prob_case *const *p = prob_cases; *p; p++, n++) {
        const prob_case *c = *p;
        cr_assert(c->name && c->summary && c->defaults && c->create && c->destroy, "case %d is incomplete", n);
        cr_expect_eq(prob_find(c->name), c, "%s is not found by its name", c->name);
        for (const prob_case *const *q = prob_cases; q != p; q++)
            cr_expect(strcmp((*q)->name, c->name), "two cases named %s", c->name);
        bome_options o;
        c->defaults(&o);
        cr_expect_eq(o.max_steps, c->default_steps, "%s", c->name);
        cr_expect_geq(c->n_starts, 0);
        cr_expect_leq(c->n_params, PROB_MAX_PARAMS, "%s", c->name);
        for (int i = 0; i < c->n_params; i++) {
            const prob_param *pa = &c->params[i];
            cr_expect(pa->name && pa->help && !strchr(pa->name, ' ') && !strchr(pa->name, '_'),
                      "%s: a setting's name is not a flag's", c->name);
            cr_expect(pa->type != PROB_TEXT || pa->text, "%s --%s has no default", c->name, pa->name);
        }
        if (c->evaluate)
            cr_expect(c->eval_name, "%s", c->name);
        if (!c->measure) {
            cr_expect(!c->metrics && !c->report && !c->save && !c->image && !c->panels,
                      "%s has an experiment's hooks without measure", c->name);
            continue;
        }
        cr_expect(c->n_metrics > 0 && c->n_metrics <= PROB_MAX_METRICS, "%s", c->name);
        cr_expect_gt(c->eval_every, 0, "%s logs every %d steps", c->name, c->eval_every);
        cr_expect(c->n_panels > 0 && c->plot_title, "%s draws no plot", c->name);
        for (int i = 0; i < c->n_panels; i++)
            cr_expect(has_column(c, c->panels[i].x) && has_column(c, c->panels[i].y), "%s's panel %d plots %s:%s",
                      c->name, i, c->panels[i].x, c->panels[i].y);
        cr_expect(c->select >= 0 && c->select <= c->n_metrics, "%s", c->name);
        if (c->select)
            cr_expect(c->select_label && c->select_key, "%s", c->name);
        if (c->save)
            cr_expect(c->save_what && c->save_key, "%s", c->name);
        for (int i = 0; i < c->n_metrics; i++)
            cr_expect(c->metrics[i].column >= 0 && c->metrics[i].column <= PROB_MAX_COLS, "%s", c->name);
    }
    cr_expect_geq(n, 8, "the registry lists %d cases", n);
}

/* Settings read through the accessors: the defaults when a run gives none. */
Test(cases, settings_default_when_the_run_gives_none)
{
    const prob_case *c = prob_find("hyperclean");
    cr_assert(c);
    prob_run r = {0};
    for (int i = 0; i < c->n_params; i++) {
        const prob_param *p = &c->params[i];
        if (p->type == PROB_TEXT)
            cr_expect_str_eq(prob_text(c, &r, i), p->text);
        else if (p->type == PROB_SIZES)
            cr_expect_eq(prob_sizes(c, &r, i)[0], p->sizes[0]);
        else
            cr_expect_eq(prob_real(c, &r, i), p->type == PROB_SWITCH ? 0 : p->def);
    }
}
