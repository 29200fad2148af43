/* `bome run hyperclean`: data hyper-cleaning on Fashion-MNIST, end to end. */
#ifndef BOME_HYPERCLEAN_H
#define BOME_HYPERCLEAN_H

#include "cli.h"

/* The reference code's settings: T = 10, alpha = 0.01, step 0.01 for theta
 * and 100 for v, outer momentum 0.9, phi = eta q with eta = 0.5. */
void hyperclean_defaults(cli_args *a);
int hyperclean_main(cli_args *a);
/* After the flags: the inner loop the released grid gives the chosen method. */
void hyperclean_method_defaults(cli_args *a);

#endif
