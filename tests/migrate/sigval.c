/* mig_sigval: queued signals (sigqueue) keep their value across a
 * migration (migrate.sh 3f).
 *   mig_sigval wait DIR   takes SIGRTMIN+1 with sigwaitinfo; writes
 *                         DIR/ready, then for each signal appends "VALUE
 *                         CODE" to DIR/got; exits 0 after value 0.
 *   mig_sigval send PID VALUE
 *                         sigqueue(PID, SIGRTMIN+1, VALUE). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int sig = SIGRTMIN + 1;
	if (argc == 4 && !strcmp(argv[1], "send")) {
		union sigval v = { .sival_int = atoi(argv[3]) };
		if (sigqueue(atoi(argv[2]), sig, v) < 0) {
			perror("sigqueue");
			return 1;
		}
		return 0;
	}
	if (argc != 3 || strcmp(argv[1], "wait")) {
		fprintf(stderr, "usage: mig_sigval wait DIR | send PID VALUE\n");
		return 2;
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_BLOCK, &set, NULL);
	char path[4096];
	snprintf(path, sizeof(path), "%s/ready", argv[2]);
	FILE *f = fopen(path, "w");
	if (f)
		fclose(f);
	snprintf(path, sizeof(path), "%s/got", argv[2]);
	for (;;) {
		siginfo_t si;
		if (sigwaitinfo(&set, &si) < 0)
			continue;
		f = fopen(path, "a");
		if (f) {
			fprintf(f, "%d %d\n", si.si_value.sival_int, si.si_code);
			fclose(f);
		}
		if (si.si_value.sival_int == 0)
			return 0;
	}
}
