/* icpt.c — System V IPC calls for tests/intercept: an unmodified program,
 * run under `krg run` (its calls served by krgd) or outside krg (the
 * node's own IPC). One action per run; prints one line, exit 0 if the
 * action behaved, 1 otherwise.
 *
 *   icpt send KEY TYPE TEXT      msgget(KEY, IPC_CREAT) + msgsnd
 *   icpt recv KEY TYPE           msgrcv (blocking), prints the text
 *   icpt exists KEY              msgget(KEY, 0): "id N" or "errno NAME"
 *   icpt rm KEY                  msgctl(IPC_RMID)
 *   icpt qnum KEY                msgctl(IPC_STAT): "qnum N"
 *   icpt recv-sig KEY restart|norestart
 *                                SIGUSR1 handler (SA_RESTART or not), then
 *                                a blocking msgrcv; writes "ready" to
 *                                stderr first. Prints "eintr handled=1",
 *                                or "got TEXT handled=N" if restarted
 *   icpt undo KEY                semget + semop(+1, SEM_UNDO), exit
 *   icpt semval KEY              semctl(GETVAL): "val N"
 *   icpt fault                   garbage pointers in every call: EFAULT
 *   icpt abi                     the x32 and i386 entry points: ENOSYS
 *   icpt shm-get KEY SIZE        shmget(KEY, SIZE, IPC_CREAT): "shm id N"
 *   icpt shm-stat KEY            shmctl(IPC_STAT): "size N nattch N cpid-is-me Y|N"
 *   icpt shm-at KEY              shmat: "attached", or "errno NAME"
 *   icpt shm-count KEY N         shmat, wait (10 s at most) until a second
 *                                shm-count is attached too, then N atomic
 *                                increments of the segment's first word:
 *                                "count done"
 *   icpt shm-read KEY            shmat: "value N" (the first word)
 *   icpt shm-atdt KEY            shmat, shmdt: "detached unmapped" when
 *                                shmdt returned 0 and the range is gone */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct msg {
	long mtype;
	char text[256];
};

static volatile sig_atomic_t handled;

static void on_usr1(int sig)
{
	(void)sig;
	handled++;
}

static int qid(const char *key, int flags)
{
	return msgget((key_t)strtol(key, NULL, 0), flags);
}

static int bad(const char *what)
{
	printf("FAIL %s: %s\n", what, strerror(errno));
	return 1;
}

static int expect_efault(const char *what, long r)
{
	if (r != -1 || errno != EFAULT) {
		printf("FAIL %s: %ld (%s), expected EFAULT\n", what, r, r == -1 ? strerror(errno) : "no error");
		return 1;
	}
	return 0;
}

static int faults(void)
{
	int q = msgget(IPC_PRIVATE, 0600), s = semget(IPC_PRIVATE, 2, 0600), f = 0;
	if (q < 0 || s < 0)
		return bad("msgget/semget");
	void *g = (void *)16;  /* never mapped */
	f |= expect_efault("msgsnd", syscall(SYS_msgsnd, q, g, 10, 0));
	struct msg m = { 1, "x" };
	if (msgsnd(q, &m, 1, 0) < 0)
		return bad("msgsnd");
	f |= expect_efault("msgrcv", syscall(SYS_msgrcv, q, g, 10, 0, 0));
	f |= expect_efault("msgctl IPC_STAT", syscall(SYS_msgctl, q, IPC_STAT, g));
	f |= expect_efault("msgctl IPC_SET", syscall(SYS_msgctl, q, IPC_SET, g));
	f |= expect_efault("semop", syscall(SYS_semop, s, g, 1));
	struct sembuf op = { 0, 1, 0 };
	f |= expect_efault("semtimedop timeout", syscall(SYS_semtimedop, s, &op, 1, g));
	f |= expect_efault("semctl GETALL", syscall(SYS_semctl, s, 0, GETALL, g));
	f |= expect_efault("semctl SETALL", syscall(SYS_semctl, s, 0, SETALL, g));
	f |= expect_efault("semctl IPC_STAT", syscall(SYS_semctl, s, 0, IPC_STAT, g));
	/* A pointer into the kernel half is as bad. */
	f |= expect_efault("msgsnd kernel address", syscall(SYS_msgsnd, q, (void *)0xffff800000000000ul, 10, 0));
	/* Still served after all that. */
	struct msqid_ds ds;
	if (msgctl(q, IPC_STAT, &ds) < 0 || ds.msg_qnum != 0)
		return bad("msgctl after faults");
	msgctl(q, IPC_RMID, NULL);
	semctl(s, 0, IPC_RMID);
	if (!f)
		printf("faults ok\n");
	return f;
}

