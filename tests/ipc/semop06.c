/* semop06 — a signal interrupts a blocked semop: EINTR (even with
 * SA_RESTART: semop is never restarted), the handler ran, nothing was
 * applied and the process no longer counts as a waiter; the value
 * given later goes to the next waiter, not to the interrupted one. Roles:
 * the creator is interrupted by a child of its own; the peer gives the
 * value afterwards and takes it. */
#include "conf.h"

static volatile sig_atomic_t handled;
static void on_sig(int sig)
{
	(void)sig;
	handled++;
}

static int peer(key_t key)
{
	int id = conf_find_sem(key, 2);
	if (id < 0)
		return 1;
	conf_wait_semctl(id, 1, GETVAL, 1);         /* the creator was interrupted */
	struct sembuf v = { 0, 1, 0 }, p = { 0, -1, 0 };
	CHECK_OK(semop(id, &v, 1), "peer V");
	CHECK_OK(semop(id, &p, 1), "peer P: the unit is still there");
	struct sembuf done = { 1, 1, 0 };
	CHECK_OK(semop(id, &done, 1), "peer done");
	return conf_failed ? 1 : 0;
}

static void interrupted(int id, int flags)
{
	struct sigaction sa = { .sa_handler = on_sig, .sa_flags = flags };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	handled = 0;
	pid_t me = getpid();
	fflush(stdout);
	pid_t k = fork();
	if (k == 0) {
		conf_owner = 0;
		conf_failed = 0;
		conf_wait_semctl(id, 0, GETNCNT, 1);
		conf_msleep(50);
		kill(me, SIGUSR1);
		_exit(conf_failed ? 1 : 0);
	}
	struct sembuf p = { 0, -1, 0 };
	CHECK_ERR(semop(id, &p, 1), EINTR, flags ? "interrupted semop (SA_RESTART)" : "interrupted semop");
	CHECK(handled == 1, "the handler ran %d times", (int)handled);
	CHECK(semctl(id, 0, GETNCNT) == 0, "no longer a waiter");
	CHECK(semctl(id, 0, GETVAL) == 0, "nothing applied");
	conf_wait(k, "signaller");
}

int main(int argc, char **argv)
{
	conf_init("semop06", 30);
	key_t key = conf_key(27);
	enum conf_role role = conf_role(argc, argv, &key);
	if (role == ROLE_PEER)
		return peer(key);
	int id = conf_track_sem(CHECK_OK(semget(key, 2, IPC_CREAT | IPC_EXCL | 0600), "semget"));
	interrupted(id, 0);
	interrupted(id, SA_RESTART);
	pid_t p = role == ROLE_BOTH ? conf_fork_peer(peer, key) : -1;
	struct sembuf mark = { 1, 1, 0 };
	CHECK_OK(semop(id, &mark, 1), "tell the peer");
	conf_wait_semctl(id, 1, GETVAL, 2);
	CHECK(semctl(id, 0, GETVAL) == 0, "value 0 at the end");
	conf_wait(p, "peer");
	return conf_done();
}
