/* ids.c — what a process knows itself by, across migrations (issue 14
 * item 12). Four threads (main and three others) each keep their gettid()
 * up to date; on SIGUSR1 the main thread appends one line to the file
 * argv[1] (and once at start):
 *     pid=P ppid=Q tids=T0,T1,T2,T3
 * so that pids.sh compares the line written at home with those written
 * after each move. Runs until SIGTERM. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NT 4
static _Atomic pid_t tids[NT];
static volatile sig_atomic_t asked = 1; /* a first line at start */

static void on_usr1(int sig)
{
	(void)sig;
	asked = 1;
}

static void *run(void *arg)
{
	int i = (int)(long)arg;
	for (;;) {
		tids[i] = (pid_t)syscall(SYS_gettid);
		usleep(5000);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: mig_ids FILE\n");
		return 2;
	}
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	/* Only the main thread takes SIGUSR1: the others start with it blocked. */
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	for (long i = 1; i < NT; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, run, (void *)i)) {
			fprintf(stderr, "mig_ids: pthread_create failed\n");
			return 1;
		}
	}
	signal(SIGUSR1, on_usr1);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	for (;;) {
		tids[0] = (pid_t)syscall(SYS_gettid);
		usleep(5000);
		if (!asked)
			continue;
		asked = 0;
		/* Every thread has run since the signal (wherever it runs now). */
		for (int i = 1; i < NT; i++)
			tids[i] = 0;
		for (int n = 0; n < 400; n++) {
			int all = 1;
			for (int i = 1; i < NT; i++)
				all &= tids[i] != 0;
			if (all)
				break;
			usleep(5000);
		}
		FILE *f = fopen(argv[1], "a");
		if (!f)
			return 1;
		fprintf(f, "pid=%d ppid=%d tids=%d,%d,%d,%d\n", (int)getpid(), (int)getppid(), (int)tids[0], (int)tids[1],
			(int)tids[2], (int)tids[3]);
		fclose(f);
	}
}
