/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_CA_DIGEST_H
#define KMTLS_CA_DIGEST_H

#define KMTLS_CA_DIGEST_LEN 8

/*
 * A digest of the CA bundle at @path (a file, or a directory: its regular
 * files by name), the first KMTLS_CA_DIGEST_LEN bytes of a SHA-256 into
 * @out. Session tickets carry it (resume.h): a ticket resumes only where
 * the same CAs are trusted. 0, or -1 when it cannot be read.
 */
int kmtls_ca_digest(const char *path, unsigned char out[KMTLS_CA_DIGEST_LEN]);

#endif
