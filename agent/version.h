/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_VERSION_H
#define KMTLS_VERSION_H

#include <stdio.h>

#define KMTLS_VERSION "0.1.0"

/* Print our version, wolfSSL's, and the wolfSSL features compiled in. */
void kmtls_print_version(FILE *out, const char *prog);

#endif
