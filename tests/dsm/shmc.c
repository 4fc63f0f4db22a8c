/* shmc.c — an ordinary program that shares a System V segment (no krg
 * code): run under `krg run -n N` on several nodes by tests/dsm/krgd.sh
 * and bench/dsm. The segment (8 pages at least) is laid out one use per
 * page so that each test moves its own pages:
 *   page 0  barrier words: [0] arrived, [1] done (count), [2] arrived (peterson), [3] mutex state
 *   page 1  the counter          page 2  Peterson's flags    page 3  Peterson's turn
 *   page 4  Peterson's critical section   page 5  a process-shared pthread mutex
 *   page 6  the mutex's critical section  page 7  free
 * Usage:
 *   shmc create KEY SIZE         shmget(IPC_CREAT | 0600): "id N"
 *   shmc count KEY NPROC N       wait for NPROC counters, add 1 N times with
 *                                __atomic_fetch_add (20 us apart), wait for
 *                                all: "count V"
 *   shmc peterson KEY ME N       ME 0 or 1: N entries into Peterson's critical
 *                                section: "peterson C violations V"
 *   shmc mutex KEY NPROC N       N entries into a section guarded by a
 *                                process-shared pthread mutex: "mutex C"
 *   shmc nattch KEY              "nattch N"
 *   shmc idstat ID               IPC_STAT by id: "nattch N dest D", or "gone"
 *   shmc hold KEY SECONDS        attach, write a word, sleep, exit attached
 *   shmc readmiss KEY PAGES      time the first read of PAGES pages after
 *                                page 8 (written elsewhere): "readmiss NS_PER_PAGE"
 *   shmc readskip KEY PAGES      the same for every other page of them (no
 *                                read-ahead: isolated misses): "readskip NS_PER_PAGE"
 *   shmc write KEY PAGES         write pages 8.. : "written NS_PER_PAGE"
 *   shmc rm KEY                  IPC_RMID: "removed"
 *   shmc forks KEY               fork inherits the attach (counted in
 *                                shm_nattch); a child's shmdt, exec and exit,
 *                                and the process's own exec end it: a line
 *                                per step, "exec uncounted" last
 *   shmc waitn KEY N             wait until shm_nattch is N
 *   shmc mover KEY T             (page 7, words 1-5) write 3*T into word 2,
 *                                set word 3 (ready), wait until word 4 is T
 *                                (migrated meanwhile), check word 2, write T+1
 *                                into word 5: "mover saw T own 3T"
 *   shmc poke KEY I V            word I of page 7 = V: "poked"
 *   shmc peek KEY I V            wait until word I of page 7 is V or more: "peek X"
 * Errors: one line on stderr, exit 1; bad usage exit 2. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PG 4096
#define WAIT_S 60

static int fail(const char *what)
{
	fprintf(stderr, "shmc: %s: %s\n", what, strerror(errno));
	return 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Wait until *w reaches n (WAIT_S at most). */
static int wait_for(uint64_t *w, uint64_t n, const char *what)
{
	uint64_t end = now_ns() + WAIT_S * 1000000000ull;
	while (__atomic_load_n(w, __ATOMIC_SEQ_CST) < n) {
		if (now_ns() > end) {
			fprintf(stderr, "shmc: %s: %llu of %llu after %d s\n", what,
				(unsigned long long)__atomic_load_n(w, __ATOMIC_SEQ_CST), (unsigned long long)n, WAIT_S);
			return 1;
		}
		usleep(200);
	}
	return 0;
}

static char *attach(const char *key)
{
	int id = shmget((key_t)strtol(key, NULL, 0), 0, 0);
	if (id < 0) {
		fail("shmget");
		return NULL;
	}
	char *p = shmat(id, NULL, 0);
	if (p == (void *)-1) {
		fail("shmat");
		return NULL;
	}
	return p;
}

static uint64_t *word(char *seg, int page, int i)
{
	return (uint64_t *)(seg + page * PG) + i;
}

