/* pidns: restarted with --new-pidns, getpid() and every thread's gettid()
 * come back as they were before the checkpoint (clone3 set_tid in a fresh
 * pid namespace), and /proc is the namespace's own: /proc/self is
 * /proc/<getpid()>. The ids are also written to ./ids for the driver. */
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include "zdtm.h"

#define NT 3
static pid_t pid0, tid0[NT];
static volatile int bad[NT], started;

static void *thread(void *arg)
{
	int i = (int)(long)arg;
	tid0[i] = (pid_t)syscall(SYS_gettid);
	__atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
	while (!zdtm_go) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	bad[i] = (pid_t)syscall(SYS_gettid) != tid0[i] || getpid() != pid0;
	return NULL;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	pid0 = (pid_t)syscall(SYS_getpid);
	pthread_t th[NT];
	for (long i = 0; i < NT; i++)
		if (pthread_create(&th[i], NULL, thread, (void *)i))
			fail("pthread_create");
	while (__atomic_load_n(&started, __ATOMIC_SEQ_CST) < NT)
		usleep(1000);
	FILE *f = fopen("ids", "we");
	if (!f)
		fail("ids");
	fprintf(f, "%d", pid0);
	for (int i = 0; i < NT; i++)
		fprintf(f, " %d", tid0[i]);
	fprintf(f, "\n");
	fclose(f);
	test_ready(argv);
	test_wait();
	pid_t now = (pid_t)syscall(SYS_getpid);
	for (int i = 0; i < NT; i++)
		pthread_join(th[i], NULL);
	if (now != pid0)
		fail("getpid() %d, was %d", now, pid0);
	char self[64] = "", mine[64];
	ssize_t n = readlink("/proc/self", self, sizeof(self) - 1);
	snprintf(mine, sizeof(mine), "%d", now);
	if (n <= 0 || (self[n] = 0, strcmp(self, mine)))
		fail("/proc/self is %s, getpid() %d: not this namespace's /proc", n > 0 ? self : "unreadable", now);
	for (int i = 0; i < NT; i++)
		if (bad[i])
			fail("thread %d: gettid() changed (was %d)", i, tid0[i]);
	pass();
}
