// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The digest of a listener's CA bundle that binds session tickets to it.
 * Bytes, not certificates: the same CAs in another order or encoding make
 * another digest, which only costs a full handshake.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "ca_digest.h"

static int hash_file(wc_Sha256 *h, int dirfd, const char *name)
{
	unsigned char buf[8192];
	ssize_t n;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		wc_Sha256Update(h, buf, (word32)n);
	close(fd);
	return n < 0 ? -1 : 0;
}

/* Regular files by name, each as its name, a NUL and its bytes. */
static int hash_dir(wc_Sha256 *h, const char *path)
{
	struct dirent **ents;
	struct stat st;
	int dirfd, n, i, ret = 0;

	dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -1;
	n = scandir(path, &ents, NULL, alphasort);
	if (n < 0) {
		close(dirfd);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (!ret && !fstatat(dirfd, ents[i]->d_name, &st, 0) && S_ISREG(st.st_mode)) {
			wc_Sha256Update(h, (const byte *)ents[i]->d_name,
					(word32)strlen(ents[i]->d_name) + 1);
			ret = hash_file(h, dirfd, ents[i]->d_name);
		}
		free(ents[i]);
	}
	free(ents);
	close(dirfd);
	return ret;
}

int kmtls_ca_digest(const char *path, unsigned char out[KMTLS_CA_DIGEST_LEN])
{
	unsigned char sha[WC_SHA256_DIGEST_SIZE];
	struct stat st;
	wc_Sha256 h;
	int ret;

	memset(out, 0, KMTLS_CA_DIGEST_LEN);
	if (!path || stat(path, &st) || wc_InitSha256(&h))
		return -1;
	ret = S_ISDIR(st.st_mode) ? hash_dir(&h, path) : hash_file(&h, AT_FDCWD, path);
	if (!ret)
		ret = wc_Sha256Final(&h, sha) ? -1 : 0;
	wc_Sha256Free(&h);
	if (!ret)
		memcpy(out, sha, KMTLS_CA_DIGEST_LEN);
	return ret;
}
