/* semop03 — semtimedop: a semop that cannot go fails with EAGAIN once
 * its timeout has passed (not before), and applies nothing; a zero
 * timeout tries once; an operation that can go ignores the timeout; a
 * value arriving in time wins; bad timeouts are EINVAL. Roles: the
 * creator waits; the peer raises the value in time for the last wait. */
#include "conf.h"

static int peer(key_t key)
{
	int id = conf_find_sem(key, 3);
	if (id < 0)
		return 1;
	conf_wait_semctl(id, 2, GETVAL, 1);      /* the creator's last wait is next */
	conf_wait_semctl(id, 1, GETNCNT, 1);
	conf_msleep(100);
	struct sembuf up = { 1, 1, 0 };
	CHECK_OK(semop(id, &up, 1), "peer raises sem 1");
	return conf_failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	conf_init("semop03", 30);
	key_t key = conf_key(24);
	enum conf_role role = conf_role(argc, argv, &key);
	if (role == ROLE_PEER)
		return peer(key);
	int id = conf_track_sem(CHECK_OK(semget(key, 3, IPC_CREAT | IPC_EXCL | 0600), "semget"));
	struct sembuf both[2] = { { 0, 1, 0 }, { 1, -1, 0 } };
	struct timespec ts = { 0, 300 * 1000000L };
	double t0 = conf_now();
	CHECK_ERR(semtimedop(id, both, 2, &ts), EAGAIN, "timed out");
	double dt = conf_now() - t0;
	CHECK(dt >= 0.29 && dt < 5, "waited %.3f s for a 0.3 s timeout", dt);
	CHECK(semctl(id, 0, GETVAL) == 0, "a timed-out semop applied nothing");
	CHECK(semctl(id, 1, GETNCNT) == 0, "and no longer waits");
	struct timespec zero = { 0, 0 };
	CHECK_ERR(semtimedop(id, both, 2, &zero), EAGAIN, "zero timeout");
	struct sembuf up = { 0, 1, 0 };
	CHECK_OK(semtimedop(id, &up, 1, &zero), "an op that can go, zero timeout");
	struct timespec bad = { 0, 1000000000L };
	CHECK_ERR(semtimedop(id, both, 2, &bad), EINVAL, "tv_nsec = 1e9");
	bad.tv_nsec = -1;
	CHECK_ERR(semtimedop(id, both, 2, &bad), EINVAL, "tv_nsec < 0");
	bad.tv_sec = -1;
	bad.tv_nsec = 0;
	CHECK_ERR(semtimedop(id, both, 2, &bad), EINVAL, "tv_sec < 0");
	CHECK_ERR(semtimedop(id, both, 2, (struct timespec *)8), EFAULT, "unreadable timeout");
	pid_t p = role == ROLE_BOTH ? conf_fork_peer(peer, key) : -1;
	CHECK_OK(semctl(id, 2, SETVAL, (union semun){ .val = 1 }), "tell the peer");
	struct timespec longer = { 20, 0 };
	struct sembuf dn = { 1, -1, 0 };
	t0 = conf_now();
	CHECK_OK(semtimedop(id, &dn, 1, &longer), "woken before the timeout");
	CHECK(conf_now() - t0 < 15, "took the whole timeout");
	conf_wait(p, "peer");
	return conf_done();
}
