/* semctl01 — the value commands: SETVAL/GETVAL, SETALL/GETALL, GETPID
 * (the last process to change the semaphore), GETNCNT/GETZCNT (the
 * waiters, by the operation they block on); ERANGE (SETVAL < 0 or >
 * semvmx, SETALL entry > semvmx), EINVAL (semnum out of the set; SETVAL
 * checks ERANGE first, GETVAL EACCES first), EACCES (nobody). A SETVAL
 * wakes waiters. Roles: the peer reads what the creator set. */
#include "conf.h"

static int gid;

static void as_nobody(void *arg)
{
	(void)arg;
	union semun u = { .val = 1 };
	CHECK_ERR(semctl(gid, 0, GETVAL), EACCES, "nobody GETVAL on 0600");
	CHECK_ERR(semctl(gid, 9, GETVAL), EACCES, "nobody GETVAL, bad semnum: EACCES first");
	CHECK_ERR(semctl(gid, 0, SETVAL, u), EACCES, "nobody SETVAL");
	CHECK_ERR(semctl(gid, 9, SETVAL, u), EINVAL, "nobody SETVAL, bad semnum: EINVAL first");
}

static int peer(key_t key)
{
	int id = conf_find_sem(key, 4);
	if (id < 0)
		return 1;
	conf_wait_semctl(id, 3, GETVAL, 9);
	unsigned short v[4];
	union semun u = { .array = v };
	CHECK_OK(semctl(id, 0, GETALL, u), "peer GETALL");
	CHECK(v[0] == 1 && v[1] == 2 && v[2] == 32767 && v[3] == 9, "peer sees %u %u %u %u", v[0], v[1], v[2], v[3]);
	struct sembuf done = { 3, 1, 0 };
	CHECK_OK(semop(id, &done, 1), "peer done");
	return conf_failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	conf_init("semctl01", 30);
	key_t key = conf_key(28);
	enum conf_role role = conf_role(argc, argv, &key);
	if (role == ROLE_PEER)
		return peer(key);
	int id = conf_track_sem(CHECK_OK(semget(key, 4, IPC_CREAT | IPC_EXCL | 0600), "semget"));
	gid = id;
	union semun u = { .val = 5 };
	CHECK_OK(semctl(id, 1, SETVAL, u), "SETVAL");
	CHECK(semctl(id, 1, GETVAL) == 5, "GETVAL %d", semctl(id, 1, GETVAL));
	CHECK(semctl(id, 1, GETPID) == getpid(), "GETPID after SETVAL");
	u.val = 32768;
	CHECK_ERR(semctl(id, 1, SETVAL, u), ERANGE, "SETVAL 32768");
	u.val = -1;
	CHECK_ERR(semctl(id, 1, SETVAL, u), ERANGE, "SETVAL -1");
	CHECK_ERR(semctl(id, 9, SETVAL, u), ERANGE, "SETVAL -1 on a bad semnum: ERANGE first");
	u.val = 1;
	CHECK_ERR(semctl(id, 4, SETVAL, u), EINVAL, "SETVAL semnum past the set");
	CHECK_ERR(semctl(id, -1, GETVAL), EINVAL, "GETVAL semnum -1");
	CHECK_ERR(semctl(id, 4, GETNCNT), EINVAL, "GETNCNT semnum past the set");
	unsigned short bad[4] = { 1, 2, 40000, 4 };
	union semun ua = { .array = bad };
	CHECK_ERR(semctl(id, 0, SETALL, ua), ERANGE, "SETALL 40000");
	CHECK(semctl(id, 0, GETVAL) == 0, "a refused SETALL changed nothing");
	CHECK_ERR(semctl(id, 0, SETALL, (union semun){ .array = NULL }), EFAULT, "SETALL from NULL");
	CHECK_ERR(semctl(id, 0, GETALL, (union semun){ .array = NULL }), EFAULT, "GETALL to NULL");
	conf_as_nobody(as_nobody, NULL);
	/* waiters: 2 decrementers on sem 0, 1 zero-waiter on sem 1, a
	 * multi-op blocked on sem 2 (counted there only) */
	u.val = 0;
	semctl(id, 0, SETVAL, u);
	pid_t kids[4];
	struct sembuf ops[4][2] = {
		{ { 0, -1, 0 } }, { { 0, -1, 0 } }, { { 1, 0, 0 } }, { { 0, 0, 0 }, { 2, -1, 0 } },
	};
	int nops[4] = { 1, 1, 1, 2 };
	u.val = 3;
	semctl(id, 1, SETVAL, u);
	for (int i = 0; i < 4; i++) {
		fflush(stdout);
		kids[i] = fork();
		if (kids[i] == 0) {
			conf_owner = 0;
			_exit(semop(id, ops[i], nops[i]) == 0 ? 0 : 1);
		}
	}
	conf_wait_semctl(id, 0, GETNCNT, 2);
	conf_wait_semctl(id, 1, GETZCNT, 1);
	conf_wait_semctl(id, 2, GETNCNT, 1);
	CHECK(semctl(id, 0, GETZCNT) == 0, "the multi-op is not counted on sem 0 (zcnt %d)", semctl(id, 0, GETZCNT));
	/* SETALL wakes them all: sem0 2 (both decrement), sem1 0, sem2 1 */
	unsigned short all[4] = { 2, 0, 1, 0 };
	ua.array = all;
	CHECK_OK(semctl(id, 0, SETALL, ua), "SETALL");
	for (int i = 0; i < 3; i++)
		conf_wait(kids[i], "a waiter");
	/* the multi-op needs sem 0 == 0 and sem 2 >= 1: it goes once both decrementers took theirs */
	conf_wait(kids[3], "the multi-op");
	unsigned short got[4];
	ua.array = got;
	CHECK_OK(semctl(id, 0, GETALL, ua), "GETALL");
	CHECK(got[0] == 0 && got[1] == 0 && got[2] == 0, "after the wake-ups: %u %u %u", got[0], got[1], got[2]);
	CHECK(semctl(id, 2, GETPID) == kids[3], "GETPID is the multi-op's process");
	/* for the peer */
	unsigned short fin[4] = { 1, 2, 32767, 9 };
	ua.array = fin;
	CHECK_OK(semctl(id, 0, SETALL, ua), "SETALL for the peer");
	pid_t p = role == ROLE_BOTH ? conf_fork_peer(peer, key) : -1;
	conf_wait_semctl(id, 3, GETVAL, 10);
	conf_wait(p, "peer");
	return conf_done();
}
