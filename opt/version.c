/* The library's version, compiled from the header Meson configured, so that
 * a program can compare it with the header it was built with. */
#include "bome/ad.h"
#include "bome/version.h"

const char *bome_version(void)
{
    return BOME_VERSION_STRING;
}

int bome_version_number(void)
{
    return BOME_VERSION_NUMBER;
}

int bome_real_bits(void)
{
    return BOME_REAL_BITS;
}
