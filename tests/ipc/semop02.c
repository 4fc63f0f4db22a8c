/* semop02 — blocked semops are woken by another process: a decrement
 * waits for the value, a wait-for-zero for 0, a multi-op for all of its
 * operations at once; GETNCNT/GETZCNT count the waiters; waiters on one
 * semaphore are served first come, first served. Roles: the creator's
 * children block; the peer releases them. */
#include "conf.h"

#define NW 3

static int peer(key_t key)
{
	int id = conf_find_sem(key, 3);
	int q = conf_find_msq(key);
	if (id < 0 || q < 0)
		return 1;
	/* NW decrementers on sem 0, one waiting for zero on sem 1 */
	conf_wait_semctl(id, 0, GETNCNT, NW);
	conf_wait_semctl(id, 1, GETZCNT, 1);
	struct sembuf v = { 0, 1, 0 };
	for (int i = 0; i < NW; i++) {
		CHECK_OK(semop(id, &v, 1), "peer V");
		conf_wait_semctl(id, 0, GETNCNT, NW - 1 - i);
		/* sempid: the waiter the V went to (Linux sets it to the sleeper's) */
		struct conf_msg m = { .mtype = 1 };
		snprintf(m.mtext, sizeof m.mtext, "%d", semctl(id, 0, GETPID));
		CHECK_OK(msgsnd(q, &m, strlen(m.mtext) + 1, 0), "peer logs the order");
	}
	struct sembuf dn = { 1, -1, 0 };
	CHECK_OK(semop(id, &dn, 1), "peer brings sem 1 to 0");
	/* a multi-op waiting for sem 2 >= 1 and sem 0 >= 1 */
	conf_wait_semctl(id, 2, GETNCNT, 1);
	struct sembuf up2 = { 2, 1, 0 };
	CHECK_OK(semop(id, &up2, 1), "peer raises sem 2 only");
	conf_msleep(100);
	CHECK(semctl(id, 2, GETVAL) == 1, "the multi-op took nothing while half of it was free");
	CHECK(semctl(id, 0, GETNCNT) == 1, "it now waits on sem 0 (ncnt %d)", semctl(id, 0, GETNCNT));
	struct sembuf up0 = { 0, 1, 0 };
	CHECK_OK(semop(id, &up0, 1), "peer raises sem 0");
	return conf_failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	conf_init("semop02", 30);
	key_t key = conf_key(23);
	enum conf_role role = conf_role(argc, argv, &key);
	if (role == ROLE_PEER)
		return peer(key);
	int id = conf_track_sem(CHECK_OK(semget(key, 3, IPC_CREAT | IPC_EXCL | 0600), "semget"));
	int q = conf_track_msq(CHECK_OK(msgget(key, IPC_CREAT | IPC_EXCL | 0600), "msgget (order log)"));
	union semun u = { .val = 1 };
	CHECK_OK(semctl(id, 1, SETVAL, u), "sem 1 = 1");
	pid_t kids[NW + 1];
	for (int i = 0; i < NW; i++) {
		fflush(stdout);
		kids[i] = fork();
		if (kids[i] == 0) {
			conf_owner = 0;
			struct sembuf p = { 0, -1, 0 };
			_exit(semop(id, &p, 1) == 0 ? 0 : 1);
		}
		conf_wait_semctl(id, 0, GETNCNT, i + 1);
	}
	fflush(stdout);
	kids[NW] = fork();
	if (kids[NW] == 0) {
		conf_owner = 0;
		struct sembuf z = { 1, 0, 0 };
		_exit(semop(id, &z, 1) == 0 ? 0 : 1);
	}
	pid_t p = role == ROLE_BOTH ? conf_fork_peer(peer, key) : -1;
	for (int i = 0; i <= NW; i++)
		conf_wait(kids[i], "a blocked child");
	for (int i = 0; i < NW; i++) {
		struct conf_msg m;
		ssize_t n = msgrcv(q, &m, sizeof m.mtext, 0, IPC_NOWAIT);
		CHECK(n > 0 && atoi(m.mtext) == kids[i], "waiter %d served was pid %s, want %d (first come, first served)",
			i, n > 0 ? m.mtext : "?", kids[i]);
	}
	struct sembuf multi[2] = { { 2, -1, 0 }, { 0, -1, 0 } };
	double t0 = conf_now();
	CHECK_OK(semop(id, multi, 2), "the multi-op");
	CHECK(conf_now() - t0 > 0.05, "the multi-op did not wait");
	CHECK(semctl(id, 0, GETVAL) == 0 && semctl(id, 2, GETVAL) == 0, "it took both");
	conf_wait(p, "peer");
	return conf_done();
}
