// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * LD_PRELOAD=steptime.so: time(2) that is one second later at every call,
 * from the real time of the first. A program that reads the clock twice
 * where it means one instant sees two (kmtlsctl pki init dates its root and
 * intermediate CAs from one reading: with this they still agree).
 */
#include <time.h>

time_t time(time_t *t)
{
	static time_t first;
	static unsigned int calls;
	struct timespec ts;
	time_t now;

	if (!first) {
		clock_gettime(CLOCK_REALTIME, &ts);
		first = ts.tv_sec;
	}
	now = first + __atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
	if (t)
		*t = now;
	return now;
}