static int peterson(char *s, int me, long n)
{
	int other = 1 - me;
	uint64_t *flag = word(s, 2, 0), *turn = word(s, 3, 0), *inside = word(s, 4, 0);
	volatile uint64_t *cs = word(s, 4, 1);
	uint64_t viol = 0;
	__atomic_fetch_add(word(s, 0, 2), 1, __ATOMIC_SEQ_CST);
	if (wait_for(word(s, 0, 2), 2, "the other Peterson process"))
		return 1;
	for (long i = 0; i < n; i++) {
		__atomic_store_n(&flag[me], 1, __ATOMIC_SEQ_CST);
		__atomic_store_n(turn, (uint64_t)other, __ATOMIC_SEQ_CST);
		while (__atomic_load_n(&flag[other], __ATOMIC_SEQ_CST) &&
		       __atomic_load_n(turn, __ATOMIC_SEQ_CST) == (uint64_t)other)
			sched_yield();
		if (__atomic_fetch_add(inside, 1, __ATOMIC_SEQ_CST) != 0)
			viol++;
		*cs = *cs + 1; /* plain: only mutual exclusion keeps it exact */
		__atomic_fetch_sub(inside, 1, __ATOMIC_SEQ_CST);
		__atomic_store_n(&flag[me], 0, __ATOMIC_SEQ_CST);
		usleep(20); /* the other side gets its turns */
	}
	__atomic_fetch_add(word(s, 0, 2), 1, __ATOMIC_SEQ_CST);
	if (wait_for(word(s, 0, 2), 4, "the other Peterson process to end"))
		return 1;
	printf("peterson %llu violations %llu\n", (unsigned long long)*cs, (unsigned long long)viol);
	return 0;
}

