/* semop05 — semops blocked in other processes fail with EIDRM when the
 * set is removed (a decrement, a wait-for-zero, a multi-op); the id is
 * EINVAL afterwards. Roles: the creator's children block; the peer
 * removes the set once all three wait. */
#include "conf.h"

static int peer(key_t key)
{
	int id = conf_find_sem(key, 2);
	if (id < 0)
		return 1;
	conf_wait_semctl(id, 0, GETNCNT, 2);
	conf_wait_semctl(id, 1, GETZCNT, 1);
	CHECK_OK(semctl(id, 0, IPC_RMID), "peer IPC_RMID");
	return conf_failed ? 1 : 0;
}

static pid_t blocker(int id, struct sembuf *ops, int n, const char *what)
{
	fflush(stdout);
	pid_t p = fork();
	if (p == 0) {
		conf_owner = 0;
		conf_failed = 0;
		CHECK_ERR(semop(id, ops, n), EIDRM, what);
		_exit(conf_failed ? 1 : 0);
	}
	return p;
}

int main(int argc, char **argv)
{
	conf_init("semop05", 30);
	key_t key = conf_key(26);
	enum conf_role role = conf_role(argc, argv, &key);
	if (role == ROLE_PEER)
		return peer(key);
	int id = conf_track_sem(CHECK_OK(semget(key, 2, IPC_CREAT | IPC_EXCL | 0600), "semget"));
	union semun u = { .val = 1 };
	CHECK_OK(semctl(id, 1, SETVAL, u), "sem 1 = 1");
	struct sembuf dn = { 0, -1, 0 }, z = { 1, 0, 0 }, multi[2] = { { 0, -2, 0 }, { 1, 1, 0 } };
	pid_t a = blocker(id, &dn, 1, "decrement");
	pid_t b = blocker(id, &z, 1, "wait for zero");
	pid_t c = blocker(id, multi, 2, "multi-op");
	pid_t p = role == ROLE_BOTH ? conf_fork_peer(peer, key) : -1;
	conf_wait(a, "decrement");
	conf_wait(b, "wait for zero");
	conf_wait(c, "multi-op");
	conf_wait(p, "peer");
	CHECK_ERR(semop(id, &dn, 1), EINVAL, "the removed id");
	CHECK_ERR(semctl(id, 0, GETVAL), EINVAL, "GETVAL on the removed id");
	return conf_done();
}