static int abi(void)
{
	int f = 0;
	long r = syscall(SYS_msgget | 0x40000000, IPC_PRIVATE, 0600);
	if (r != -1 || errno != ENOSYS)
		printf("FAIL x32 msgget: %ld %s\n", r, strerror(errno)), f = 1;
	/* i386 ipc(2): MSGGET = 13. int $0x80 from 64-bit code is the i386 entry. */
	long ret;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(117), "b"(13), "c"(0), "d"(0600) : "memory");
	if (ret != -ENOSYS)
		printf("FAIL i386 ipc(MSGGET): %ld\n", ret), f = 1;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(399), "b"(0), "c"(0600) : "memory");
	if (ret != -ENOSYS)
		printf("FAIL i386 msgget: %ld\n", ret), f = 1;
	/* Everything else still runs natively through the i386 entry. */
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(20) : "memory"); /* getpid */
	if (ret != getpid())
		printf("FAIL i386 getpid: %ld\n", ret), f = 1;
	if (!f)
		printf("abi ok\n");
	return f;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	const char *a = argv[1];
	struct msg m = { 0 };
	if (!strcmp(a, "send") && argc == 5) {
		int q = qid(argv[2], IPC_CREAT | 0600);
		m.mtype = atol(argv[3]);
		snprintf(m.text, sizeof(m.text), "%s", argv[4]);
		if (q < 0 || msgsnd(q, &m, strlen(m.text) + 1, 0) < 0)
			return bad("send");
		printf("sent\n");
	} else if (!strcmp(a, "recv") && argc == 4) {
		int q = qid(argv[2], IPC_CREAT | 0600);
		if (q < 0 || msgrcv(q, &m, sizeof(m.text), atol(argv[3]), 0) < 0)
			return bad("recv");
		printf("got %s type %ld\n", m.text, m.mtype);
	} else if (!strcmp(a, "exists") && argc == 3) {
		int q = qid(argv[2], 0);
		if (q < 0)
			printf("errno %s\n", errno == ENOENT ? "ENOENT" : strerror(errno));
		else
			printf("id %d\n", q);
	} else if (!strcmp(a, "rm") && argc == 3) {
		int q = qid(argv[2], 0);
		if (q < 0 || msgctl(q, IPC_RMID, NULL) < 0)
			return bad("rm");
		printf("removed\n");
	} else if (!strcmp(a, "qnum") && argc == 3) {
		struct msqid_ds ds;
		int q = qid(argv[2], 0);
		if (q < 0 || msgctl(q, IPC_STAT, &ds) < 0)
			return bad("qnum");
		printf("qnum %lu\n", (unsigned long)ds.msg_qnum);
	} else if (!strcmp(a, "recv-sig") && argc == 4) {
		struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = !strcmp(argv[3], "restart") ? SA_RESTART : 0 };
		sigaction(SIGUSR1, &sa, NULL);
		int q = qid(argv[2], IPC_CREAT | 0600);
		if (q < 0)
			return bad("msgget");
		fprintf(stderr, "ready\n");
		ssize_t n = msgrcv(q, &m, sizeof(m.text), 0, 0);
		if (n < 0 && errno == EINTR)
			printf("eintr handled=%d\n", (int)handled);
		else if (n < 0)
			return bad("msgrcv");
		else
			printf("got %s handled=%d\n", m.text, (int)handled);
	} else if (!strcmp(a, "undo") && argc == 3) {
		int s = semget((key_t)strtol(argv[2], NULL, 0), 1, IPC_CREAT | 0600);
		struct sembuf op = { 0, 1, SEM_UNDO };
		if (s < 0 || semop(s, &op, 1) < 0)
			return bad("undo");
		printf("val %d\n", semctl(s, 0, GETVAL));
	} else if (!strcmp(a, "semval") && argc == 3) {
		int s = semget((key_t)strtol(argv[2], NULL, 0), 1, 0);
		int v = s < 0 ? -1 : semctl(s, 0, GETVAL);
		if (v < 0)
			return bad("semval");
		printf("val %d\n", v);
	} else if (!strcmp(a, "shm-get") && argc == 4) {
		int id = shmget((key_t)strtol(argv[2], NULL, 0), (size_t)strtoul(argv[3], NULL, 0), IPC_CREAT | 0600);
		if (id < 0)
			return bad("shmget");
		printf("shm id %d\n", id);
	} else if (!strcmp(a, "shm-stat") && argc == 3) {
		struct shmid_ds ds;
		int id = shmget((key_t)strtol(argv[2], NULL, 0), 0, 0);
		if (id < 0 || shmctl(id, IPC_STAT, &ds) < 0)
			return bad("shm-stat");
		printf("size %zu nattch %lu cpid-is-me %s\n", (size_t)ds.shm_segsz, (unsigned long)ds.shm_nattch,
		       ds.shm_cpid == getpid() ? "Y" : "N");
	} else if (!strcmp(a, "shm-at") && argc == 3) {
		int id = shmget((key_t)strtol(argv[2], NULL, 0), 0, 0);
		if (id < 0)
			return bad("shmget");
		void *p = shmat(id, NULL, 0);
		if (p == (void *)-1)
			printf("errno %s\n", errno == ENOSYS ? "ENOSYS" : strerror(errno));
		else
			printf("attached\n");
	} else if ((!strcmp(a, "shm-count") && argc == 4) || (!strcmp(a, "shm-read") && argc == 3)) {
		int id = shmget((key_t)strtol(argv[2], NULL, 0), 0, 0);
		if (id < 0)
			return bad("shmget");
		uint64_t *w = shmat(id, NULL, 0);
		if (w == (void *)-1)
			return bad("shmat");
		if (!strcmp(a, "shm-read")) {
			printf("value %llu\n", (unsigned long long)__atomic_load_n(&w[0], __ATOMIC_SEQ_CST));
			return 0;
		}
		/* Both attached at once: their increments race on one word. */
		__atomic_fetch_add(&w[1], 1, __ATOMIC_SEQ_CST);
		for (int i = 0; i < 10000 && __atomic_load_n(&w[1], __ATOMIC_SEQ_CST) < 2; i++)
			usleep(1000);
		if (__atomic_load_n(&w[1], __ATOMIC_SEQ_CST) < 2)
			return bad("the other shm-count never attached");
		long n = strtol(argv[3], NULL, 0);
		for (long i = 0; i < n; i++)
			__atomic_fetch_add(&w[0], 1, __ATOMIC_SEQ_CST);
		printf("count done\n");
	} else if (!strcmp(a, "shm-atdt") && argc == 3) {
		int id = shmget((key_t)strtol(argv[2], NULL, 0), 0, 0);
		if (id < 0)
			return bad("shmget");
		uint64_t *w = shmat(id, NULL, 0);
		if (w == (void *)-1)
			return bad("shmat");
		w[2] = 7;
		if (shmdt(w) < 0)
			return bad("shmdt");
		unsigned char v;
		if (mincore(w, 4096, &v) == 0 || errno != ENOMEM)
			return bad("still mapped after shmdt");
		if (shmdt(w) == 0 || errno != EINVAL)
			return bad("a second shmdt");
		printf("detached unmapped\n");
	} else if (!strcmp(a, "shm-rm") && argc == 3) {
		int id = shmget((key_t)strtol(argv[2], NULL, 0), 0, 0);
		if (id < 0 || shmctl(id, IPC_RMID, NULL) < 0)
			return bad("shm-rm");
		printf("removed\n");
	} else if (!strcmp(a, "fault")) {
		return faults();
	} else if (!strcmp(a, "abi")) {
		return abi();
	} else {
		return 2;
	}
	return 0;
}
