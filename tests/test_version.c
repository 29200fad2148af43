/*
 * tests/test_version.c: the header and the library agree on the version,
 * and both say what meson.build's project() says, the one place the number
 * is kept. Linked against the shared library, as a user's program is.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "bome/ad.h"

Test(version, header_and_library_agree)
{
    cr_expect(BOME_VERSION_CHECK());
    cr_expect_eq(bome_version_number(), BOME_VERSION_NUMBER);
    cr_expect_str_eq(bome_version(), BOME_VERSION_STRING);
    char parts[64];
    snprintf(parts, sizeof parts, "%d.%d.%d", BOME_VERSION_MAJOR, BOME_VERSION_MINOR, BOME_VERSION_PATCH);
    cr_expect_str_eq(parts, BOME_VERSION_STRING);
    cr_expect_eq(BOME_VERSION_NUMBER, BOME_VERSION_MAJOR * 1000000 + BOME_VERSION_MINOR * 1000 + BOME_VERSION_PATCH);
    cr_expect_str_eq(BOME_VERSION_STRING, MESON_PROJECT_VERSION);
}

/* The number orders releases as their versions do. */
Test(version, the_number_orders_releases)
{
#define NUMBER(a, b, c) ((a) * 1000000 + (b) * 1000 + (c))
    cr_expect_lt(NUMBER(0, 9, 999), NUMBER(0, 10, 0));
    cr_expect_lt(NUMBER(0, 10, 0), NUMBER(1, 0, 0));
    cr_expect_lt(NUMBER(1, 2, 3), NUMBER(1, 2, 4));
}
