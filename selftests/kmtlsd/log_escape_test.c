// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A peer cannot write kmtlsd's log lines: a client certificate whose
 * subject has a newline in O= (made here, signed by the test PKI's
 * intermediate, so that the handshake succeeds) is logged escaped in the
 * --log-level debug line of the verified client, as the failures' lines
 * escape it, and no line of the log begins with what followed the newline.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/backend.h"
#include "../lib/client.h"
#include "../lib/kmtlsd.h"
#include "../lib/tls_pair.h"
#include "kselftest_harness.h"

#define FORGED "2026-01-01T00:00:00.000Z kmtlsd[error]: FORGED by a peer"

/* Run @argv quietly: 0 when it exited 0. */
static int run(char *const argv[])
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		dup2(null, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	       !WEXITSTATUS(st) ? 0 : -1;
}

/* @dir/nl.pem (leaf and intermediate) and nl.key: O= with a newline. */
static int make_cert(const char *dir, char *pem, char *key, size_t len)
{
	char csr[512], ext[512], leaf[512], cmd[2048];
	char subj[] = "/O=acme\n" FORGED "/CN=nl-client";
	FILE *f;

	snprintf(key, len, "%s/nl.key", dir);
	snprintf(pem, len, "%s/nl.pem", dir);
	snprintf(csr, sizeof(csr), "%s/nl.csr", dir);
	snprintf(ext, sizeof(ext), "%s/nl.cnf", dir);
	snprintf(leaf, sizeof(leaf), "%s/nl-leaf.pem", dir);
	f = fopen(ext, "w");
	if (!f)
		return -1;
	fprintf(f, "basicConstraints = critical, CA:false\nkeyUsage = critical, digitalSignature\n"
		"extendedKeyUsage = clientAuth\nsubjectAltName = URI:spiffe://example.org/nl\n");
	if (fclose(f))
		return -1;
	{
		char *genkey[] = { "openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
				   "ec_paramgen_curve:prime256v1", "-out", key, NULL };
		char *req[] = { "openssl", "req", "-new", "-key", key, "-subj", subj,
				"-out", csr, NULL };
		char *sign[] = { "openssl", "x509", "-req", "-in", csr, "-CA",
				 (char *)pki("work/inter.pem"), "-CAkey",
				 (char *)pki("work/inter.key"), "-set_serial", "0x4e4c",
				 "-days", "2", "-extfile", ext, "-out", leaf, NULL };

		if (run(genkey) || run(req) || run(sign))
			return -1;
	}
	snprintf(cmd, sizeof(cmd), "cat '%s' '%s' > '%s'", leaf, pki("work/inter.pem"), pem);
	return system(cmd) ? -1 : 0;
}

TEST(peer_subject_with_a_newline_is_escaped)
{
	const char *be_args[] = { "--mode", "echo", NULL };
	char pem[512], key[512];
	struct backend be;
	struct kmtlsd d;

	if (access(pki("work/inter.key"), R_OK))
		SKIP(return, "the test PKI has no work/inter.key (selftests/lib/mkpki.sh makes it)");
	ASSERT_EQ(0, make_cert(test_tmpdir(), pem, key, sizeof(pem)))
		TH_LOG("openssl could not make the certificate");
	signal(SIGPIPE, SIG_IGN);
	ASSERT_EQ(0, backend_start(&be, be_args));
	ASSERT_EQ(0, kmtlsd_start(&d, be.port, NULL));
	EXPECT_EQ(1, client_ping(d.port, pem, key));
	EXPECT_EQ(0, kmtlsd_wait_log(&d, "O=acme\\x0a" FORGED, 5000));
	EXPECT_EQ(0, proc_log_count(&d.proc, "\n" FORGED));
	EXPECT_EQ(0, proc_log_count(&d.proc, "acme\n"));
	if (!__test_passed(_metadata))
		kmtlsd_dump_log(&d);
	EXPECT_EQ(0, kmtlsd_stop(&d));
	backend_stop(&be);
}

TEST_HARNESS_MAIN
