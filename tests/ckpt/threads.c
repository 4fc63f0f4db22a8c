/* Threads: 9 threads, each with its own signal mask, its own TLS value
 * (fs base) and state held in callee-saved registers (r12 a magic, r13 a
 * counter) across a raw futex-wait loop, all checked after the restart.
 * Then pthread_kill to each thread (libc aims it by the tid it keeps in
 * its thread descriptor) and pthread_join. Built dynamic and static. */
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include "zdtm.h"

#define NT 9
static __thread long tls_val;
static __thread int my_idx;
static volatile int go_word;
static struct {
	pthread_t self;
	pid_t tid, tid_now;
	volatile int ready, got_usr2;
	char why[160];
} st[NT];

static void usr2(int s) { st[my_idx].got_usr2 = 1; }

static void thread_mask(int i, sigset_t *m)
{
	sigemptyset(m);
	sigaddset(m, SIGUSR1);  /* the driver's wake-up goes to main */
	sigaddset(m, SIGRTMIN + i);
	if (i & 1)
		sigaddset(m, SIGHUP);
	if (i & 2)
		sigaddset(m, SIGTERM);
	if (i & 4)
		sigaddset(m, SIGWINCH);
}

static void *thr(void *arg)
{
	int i = (int)(intptr_t)arg;
	my_idx = i;
	tls_val = 1000 + i * 7;
	sigset_t m;
	thread_mask(i, &m);
	pthread_sigmask(SIG_SETMASK, &m, NULL);
	st[i].self = pthread_self();
	st[i].tid = (pid_t)syscall(SYS_gettid);
	uint64_t magic = 0x5eed0000ULL + (uint64_t)i * 0x101, r12o = 0, cnt = 0;
	__atomic_store_n(&st[i].ready, 1, __ATOMIC_SEQ_CST);
	__asm__ volatile(
		"mov %[m], %%r12\n xor %%r13, %%r13\n"
		"1: inc %%r13\n mov $202, %%eax\n mov %[w], %%rdi\n xor %%esi, %%esi\n xor %%edx, %%edx\n xor %%r10, %%r10\n syscall\n"
		"cmpl $0, (%[w])\n je 1b\n"
		"mov %%r12, %[o]\n mov %%r13, %[c]\n"
		: [o] "=m"(r12o), [c] "=m"(cnt)
		: [m] "r"(magic), [w] "r"(&go_word)
		: "rax", "rcx", "rdx", "rsi", "rdi", "r10", "r11", "r12", "r13", "memory");
	st[i].tid_now = (pid_t)syscall(SYS_gettid);
	sigset_t now;
	pthread_sigmask(SIG_SETMASK, NULL, &now);
	if (r12o != magic)
		snprintf(st[i].why, sizeof(st[i].why), "thread %d: r12 %#llx != %#llx", i, (unsigned long long)r12o, (unsigned long long)magic);
	else if (cnt < 1 || cnt > 100000)
		snprintf(st[i].why, sizeof(st[i].why), "thread %d: r13 counter %llu", i, (unsigned long long)cnt);
	else if (tls_val != 1000 + i * 7)
		snprintf(st[i].why, sizeof(st[i].why), "thread %d: TLS %ld != %d", i, tls_val, 1000 + i * 7);
	else if (!pthread_equal(pthread_self(), st[i].self))
		snprintf(st[i].why, sizeof(st[i].why), "thread %d: pthread_self changed (fs base)", i);
	else if (!sigismember(&now, SIGRTMIN + i) || !sigismember(&now, SIGUSR1) || sigismember(&now, SIGUSR2) ||
		 sigismember(&now, SIGHUP) != !!(i & 1) || sigismember(&now, SIGTERM) != !!(i & 2) || sigismember(&now, SIGWINCH) != !!(i & 4) ||
		 (i + 1 < NT && sigismember(&now, SIGRTMIN + i + 1)))
		snprintf(st[i].why, sizeof(st[i].why), "thread %d: signal mask changed", i);
	else if (!st[i].got_usr2)
		snprintf(st[i].why, sizeof(st[i].why), "thread %d: pthread_kill(SIGUSR2) did not reach it", i);
	return NULL;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	signal(SIGUSR2, usr2);
	sigset_t mm;
	sigemptyset(&mm);
	sigaddset(&mm, SIGRTMIN + 12);
	pthread_sigmask(SIG_BLOCK, &mm, NULL);
	pthread_t th[NT];
	for (int i = 0; i < NT; i++)
		if (pthread_create(&th[i], NULL, thr, (void *)(intptr_t)i))
			fail("pthread_create %d", i);
	for (int i = 0; i < NT; i++)
		while (!__atomic_load_n(&st[i].ready, __ATOMIC_SEQ_CST))
			usleep(1000);
	usleep(20000);  /* all inside the futex wait */
	test_ready(argv);
	test_wait();
	/* pthread_kill each thread and wait until it ran the handler. */
	for (int i = 0; i < NT; i++) {
		if (pthread_kill(th[i], SIGUSR2))
			fail("pthread_kill thread %d", i);
		for (int k = 0; k < 3000 && !st[i].got_usr2; k++)
			usleep(1000);
		if (!st[i].got_usr2)
			fail("thread %d (tid %d before) did not get pthread_kill's SIGUSR2", i, st[i].tid);
	}
	go_word = 1;
	syscall(SYS_futex, &go_word, FUTEX_WAKE, 1 << 30, NULL, NULL, 0);
	int same = 0;
	for (int i = 0; i < NT; i++) {
		if (pthread_join(th[i], NULL))
			fail("pthread_join %d", i);
		if (st[i].why[0])
			fail("%s", st[i].why);
		same += st[i].tid_now == st[i].tid;
	}
	sigset_t cur;
	pthread_sigmask(SIG_SETMASK, NULL, &cur);
	if (!sigismember(&cur, SIGRTMIN + 12) || sigismember(&cur, SIGRTMIN))
		fail("main thread's mask changed");
	printf("%d of %d thread ids unchanged\n", same, NT);
	pass();
}
