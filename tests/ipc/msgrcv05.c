/* msgrcv05 — a signal interrupts a blocked msgrcv: with a handler the
 * call fails with EINTR after the handler ran, SA_RESTART or not (man 7
 * signal: msgrcv is never restarted after a handler); a stop and continue
 * (no handler) restarts it and it gets the message. Through repeated
 * interruptions no message is lost or received twice. Roles: the creator
 * receives and is interrupted by a child of its own; the peer sends N
 * numbered messages slowly. */
#include "conf.h"

#define N 40

static volatile sig_atomic_t handled;

static void on_sig(int sig)
{
	(void)sig;
	handled++;
}

static void handler(int flags)
{
	struct sigaction sa = { .sa_handler = on_sig, .sa_flags = flags };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
}

/* A child that sends SIGUSR1 to us after first_ms, then every every_ms
 * (0: once). Killed with SIGKILL when done. */
static pid_t signaller_sig(long first_ms, long every_ms, int sig)
{
	pid_t parent = getpid();
	fflush(stdout);
	pid_t p = fork();
	if (p == 0) {
		conf_owner = 0;
		conf_msleep(first_ms);
		do {
			if (kill(parent, sig) < 0)
				_exit(0);
			if (sig == SIGSTOP) {
				conf_msleep(50);
				kill(parent, SIGCONT);
			}
			conf_msleep(every_ms);
		} while (every_ms);
		_exit(0);
	}
	return p;
}

static pid_t signaller(long first_ms, long every_ms)
{
	return signaller_sig(first_ms, every_ms, SIGUSR1);
}

static void stop(pid_t p)
{
	if (p > 0) {
		kill(p, SIGKILL);
		waitpid(p, NULL, 0);
	}
}

static int peer(key_t key)
{
	int id, sem;
	if (conf_peer_start(key, 1, &id, &sem) < 0)
		return 1;
	struct conf_msg m = { .mtype = 1 };
	for (int i = 1; i <= N; i++) {
		conf_msleep(i % 4 == 0 ? 30 : 3);
		snprintf(m.mtext, sizeof m.mtext, "%d", i);
		CHECK_OK(msgsnd(id, &m, strlen(m.mtext) + 1, 0), "peer msgsnd");
	}
	return conf_failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	conf_init("msgrcv05", 60);
	key_t key = conf_key(11);
	enum conf_role role = conf_role(argc, argv, &key);
	if (role == ROLE_PEER)
		return peer(key);
	int id = conf_track_msq(CHECK_OK(msgget(key, IPC_CREAT | IPC_EXCL | 0600), "msgget"));
	int sem = conf_track_sem(CHECK_OK(semget(key, 1, IPC_CREAT | IPC_EXCL | 0600), "semget"));
	static struct conf_msg m;
	/* 1: no SA_RESTART: EINTR, handler ran */
	handler(0);
	pid_t sg = signaller(100, 0);
	CHECK_ERR(msgrcv(id, &m, 100, 0, 0), EINTR, "interrupted msgrcv");
	CHECK(handled == 1, "the handler ran %d times", (int)handled);
	stop(sg);
	/* 2: SA_RESTART changes nothing for msgrcv */
	handler(SA_RESTART);
	handled = 0;
	sg = signaller(100, 0);
	CHECK_ERR(msgrcv(id, &m, 100, 0, 0), EINTR, "interrupted msgrcv, SA_RESTART");
	CHECK(handled == 1, "the handler ran %d times (SA_RESTART)", (int)handled);
	stop(sg);
	/* 2b: stopped and continued, no handler: the call goes on and a
	 * message sent later arrives */
	handled = 0;
	fflush(stdout);
	pid_t s = fork();
	if (s == 0) {
		conf_owner = 0;
		conf_msleep(300);
		struct conf_msg x = { .mtype = 2, .mtext = "late" };
		_exit(msgsnd(id, &x, 5, 0) == 0 ? 0 : 1);
	}
	sg = signaller_sig(100, 0, SIGSTOP);
	ssize_t n = msgrcv(id, &m, 100, 2, 0);
	CHECK(n == 5 && !strcmp(m.mtext, "late"), "restarted msgrcv got %zd '%.5s' (%s)", n, m.mtext, n < 0 ? strerror(errno) : "");
	CHECK(handled == 0, "no handler ran (%d)", (int)handled);
	conf_wait(s, "late sender");
	stop(sg);
	/* 3: N messages under a storm of interruptions: each exactly once */
	handler(0);
	handled = 0;
	pid_t p = role == ROLE_BOTH ? conf_fork_peer(peer, key) : -1;
	struct sembuf up = { 0, 1, 0 };
	CHECK_OK(semop(sem, &up, 1), "tell the peer");
	sg = signaller(7, 7);
	int seen[N + 1] = { 0 }, got = 0, eintr = 0, other = 0;
	double end = conf_now() + 20;
	while (got < N && conf_now() < end) {
		n = msgrcv(id, &m, 100, 1, 0);
		if (n < 0) {
			if (errno == EINTR)
				eintr++;
			else
				other++;
			continue;
		}
		int k = atoi(m.mtext);
		if (k >= 1 && k <= N)
			seen[k]++;
		got++;
	}
	stop(sg);
	conf_wait(p, "peer");
	int missing = 0, dup = 0;
	for (int k = 1; k <= N; k++) {
		missing += seen[k] == 0;
		dup += seen[k] > 1;
	}
	CHECK(missing == 0 && dup == 0 && got == N, "%d received, %d missing, %d twice", got, missing, dup);
	CHECK(other == 0, "%d failures other than EINTR", other);
	CHECK(eintr > 0 && handled > 0, "never interrupted (%d EINTR, %d handler runs)", eintr, (int)handled);
	CHECK_ERR(msgrcv(id, &m, 100, 0, IPC_NOWAIT), ENOMSG, "nothing left over");
	return conf_done();
}
