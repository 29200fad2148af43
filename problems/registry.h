/* The problems `bome list` shows, in its order: a new problem is its file
 * and its line here. Included by cases.h and cases.c with PROB defined. */
PROB(hyperclean)
PROB(l2reg)
PROB(coreset)
PROB(nonsingleton)
PROB(minimax)
PROB(ridge)
PROB(ufo_toy)
PROB(sinusoid)
