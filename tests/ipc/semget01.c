/* semget01 — semget creates and finds sets: IPC_PRIVATE is always new, a
 * key is created once (values 0, nsems as asked, mode and owner the
 * creator's) and found again with nsems 0 or fewer; errors: ENOENT,
 * EEXIST, EINVAL (nsems < 0, > semmsl, 0 when creating, more than the set
 * has; EEXIST wins over it), EACCES (nobody). Roles: the creator makes
 * KEY, the peer finds it. */
#include "conf.h"

static key_t gkey;

static void as_nobody(void *arg)
{
	(void)arg;
	CHECK_ERR(semget(gkey, 3, 0400), EACCES, "nobody asks r on 0600");
	CHECK(semget(gkey, 3, 0) >= 0, "nobody asking for nothing");
}

static int peer(key_t key)
{
	int id = conf_find_sem(key, 3);
	if (id < 0)
		return 1;
	CHECK(semget(key, 0, 0) == id, "nsems 0 finds it");
	CHECK(semget(key, 2, 0) == id, "fewer nsems finds it");
	CHECK_ERR(semget(key, 4, 0), EINVAL, "more nsems than the set has");
	CHECK_ERR(semget(key, 4, IPC_CREAT | IPC_EXCL | 0600), EEXIST, "EEXIST before EINVAL");
	struct sembuf up = { 1, 5, 0 };
	CHECK_OK(semop(id, &up, 1), "peer semop");
	return conf_failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	conf_init("semget01", 30);
	gkey = conf_key(20);
	enum conf_role role = conf_role(argc, argv, &gkey);
	if (role == ROLE_PEER)
		return peer(gkey);
	int a = conf_track_sem(CHECK_OK(semget(IPC_PRIVATE, 1, 0600), "IPC_PRIVATE"));
	int b = conf_track_sem(CHECK_OK(semget(IPC_PRIVATE, 1, 0600), "IPC_PRIVATE again"));
	CHECK(a != b, "two private sets share an id");
	CHECK_ERR(semget(IPC_PRIVATE, 0, 0600), EINVAL, "creating 0 semaphores");
	CHECK_ERR(semget(gkey, 3, 0600), ENOENT, "missing key");
	CHECK_ERR(semget(gkey, -1, IPC_CREAT | 0600), EINVAL, "nsems < 0");
	FILE *f = fopen("/proc/sys/kernel/sem", "r");
	int semmsl = 32000;
	if (f) {
		if (fscanf(f, "%d", &semmsl) != 1)
			semmsl = 32000;
		fclose(f);
	}
	CHECK_ERR(semget(gkey, semmsl + 1, IPC_CREAT | 0600), EINVAL, "nsems > semmsl");
	int id = conf_track_sem(CHECK_OK(semget(gkey, 3, IPC_CREAT | IPC_EXCL | 0600), "create"));
	struct semid_ds ds;
	union semun u = { .buf = &ds };
	CHECK_OK(semctl(id, 0, IPC_STAT, u), "IPC_STAT");
	CHECK(ds.sem_nsems == 3, "nsems %lu", (unsigned long)ds.sem_nsems);
	CHECK((ds.sem_perm.mode & 0777) == 0600 && ds.sem_perm.uid == geteuid() && ds.sem_perm.cgid == getegid(), "perm");
	CHECK(ds.sem_otime == 0 && ds.sem_ctime > 0, "otime %ld ctime %ld", (long)ds.sem_otime, (long)ds.sem_ctime);
	for (int i = 0; i < 3; i++)
		CHECK(semctl(id, i, GETVAL) == 0, "a new semaphore is 0");
	conf_as_nobody(as_nobody, NULL);
	pid_t p = role == ROLE_BOTH ? conf_fork_peer(peer, gkey) : -1;
	conf_wait_semctl(id, 1, GETVAL, 5);
	conf_wait(p, "peer");
	return conf_done();
}
