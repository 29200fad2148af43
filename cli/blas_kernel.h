/*
 * The `bome` command's care for the BLAS kernel: at start, when OpenBLAS
 * fell back to a generic kernel on a CPU with AVX2 or AVX-512 and the user
 * did not set OPENBLAS_CORETYPE, set it and run the program again (OpenBLAS
 * reads the variable only when it is loaded); and `bome blas`, which shows
 * the BLAS, its kernel, the CPU and the advice.
 */
#ifndef CLI_BLAS_KERNEL_H
#define CLI_BLAS_KERNEL_H

/* Call first thing in main. Either returns, or replaces the process with
 * /proc/self/exe run on the same argv and OPENBLAS_CORETYPE set, after one
 * line on stderr. Runs at most once per invocation: the re-executed process
 * finds BOME_BLAS_REEXEC in its environment.
 * For tests only: BOME_TEST_FAKE_CORENAME=NAME makes the check see NAME as
 * the kernel, with OPENBLAS_CORETYPE unset, so that the re-execution can be
 * tried without ever loading OpenBLAS without the setting a machine needs. */
void blas_kernel_check(char **argv);

/* `bome blas [--help]`: the report; returns the exit status. */
int blas_kernel_main(int argc, char **argv);

#endif
