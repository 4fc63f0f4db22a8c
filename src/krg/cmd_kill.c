/* krg kill — send a signal to krg processes by cluster-wide id, from any
 * node. The node that runs the process decides whether the caller may. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "api/client.h"
#include "krg/cli.h"
#include "lib/nodelist.h"
#include "proc/procid.h"
#include "proto/node.pb-c.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: krg kill [-SIGNAL | -s SIGNAL] [--socket PATH] ID...\n"
		   "       krg kill -l\n"
		   "\n"
		   "Send SIGNAL (default TERM) to the krg processes with these cluster-wide ids\n"
		   "(as krg ps shows them), wherever they run. SIGNAL is a number or a name,\n"
		   "with or without SIG (-9, -KILL, -SIGKILL, -s TERM). You may signal your own\n"
		   "processes (real or saved uid); root may signal any krg process.\n"
		   "Exit status 0 if every signal was sent, 1 otherwise, 2 on bad usage.\n");
}

/* Signal by number or name; -1 if unknown. */
static int parse_signal(const char *s)
{
	if (isdigit((unsigned char)*s)) {
		char *end;
		long v = strtol(s, &end, 10);
		return *end || v < 0 || v > SIGRTMAX ? -1 : (int)v;
	}
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (int i = 1; i < SIGRTMIN; i++) {
		const char *n = sigabbrev_np(i);
		if (n && !strcasecmp(s, n))
			return i;
	}
	if (!strncasecmp(s, "RTMIN", 5) || !strncasecmp(s, "RTMAX", 5)) {
		bool min = !strncasecmp(s, "RTMIN", 5);
		long off = 0;
		if (s[5]) {
			char *end;
			off = strtol(s + 5, &end, 10);
			if (*end || (min ? off < 0 : off > 0))
				return -1;
		}
		long v = (min ? SIGRTMIN : SIGRTMAX) + off;
		return v >= SIGRTMIN && v <= SIGRTMAX ? (int)v : -1;
	}
	return -1;
}

/* A cluster-wide id: decimal, home node < 256, pid part non-zero. */
static int parse_id(const char *s, uint32_t *out)
{
	if (!*s)
		return -EINVAL;
	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, NULL, 10);
	if (errno || v == 0 || (v & KRG_PID_MASK) == 0 || (v >> KRG_PID_BITS) >= KRG_MAX_NODES)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static void list_signals(void)
{
	for (int i = 1; i < SIGRTMIN; i++) {
		const char *n = sigabbrev_np(i);
		if (n)
			printf("%2d %s\n", i, n);
	}
}

/* Not getopt: kill(1)'s "-9", "-KILL", "-SIGKILL" are signals, not
 * option letters, and getopt would read "-KILL" as -K -I -L -L. */
int cmd_kill(int argc, char **argv)
{
	const char *sock = NULL;
	int sig = SIGTERM, i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (a[0] != '-' || !a[1])
			break;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(a, "-l") || !strcmp(a, "--list")) {
			list_signals();
			return 0;
		}
		if (!strcmp(a, "--socket") || !strcmp(a, "-s")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "krg kill: %s needs an argument (see krg kill --help)\n", a);
				return KRG_EXIT_USAGE;
			}
			if (a[2] == 's' && a[1] == '-') {
				sock = argv[++i];
				continue;
			}
			a = argv[++i];
		} else if (!strncmp(a, "--socket=", 9)) {
			sock = a + 9;
			continue;
		} else
			a++;
		if ((sig = parse_signal(a)) < 0) {
			fprintf(stderr, "krg kill: unknown signal '%s' (krg kill -l lists them)\n", a);
			return KRG_EXIT_USAGE;
		}
	}
	if (i >= argc) {
		fprintf(stderr, "krg kill: no process id given (see krg kill --help)\n");
		return KRG_EXIT_USAGE;
	}
	int rc = 0;
	for (; i < argc; i++) {
		uint32_t id;
		if (parse_id(argv[i], &id) < 0) {
			fprintf(stderr, "krg kill: '%s': not a krg process id (see krg ps)\n", argv[i]);
			rc = 1;
			continue;
		}
		Krg__Node__ProcKill k = KRG__NODE__PROC_KILL__INIT;
		k.id = id;
		k.signal = sig; /* uid: krgd takes it from the socket */
		uint8_t body[32];
		size_t len = krg__node__proc_kill__pack(&k, body);
		char err[512];
		int r = krg_api_call(krg_api_socket_path(sock), "proc.kill", body, len, 10000, NULL, NULL, err,
				     sizeof(err));
		if (r < 0) {
			fprintf(stderr, "krg kill: %s: %s\n", argv[i], err);
			rc = 1;
		}
	}
	return rc;
}
