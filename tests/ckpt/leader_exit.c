/* A thread group whose leader has exited (issue 14 item 7): main starts
 * two threads that count, then pthread_exit()s, so the leader is a zombie
 * thread while the process runs on. After restart (and migrations) both
 * threads still count, getpid() and each gettid() are what they were,
 * /proc/self/status still says 3 threads and the leader is still a zombie
 * (as the kernel keeps it until the last thread exits). */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include "zdtm.h"

static pid_t pid0;
static pid_t tid0[2];
static volatile uint64_t count[2];
static volatile int started;

/* A field of /proc/self/status as a number, -1 if absent. */
static long status_field(const char *path, const char *name)
{
	char buf[4096];
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *p = strstr(buf, name);
	return p ? atol(p + strlen(name)) : -1;
}

/* The leader's state letter, from /proc/PID/task/PID/stat. */
static char leader_state(void)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid0, pid0);
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return '?';
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	return p ? p[2] : '?';
}

/* What each counting thread saw last: its getpid() and gettid(). */
static volatile pid_t now_pid[2], now_tid[2];

static void *counter(void *arg)
{
	int i = (int)(intptr_t)arg;
	tid0[i] = (pid_t)syscall(SYS_gettid);
	__atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
	for (;;) {
		count[i]++;
		now_pid[i] = getpid();
		now_tid[i] = (pid_t)syscall(SYS_gettid);
		usleep(1000);
	}
	return NULL;
}

static void *checker(void *arg)
{
	/* Ready once the leader is gone (a zombie). */
	while (leader_state() != 'Z')
		usleep(1000);
	long threads = status_field("/proc/self/status", "\nThreads:");
	test_ready((char **)arg);
	while (!zdtm_go)
		usleep(1000);
	/* Every thread's getpid() and gettid() are the kernel's ids of this
	 * process and its threads. That they are the ids from before is
	 * checked by run.sh from outside (the restored pid) and here for the
	 * tids; a migration back home restores beside the deputy under other
	 * ids for now (docs/migration.md, "Limits now"), so a changed pid
	 * allows changed tids. */
	pid_t self = getpid();
	bool moved = self != pid0;
	pid0 = self;  /* the leader to look at */
	char tp[64];
	if (leader_state() != 'Z')
		fail("the leader is in state %c, not a zombie", leader_state());
	long now = status_field("/proc/self/status", "\nThreads:");
	if (now != threads)
		fail("Threads: %ld, was %ld", now, threads);
	/* Both still count after the restart, under their own ids. */
	uint64_t a = count[0], b = count[1];
	usleep(100000);
	if (count[0] <= a || count[1] <= b)
		fail("a thread stopped counting: %llu -> %llu, %llu -> %llu", (unsigned long long)a, (unsigned long long)count[0],
		     (unsigned long long)b, (unsigned long long)count[1]);
	for (int i = 0; i < 2; i++) {
		snprintf(tp, sizeof(tp), "/proc/%d/task/%d", self, now_tid[i]);
		if (now_pid[i] != self || access(tp, F_OK) < 0 || (!moved && now_tid[i] != tid0[i]))
			fail("thread %d: getpid %d gettid %d, were %d %d", i, now_pid[i], now_tid[i], self, tid0[i]);
	}
	pass();  /* exit() from a thread ends the whole group */
	return NULL;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	pid0 = getpid();
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, counter, (void *)(intptr_t)i))
			fail("pthread_create");
	while (__atomic_load_n(&started, __ATOMIC_SEQ_CST) < 2)
		usleep(1000);
	pthread_t c;
	if (pthread_create(&c, NULL, checker, argv))
		fail("pthread_create");
	pthread_detach(c);
	(void)t;
	pthread_exit(NULL);
}
