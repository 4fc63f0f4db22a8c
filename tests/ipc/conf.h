/* conf.h — shared helpers for the System V IPC conformance programs
 * (tests/ipc/NAME.c), in the manner of the Linux Test Project's ipc tests:
 * each program checks one call and its errors against real behaviour,
 * prints one line per failed check and exits 0 only if every check
 * passed. The same programs run natively (suite ipc-native) and, later,
 * under krg with their roles on different nodes:
 *
 *   prog                       both roles: forks its own peer
 *   prog --role=creator KEY    creates the objects under KEY, removes them
 *   prog --role=peer KEY       finds them by KEY and plays the other side
 *
 * Objects use keys derived from the pid (or IPC_PRIVATE) and are removed
 * at exit. Every program arms an alarm so a hang is a failure, not a stall. */
#pragma once
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_STAT_ANY
#define MSG_STAT_ANY 13
#endif
#ifndef SEM_STAT_ANY
#define SEM_STAT_ANY 20
#endif
#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

#define NOBODY_UID 65534
#define NOBODY_GID 65534

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
	struct seminfo *__buf;
};

static const char *conf_prog = "?";
static int conf_failed;
static int conf_checks;

/* Records one check; a failure prints one line naming the program and line. */
#define CHECK(cond, ...) conf_check(!!(cond), __LINE__, __VA_ARGS__)
static inline void conf_check(int ok, int line, const char *fmt, ...)
{
	conf_checks++;
	if (ok)
		return;
	conf_failed++;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	printf("FAIL %s:%d: %s\n", conf_prog, line, msg);
	fflush(stdout);
}

