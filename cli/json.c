/* JSON output: numbers that read back exactly, escaped strings, the settings. */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The shortest of %.15g, %.16g, %.17g that reads back as x: 0.9, not
 * 0.90000000000000002. */
void cli_json_num(FILE *out, double x)
{
    if (!isfinite(x)) {
        fputs("null", out);
        return;
    }
    char buf[32];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    fputs(buf, out);
}

void cli_json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

/* Every shared setting and the chosen method's own, from the library's
 * table, so the JSON names each setting as bome_options_set does. */
void cli_json_options(FILE *out, const bome_options *o)
{
    fputs("{\"method\": ", out);
    cli_json_str(out, bome_method_name((int)o->method));
    int n = bome_option_count();
    for (int i = 0; i < n; i++) {
        bome_option_info d;
        double x;
        bome_option_info_at(i, &d);
        if ((d.method >= 0 && d.method != (int)o->method) || bome_options_get(o, d.name, &x))
            continue;
        fprintf(out, ", \"%s\": ", d.name);
        if (d.type == BOME_OPTION_CHOICE) {
            const char *c = d.choices;
            for (int idx = 0; idx < (int)x && strchr(c, '|'); idx++)
                c = strchr(c, '|') + 1;
            const char *bar = strchr(c, '|');
            fprintf(out, "\"%.*s\"", bar ? (int)(bar - c) : (int)strlen(c), c);
        } else {
            cli_json_num(out, x);
        }
    }
    fputs("}", out);
}
