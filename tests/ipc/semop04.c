/* semop04 — SEM_UNDO: what a process changed with SEM_UNDO is taken back
 * when it exits (however it exits: exit, SIGKILL), clamped at 0; SETVAL
 * forgets the adjustment; a lock holder's death lets the next waiter in;
 * a change past the adjustment's range is ERANGE. Roles: the creator's
 * children hold and die; the peer waits for the lock. */
#include "conf.h"

static int peer(key_t key)
{
	int id = conf_find_sem(key, 4);
	if (id < 0)
		return 1;
	/* sem 2 is a lock (1 = free) the creator's child holds, then dies;
	 * sem 3 says when it holds it */
	conf_wait_semctl(id, 3, GETVAL, 1);
	struct sembuf lock = { 2, -1, SEM_UNDO };
	CHECK_OK(semop(id, &lock, 1), "peer takes the lock after the holder died");
	struct sembuf unlock = { 2, 1, SEM_UNDO };
	CHECK_OK(semop(id, &unlock, 1), "peer releases it");
	return conf_failed ? 1 : 0;
}

static pid_t child(int id, struct sembuf *ops, int n, int die_by_kill)
{
	fflush(stdout);
	pid_t p = fork();
	if (p == 0) {
		conf_owner = 0;
		if (semop(id, ops, n) < 0)
			_exit(1);
		if (die_by_kill)
			for (;;)
				pause();
		_exit(0);
	}
	return p;
}

int main(int argc, char **argv)
{
	conf_init("semop04", 30);
	key_t key = conf_key(25);
	enum conf_role role = conf_role(argc, argv, &key);
	if (role == ROLE_PEER)
		return peer(key);
	int id = conf_track_sem(CHECK_OK(semget(key, 4, IPC_CREAT | IPC_EXCL | 0600), "semget"));
	/* +3 undo, -1 undo, +4 plain: exit leaves the plain +4 */
	struct sembuf ops[3] = { { 0, 3, SEM_UNDO }, { 0, -1, SEM_UNDO }, { 1, 4, 0 } };
	pid_t c = child(id, ops, 3, 0);
	conf_wait(c, "child");
	CHECK(semctl(id, 0, GETVAL) == 0, "undone on exit: %d", semctl(id, 0, GETVAL));
	CHECK(semctl(id, 1, GETVAL) == 4, "plain op kept: %d", semctl(id, 1, GETVAL));
	CHECK(semctl(id, 0, GETPID) == c, "sempid is the exited process");
	/* killed: same */
	struct sembuf up5 = { 0, 5, SEM_UNDO };
	c = child(id, &up5, 1, 1);
	conf_wait_semctl(id, 0, GETVAL, 5);
	struct sembuf dn4 = { 0, -4, 0 };
	CHECK_OK(semop(id, &dn4, 1), "-4 by someone else");
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
	CHECK(semctl(id, 0, GETVAL) == 0, "undo clamped at 0: %d", semctl(id, 0, GETVAL));
	/* SETVAL forgets */
	struct sembuf up2 = { 0, 2, SEM_UNDO };
	c = child(id, &up2, 1, 1);
	conf_wait_semctl(id, 0, GETVAL, 2);
	union semun u = { .val = 7 };
	CHECK_OK(semctl(id, 0, SETVAL, u), "SETVAL 7");
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
	CHECK(semctl(id, 0, GETVAL) == 7, "SETVAL cleared the adjustment: %d", semctl(id, 0, GETVAL));
	/* ERANGE past the adjustment range */
	u.val = 32767;
	CHECK_OK(semctl(id, 0, SETVAL, u), "SETVAL 32767");
	struct sembuf big = { 0, -32767, SEM_UNDO }, one = { 0, 1, 0 }, more = { 0, -1, SEM_UNDO };
	CHECK_OK(semop(id, &big, 1), "-32767 with undo");
	CHECK_OK(semop(id, &one, 1), "+1");
	CHECK_ERR(semop(id, &more, 1), ERANGE, "adjustment past 32767");
	u.val = 0;
	semctl(id, 0, SETVAL, u);
	/* a dead lock holder */
	u.val = 1;
	CHECK_OK(semctl(id, 2, SETVAL, u), "lock free");
	pid_t p = role == ROLE_BOTH ? conf_fork_peer(peer, key) : -1;
	struct sembuf lock = { 2, -1, SEM_UNDO };
	c = child(id, &lock, 1, 1);
	conf_wait_semctl(id, 2, GETVAL, 0);
	u.val = 1;
	CHECK_OK(semctl(id, 3, SETVAL, u), "tell the peer");
	conf_wait_semctl(id, 2, GETNCNT, 1);   /* the peer waits */
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
	conf_wait(p, "peer");
	/* Run as two roles, the peer is another process nobody waits for
	 * here: its release comes when it comes (10 s at most). */
	if (role != ROLE_BOTH)
		conf_wait_semctl(id, 2, GETVAL, 1);
	CHECK(semctl(id, 2, GETVAL) == 1, "the lock is free at the end: %d", semctl(id, 2, GETVAL));
	return conf_done();
}