/* A call that must fail with errno e. */
#define CHECK_ERR(call, e, what)                                                                  \
	do {                                                                                      \
		errno = 0;                                                                        \
		long _r = (long)(call);                                                           \
		int _e = errno;                                                                   \
		conf_check(_r == -1 && _e == (e), __LINE__, "%s: got %ld errno %d (%s), want -1 %s", \
			(what), _r, _e, strerror(_e), #e);                                        \
	} while (0)

/* A call that must succeed (>= 0); its value. */
#define CHECK_OK(call, what)                                                                      \
	({                                                                                        \
		errno = 0;                                                                        \
		long _r = (long)(call);                                                           \
		conf_check(_r >= 0, __LINE__, "%s: got %ld errno %d (%s)", (what), _r, errno,     \
			strerror(errno));                                                         \
		_r;                                                                               \
	})

/* The exit status: 0 only if every check passed and there were checks. */
static inline int conf_done(void)
{
	if (!conf_checks) {
		printf("FAIL %s: no check ran\n", conf_prog);
		return 1;
	}
	return conf_failed ? 1 : 0;
}

/* ---- objects, removed at exit ------------------------------------------ */

static int conf_msq[64], conf_nmsq, conf_sem[64], conf_nsem;
static pid_t conf_owner;

static void conf_cleanup(void)
{
	if (getpid() != conf_owner)
		return;
	for (int i = 0; i < conf_nmsq; i++)
		msgctl(conf_msq[i], IPC_RMID, NULL);
	for (int i = 0; i < conf_nsem; i++)
		semctl(conf_sem[i], 0, IPC_RMID);
}

static inline int conf_track_msq(int id)
{
	if (id >= 0 && conf_nmsq < 64)
		conf_msq[conf_nmsq++] = id;
	return id;
}

static inline int conf_track_sem(int id)
{
	if (id >= 0 && conf_nsem < 64)
		conf_sem[conf_nsem++] = id;
	return id;
}

static void conf_alarm(int sig)
{
	static const char m[] = "FAIL: timed out (a call hung)\n";
	(void)sig;
	if (write(1, m, sizeof m - 1) < 0)
		_exit(3);
	_exit(2);
}

/* Program start: name, cleanup at exit, a watchdog of secs. */
static inline void conf_init(const char *prog, unsigned secs)
{
	conf_prog = prog;
	conf_owner = getpid();
	atexit(conf_cleanup);
	signal(SIGALRM, conf_alarm);
	alarm(secs);
	setvbuf(stdout, NULL, _IOLBF, 0);
}

/* A key of this run: the pid in the high bits, salt in the low ones. */
static inline key_t conf_key(int salt)
{
	return (key_t)((((unsigned)getpid() & 0x3fffff) << 8) | ((unsigned)salt & 0xff) | 0x40000000u);
}

/* ---- roles ------------------------------------------------------------------ */

enum conf_role { ROLE_BOTH, ROLE_CREATOR, ROLE_PEER };

/* Parses [--role=creator|peer KEY]. Bad arguments: one line, exit 2. */
static inline enum conf_role conf_role(int argc, char **argv, key_t *key)
{
	if (argc == 1)
		return ROLE_BOTH;
	if (argc == 3) {
		char *end;
		unsigned long k = strtoul(argv[2], &end, 0);
		if (*end || !argv[2][0] || k > 0xffffffffUL) {
			fprintf(stderr, "%s: bad KEY '%s'\n", conf_prog, argv[2]);
			exit(2);
		}
		*key = (key_t)k;
		if (!strcmp(argv[1], "--role=creator"))
			return ROLE_CREATOR;
		if (!strcmp(argv[1], "--role=peer"))
			return ROLE_PEER;
	}
	fprintf(stderr, "usage: %s [--role=creator KEY | --role=peer KEY]\n", conf_prog);
	exit(2);
}

/* For programs with one role only: --role=creator KEY sets the key;
 * --role=peer is refused (a runner must not wait for a peer there). */
static inline void conf_single_role(int argc, char **argv, key_t *key)
{
	if (conf_role(argc, argv, key) == ROLE_PEER) {
		fprintf(stderr, "%s: no peer role: run it alone or as creator\n", conf_prog);
		exit(2);
	}
}

/* Runs the peer in a child when one program plays both roles; the
 * child's failures are printed by it and counted through its status. */
static inline pid_t conf_fork_peer(int (*peer)(key_t), key_t key)
{
	fflush(stdout);
	pid_t p = fork();
	if (p < 0) {
		CHECK(0, "fork: %s", strerror(errno));
		return -1;
	}
	if (p == 0) {
		conf_owner = 0;      /* the creator removes the objects */
		int r = peer(key);
		fflush(stdout);
		_exit(r);
	}
	return p;
}

/* Waits for a child; its exit status must be 0. */
static inline void conf_wait(pid_t p, const char *what)
{
	int st;
	if (p <= 0)
		return;
	while (waitpid(p, &st, 0) < 0)
		if (errno != EINTR) {
			CHECK(0, "waitpid %s: %s", what, strerror(errno));
			return;
		}
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s ended with status 0x%x", what, st);
}

/* ---- helpers ------------------------------------------------------------------ */

/* Sleeps ms milliseconds (restarted across signals). */
static inline void conf_msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static inline double conf_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Waits until msgget(key, 0) finds the queue (the creator made it). */
static inline int conf_find_msq(key_t key)
{
	for (int i = 0; i < 2000; i++) {
		int id = msgget(key, 0);
		if (id >= 0)
			return id;
		conf_msleep(5);
	}
	CHECK(0, "queue with key 0x%x never appeared", (unsigned)key);
	return -1;
}

static inline int conf_find_sem(key_t key, int nsems)
{
	for (int i = 0; i < 2000; i++) {
		int id = semget(key, nsems, 0);
		if (id >= 0)
			return id;
		conf_msleep(5);
	}
	CHECK(0, "semaphore set with key 0x%x never appeared", (unsigned)key);
	return -1;
}

/* Waits until semctl(cmd) on semnum reaches want (GETNCNT, GETZCNT, GETVAL):
 * how a peer knows the other side is blocked. */
static inline int conf_wait_semctl(int id, int semnum, int cmd, int want)
{
	int v = -1;
	for (int i = 0; i < 2000; i++) {
		v = semctl(id, semnum, cmd);
		if (v == want)
			return 1;
		conf_msleep(5);
	}
	CHECK(0, "semctl(%d, %d, cmd %d) stayed %d, want %d", id, semnum, cmd, v, want);
	return 0;
}

/* A peer's start beside a queue and a one-semaphore set under key: both
 * found (*id, *sem), then the semaphore's value reaches go (the creator's
 * signal). 0, or -1 (said). */
static inline int conf_peer_start(key_t key, int go, int *id, int *sem)
{
	*id = conf_find_msq(key);
	*sem = conf_find_sem(key, 1);
	if (*id < 0 || *sem < 0)
		return -1;
	conf_wait_semctl(*sem, 0, GETVAL, go);
	return 0;
}

/* Drops to nobody in this process (a child): non-root checks. */
static inline int conf_become_nobody(void)
{
	if (setgroups(0, NULL) < 0 || setgid(NOBODY_GID) < 0 || setuid(NOBODY_UID) < 0) {
		printf("FAIL %s: cannot become nobody (%s); run as root\n", conf_prog, strerror(errno));
		return -1;
	}
	return 0;
}

/* Runs fn(arg) as nobody in a child; its checks count through its status. */
static inline void conf_as_nobody(void (*fn)(void *), void *arg)
{
	fflush(stdout);
	pid_t p = fork();
	if (p == 0) {
		conf_owner = 0;
		conf_failed = 0;
		if (conf_become_nobody() < 0)
			_exit(1);
		fn(arg);
		fflush(stdout);
		_exit(conf_failed ? 1 : 0);
	}
	conf_wait(p, "the nobody child");
}

struct conf_msg {
	long mtype;
	char mtext[8192];
};