static int mutex(char *s, uint64_t nproc, long n)
{
	pthread_mutex_t *m = (pthread_mutex_t *)word(s, 5, 0);
	uint64_t *state = word(s, 0, 3), zero = 0;
	volatile uint64_t *cs = word(s, 6, 0);
	if (__atomic_compare_exchange_n(state, &zero, 1, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
		pthread_mutexattr_t a;
		pthread_mutexattr_init(&a);
		pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
		pthread_mutex_init(m, &a);
		__atomic_store_n(state, 2, __ATOMIC_SEQ_CST);
	}
	if (wait_for(state, 2, "the mutex's initialisation"))
		return 1;
	__atomic_fetch_add(word(s, 0, 4), 1, __ATOMIC_SEQ_CST);
	if (wait_for(word(s, 0, 4), nproc, "the other mutex processes"))
		return 1;
	for (long i = 0; i < n; i++) {
		if (pthread_mutex_lock(m))
			return fail("pthread_mutex_lock");
		uint64_t v = *cs;
		if (i % 4 == 0)
			usleep(50); /* hold it a while: the others must wait in futex_wait */
		*cs = v + 1;
		pthread_mutex_unlock(m);
	}
	__atomic_fetch_add(word(s, 0, 4), 1, __ATOMIC_SEQ_CST);
	if (wait_for(word(s, 0, 4), 2 * nproc, "the other mutex processes to end"))
		return 1;
	printf("mutex %llu\n", (unsigned long long)*cs);
	return 0;
}

/* shm_nattch of key's segment (IPC_STAT: the home's count), -1 on error. */
static long nattch_of(key_t key)
{
	struct shmid_ds ds;
	int id = shmget(key, 0, 0);
	if (id < 0 || shmctl(id, IPC_STAT, &ds) < 0)
		return -1;
	return (long)ds.shm_nattch;
}

/* Wait until key's shm_nattch is n (WAIT_S at most); 0, or 1 with a line. */
static int wait_nattch(key_t key, long n, const char *what)
{
	uint64_t end = now_ns() + WAIT_S * 1000000000ull;
	long v;
	while ((v = nattch_of(key)) != n) {
		if (v < 0)
			return fail("shmctl IPC_STAT");
		if (now_ns() > end) {
			fprintf(stderr, "shmc: %s: nattch %ld, not %ld, after %d s\n", what, v, n, WAIT_S);
			return 1;
		}
		usleep(2000);
	}
	return 0;
}

/* shmc forks KEY: fork inherits the attach, which shm_nattch counts;
 * the child's shmdt, exec and exit each end it; so does the parent's
 * exec (into "shmc waitn KEY BASE"). */
static int forks(const char *self, const char *keys)
{
	key_t key = (key_t)strtol(keys, NULL, 0);
	long base = nattch_of(key);
	if (base < 0)
		return fail("shmctl IPC_STAT");
	char *s = attach(keys);
	if (!s || wait_nattch(key, base + 1, "shmat"))
		return 1;
	volatile uint64_t *mark = word(s, 7, 1), *go = word(s, 7, 2);
	*mark = 0;
	*go = 0;
	/* 1. a child that writes, then detaches */
	pid_t c = fork();
	if (c < 0)
		return fail("fork");
	if (c == 0) {
		*mark = 0xa11;
		while (!*go)
			usleep(1000);
		_exit(shmdt(s) == 0 ? 0 : 3);
	}
	if (wait_nattch(key, base + 2, "the forked child's attach counted"))
		return 1;
	while (*mark != 0xa11)
		usleep(1000);
	*go = 1;
	int st;
	if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "shmc: the child's shmdt failed (status %#x)\n", st);
		return 1;
	}
	if (wait_nattch(key, base + 1, "the child's shmdt uncounted"))
		return 1;
	printf("fork counted, child shmdt uncounted\n");
	/* 2. a child that execs (and lives on): its attach ends at the exec */
	if ((c = fork()) < 0)
		return fail("fork");
	if (c == 0) {
		execlp("sleep", "sleep", "30", (char *)NULL);
		_exit(127);
	}
	if (wait_nattch(key, base + 1, "the exec'ing child's attach ended")) {
		kill(c, SIGKILL);
		return 1;
	}
	if (waitpid(c, &st, WNOHANG) != 0) {
		fprintf(stderr, "shmc: the exec'ing child ended early (status %#x)\n", st);
		return 1;
	}
	kill(c, SIGKILL);
	waitpid(c, &st, 0);
	printf("child exec uncounted\n");
	/* 3. a child that exits attached */
	if ((c = fork()) < 0)
		return fail("fork");
	if (c == 0)
		_exit(0);
	waitpid(c, &st, 0);
	if (wait_nattch(key, base + 1, "the exited child's attach ended"))
		return 1;
	printf("child exit uncounted\n");
	fflush(stdout);
	/* 4. the parent's own exec */
	char b[32];
	snprintf(b, sizeof b, "%ld", base);
	execl(self, "shmc", "waitn", keys, b, (char *)NULL);
	return fail("exec");
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: shmc create|count|peterson|mutex|nattch|hold|readmiss|readskip|write|rm|forks|waitn|mover|poke|peek KEY ...\n");
		return 2;
	}
	const char *a = argv[1];
	key_t key = (key_t)strtol(argv[2], NULL, 0);
	if (!strcmp(a, "create") && argc == 4) {
		int id = shmget(key, (size_t)strtoul(argv[3], NULL, 0), IPC_CREAT | 0600);
		if (id < 0)
			return fail("shmget");
		printf("id %d\n", id);
		return 0;
	}
	if (!strcmp(a, "idstat")) {
		struct shmid_ds ds;
		if (shmctl(atoi(argv[2]), IPC_STAT, &ds) < 0) {
			if (errno != EINVAL && errno != EIDRM)
				return fail("shmctl");
			printf("gone\n");
			return 0;
		}
		printf("nattch %llu dest %d\n", (unsigned long long)ds.shm_nattch, !!(ds.shm_perm.mode & SHM_DEST));
		return 0;
	}
	if (!strcmp(a, "forks"))
		return forks(argv[0], argv[2]);
	if (!strcmp(a, "waitn") && argc == 4) {
		if (wait_nattch(key, strtol(argv[3], NULL, 0), "after exec"))
			return 1;
		printf("exec uncounted\n");
		return 0;
	}
	if (!strcmp(a, "nattch") || !strcmp(a, "rm")) {
		struct shmid_ds ds;
		int id = shmget(key, 0, 0);
		if (id < 0)
			return fail("shmget");
		if (shmctl(id, !strcmp(a, "rm") ? IPC_RMID : IPC_STAT, &ds) < 0)
			return fail("shmctl");
		if (!strcmp(a, "rm"))
			printf("removed\n");
		else
			printf("nattch %llu\n", (unsigned long long)ds.shm_nattch);
		return 0;
	}
	if (argc < 4) {
		fprintf(stderr, "shmc: %s: missing arguments\n", a);
		return 2;
	}
	char *s = attach(argv[2]);
	if (!s)
		return 1;
	long n = strtol(argv[argc - 1], NULL, 0);
	if (!strcmp(a, "count") && argc == 5) {
		uint64_t nproc = strtoull(argv[3], NULL, 0);
		__atomic_fetch_add(word(s, 0, 0), 1, __ATOMIC_SEQ_CST);
		if (wait_for(word(s, 0, 0), nproc, "the other counters"))
			return 1;
		/* A pause between bumps makes the loops of the nodes overlap
		 * (without, one node does all of its bumps while it holds the
		 * page, and the page hardly moves). */
		for (long i = 0; i < n; i++) {
			__atomic_fetch_add(word(s, 1, 0), 1, __ATOMIC_SEQ_CST);
			usleep(20);
		}
		__atomic_fetch_add(word(s, 0, 1), 1, __ATOMIC_SEQ_CST);
		if (wait_for(word(s, 0, 1), nproc, "the other counters to end"))
			return 1;
		printf("count %llu\n", (unsigned long long)__atomic_load_n(word(s, 1, 0), __ATOMIC_SEQ_CST));
	} else if (!strcmp(a, "peterson") && argc == 5) {
		return peterson(s, atoi(argv[3]) ? 1 : 0, n);
	} else if (!strcmp(a, "mutex") && argc == 5) {
		return mutex(s, strtoull(argv[3], NULL, 0), n);
	} else if (!strcmp(a, "hold") && argc == 4) {
		__atomic_fetch_add(word(s, 7, 0), 1, __ATOMIC_SEQ_CST);
		sleep((unsigned)n);
	} else if (!strcmp(a, "mover") && argc == 4) {
		uint64_t t = (uint64_t)n;
		__atomic_store_n(word(s, 7, 2), 3 * t, __ATOMIC_SEQ_CST);
		__atomic_store_n(word(s, 7, 3), 1, __ATOMIC_SEQ_CST);
		if (wait_for(word(s, 7, 4), t, "the go after the migration"))
			return 1;
		uint64_t own = __atomic_load_n(word(s, 7, 2), __ATOMIC_SEQ_CST);
		__atomic_store_n(word(s, 7, 5), t + 1, __ATOMIC_SEQ_CST);
		printf("mover saw %llu own %llu\n", (unsigned long long)__atomic_load_n(word(s, 7, 4), __ATOMIC_SEQ_CST),
		       (unsigned long long)own);
	} else if ((!strcmp(a, "poke") || !strcmp(a, "peek")) && argc == 5) {
		long i = strtol(argv[3], NULL, 0);
		if (i < 1 || i > 5) {
			fprintf(stderr, "shmc: %s: word %ld is not 1-5\n", a, i);
			return 2;
		}
		if (!strcmp(a, "poke")) {
			__atomic_store_n(word(s, 7, (int)i), (uint64_t)n, __ATOMIC_SEQ_CST);
			printf("poked\n");
		} else {
			if (wait_for(word(s, 7, (int)i), (uint64_t)n, "peek"))
				return 1;
			printf("peek %llu\n", (unsigned long long)__atomic_load_n(word(s, 7, (int)i), __ATOMIC_SEQ_CST));
		}
	} else if (!strcmp(a, "write") && argc == 4) {
		uint64_t t0 = now_ns();
		for (long i = 0; i < n; i++)
			*(volatile uint64_t *)word(s, 8 + (int)i, 0) = (uint64_t)i + 1;
		printf("written %llu\n", (unsigned long long)((now_ns() - t0) / (uint64_t)n));
	} else if ((!strcmp(a, "readmiss") || !strcmp(a, "readskip")) && argc == 4) {
		long step = !strcmp(a, "readskip") ? 2 : 1, read = 0;
		uint64_t t0 = now_ns(), bad = 0;
		for (long i = 0; i < n; i += step, read++)
			bad += *(volatile uint64_t *)word(s, 8 + (int)i, 0) != (uint64_t)i + 1;
		uint64_t t = now_ns() - t0;
		if (bad) {
			fprintf(stderr, "shmc: %s: %llu pages without the bytes written\n", a, (unsigned long long)bad);
			return 1;
		}
		printf("%s %llu\n", a, (unsigned long long)(t / (uint64_t)(read ? read : 1)));
	} else {
		fprintf(stderr, "shmc: bad arguments for %s\n", a);
		return 2;
	}
	return 0;
}
