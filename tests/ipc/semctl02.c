/* semctl02 — IPC_STAT (perm, nsems, otime only after a semop, ctime
 * after SETVAL/IPC_SET), IPC_SET (owner, mode; by owner, creator or
 * root; EPERM for others; EINVAL for uid -1), IPC_RMID (EPERM for
 * others), EACCES for IPC_STAT without read permission, EINVAL for a bad
 * command, a negative or removed id, EFAULT for a bad buffer. */
#include <sys/mman.h>
#include "conf.h"

static int gid;

static void not_owner(void *arg)
{
	(void)arg;
	struct semid_ds ds;
	union semun u = { .buf = &ds };
	CHECK_ERR(semctl(gid, 0, IPC_STAT, u), EACCES, "nobody IPC_STAT on 0600");
	memset(&ds, 0, sizeof ds);
	CHECK_ERR(semctl(gid, 0, IPC_SET, u), EPERM, "nobody IPC_SET");
	CHECK_ERR(semctl(gid, 0, IPC_RMID), EPERM, "nobody IPC_RMID");
}

static void owner(void *arg)
{
	(void)arg;
	struct semid_ds ds;
	union semun u = { .buf = &ds };
	CHECK_OK(semctl(gid, 0, IPC_STAT, u), "the nobody owner IPC_STAT");
	ds.sem_perm.mode = 0400;
	CHECK_OK(semctl(gid, 0, IPC_SET, u), "the nobody owner IPC_SET");
	CHECK_ERR(semctl(gid, 0, SETVAL, (union semun){ .val = 1 }), EACCES, "read-only now");
	CHECK_OK(semctl(gid, 0, IPC_RMID), "the nobody owner IPC_RMID");
}

int main(int argc, char **argv)
{
	conf_init("semctl02", 30);
	key_t key = conf_key(29);
	conf_single_role(argc, argv, &key);
	int id = conf_track_sem(CHECK_OK(semget(key, 2, IPC_CREAT | IPC_EXCL | 0600), "semget"));
	gid = id;
	struct semid_ds ds;
	union semun u = { .buf = &ds };
	CHECK_OK(semctl(id, 0, IPC_STAT, u), "IPC_STAT");
	CHECK(ds.sem_otime == 0, "no semop yet: otime %ld", (long)ds.sem_otime);
	time_t c0 = ds.sem_ctime;
	sleep(1);
	CHECK_OK(semctl(id, 0, SETVAL, (union semun){ .val = 3 }), "SETVAL");
	CHECK_OK(semctl(id, 0, IPC_STAT, u), "IPC_STAT");
	CHECK(ds.sem_otime == 0, "SETVAL is no semop: otime %ld", (long)ds.sem_otime);
	CHECK(ds.sem_ctime > c0, "SETVAL moved ctime");
	struct sembuf op = { 1, 0, 0 };
	time_t t0 = time(NULL);
	CHECK_OK(semop(id, &op, 1), "a wait-for-zero that goes");
	CHECK_OK(semctl(id, 0, IPC_STAT, u), "IPC_STAT");
	CHECK(ds.sem_otime >= t0, "otime after a semop: %ld", (long)ds.sem_otime);
	CHECK_ERR(semctl(id, 0, 77), EINVAL, "bad command");
	CHECK_ERR(semctl(-1, 0, IPC_STAT, u), EINVAL, "negative id");
	CHECK_ERR(semctl(id, 0, IPC_STAT, (union semun){ .buf = NULL }), EFAULT, "IPC_STAT to NULL");
	CHECK_ERR(semctl(id, 0, IPC_SET, (union semun){ .buf = NULL }), EFAULT, "IPC_SET from NULL");
	CHECK_OK(semctl(id, 0, IPC_STAT, u), "IPC_STAT");
	ds.sem_perm.uid = (uid_t)-1;
	CHECK_ERR(semctl(id, 0, IPC_SET, u), EINVAL, "IPC_SET uid -1");
	conf_as_nobody(not_owner, NULL);
	CHECK_OK(semctl(id, 0, IPC_STAT, u), "IPC_STAT");
	ds.sem_perm.uid = NOBODY_UID;
	ds.sem_perm.mode = 01600;
	CHECK_OK(semctl(id, 0, IPC_SET, u), "give it to nobody");
	CHECK_OK(semctl(id, 0, IPC_STAT, u), "IPC_STAT");
	CHECK(ds.sem_perm.uid == NOBODY_UID && ds.sem_perm.cuid == geteuid(), "owner %u creator %u", ds.sem_perm.uid, ds.sem_perm.cuid);
	CHECK((ds.sem_perm.mode & 0777) == 0600 && !(ds.sem_perm.mode & 01000), "mode %o", ds.sem_perm.mode);
	conf_as_nobody(owner, NULL);
	CHECK_ERR(semctl(id, 0, IPC_STAT, u), EINVAL, "removed by its owner");
	CHECK_ERR(semctl(id, 0, IPC_RMID), EINVAL, "IPC_RMID twice");
	return conf_done();
}
