/* semop01 — semop's results and errors: increments, decrements, wait for
 * zero; several operations applied all together or not at all (a
 * blocked or ERANGE one leaves every value as it was); sempid and otime;
 * errors E2BIG (nsops > semopm), EINVAL (nsops 0, bad id), EFBIG (sem_num
 * past the set), ERANGE (past semvmx), EAGAIN (IPC_NOWAIT, judged by the
 * operation that would block), EACCES (nobody: alter needs w, zero needs
 * r), EFAULT. */
#include <sys/mman.h>
#include "conf.h"

static int gid;

static void as_nobody(void *arg)
{
	(void)arg;
	struct sembuf z = { 0, 0, IPC_NOWAIT }, up = { 0, 1, 0 };
	CHECK(semop(gid, &z, 1) == 0 || errno == EAGAIN, "nobody waits for zero on 0604 (%s)", strerror(errno));
	CHECK_ERR(semop(gid, &up, 1), EACCES, "nobody alters 0604");
}

static int val(int id, int n)
{
	return semctl(id, n, GETVAL);
}

int main(int argc, char **argv)
{
	conf_init("semop01", 30);
	key_t key = conf_key(22);
	conf_single_role(argc, argv, &key);
	int id = conf_track_sem(CHECK_OK(semget(key, 3, IPC_CREAT | IPC_EXCL | 0604), "semget"));
	gid = id;
	time_t t0 = time(NULL);
	struct sembuf s[3] = { { 0, 2, 0 }, { 1, 3, 0 }, { 2, 0, 0 } };
	CHECK_OK(semop(id, s, 3), "+2 +3 zero");
	CHECK(val(id, 0) == 2 && val(id, 1) == 3 && val(id, 2) == 0, "values %d %d %d", val(id, 0), val(id, 1), val(id, 2));
	CHECK(semctl(id, 1, GETPID) == getpid(), "sempid");
	struct semid_ds ds;
	union semun u = { .buf = &ds };
	CHECK_OK(semctl(id, 0, IPC_STAT, u), "IPC_STAT");
	CHECK(ds.sem_otime >= t0, "otime %ld", (long)ds.sem_otime);
	/* all or nothing */
	struct sembuf blocked[2] = { { 0, -1, 0 }, { 1, -4, IPC_NOWAIT } };
	CHECK_ERR(semop(id, blocked, 2), EAGAIN, "second op cannot go");
	CHECK(val(id, 0) == 2 && val(id, 1) == 3, "nothing applied (%d %d)", val(id, 0), val(id, 1));
	/* IPC_NOWAIT counts on the op that blocks only */
	struct sembuf nw[2] = { { 0, -1, IPC_NOWAIT }, { 2, 0, IPC_NOWAIT } };
	CHECK_OK(semop(id, nw, 2), "both can go");
	struct semid_ds d2;
	(void)d2;
	struct sembuf range[2] = { { 0, -1, 0 }, { 1, 32767, 0 } };
	CHECK_ERR(semop(id, range, 2), ERANGE, "past semvmx");
	CHECK(val(id, 0) == 1 && val(id, 1) == 3, "ERANGE applied nothing (%d %d)", val(id, 0), val(id, 1));
	/* one semaphore twice: in order */
	struct sembuf twice[2] = { { 2, 5, 0 }, { 2, -5, 0 } };
	CHECK_OK(semop(id, twice, 2), "+5 -5 on one semaphore");
	CHECK(val(id, 2) == 0, "value %d", val(id, 2));
	struct sembuf zero_nw = { 1, 0, IPC_NOWAIT };
	CHECK_ERR(semop(id, &zero_nw, 1), EAGAIN, "wait for zero on 3, IPC_NOWAIT");
	/* errors */
	struct seminfo si;
	union semun ui = { .__buf = &si };
	semctl(0, 0, IPC_INFO, ui);
	static struct sembuf many[1024];
	CHECK_ERR(semop(id, many, (size_t)si.semopm + 1), E2BIG, "nsops > semopm");
	CHECK_ERR(semop(id, s, 0), EINVAL, "nsops 0");
	CHECK_ERR(semop(-1, s, 1), EINVAL, "negative id");
	struct sembuf far = { 3, 1, 0 };
	CHECK_ERR(semop(id, &far, 1), EFBIG, "sem_num past the set");
	CHECK_ERR(semop(id, NULL, 1), EFAULT, "NULL sops");
	int gone = semget(IPC_PRIVATE, 1, 0600);
	semctl(gone, 0, IPC_RMID);
	CHECK_ERR(semop(gone, s, 1), EINVAL, "removed id");
	conf_as_nobody(as_nobody, NULL);
	return conf_done();
}
