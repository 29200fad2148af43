#ifndef BOME_OPT_H
#define BOME_OPT_H
#include "bome/ad.h"
#include "bome/rng.h"
#endif
