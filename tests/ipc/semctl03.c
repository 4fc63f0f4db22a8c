/* semctl03 — IPC_INFO and SEM_INFO (the limits of /proc/sys/kernel/sem;
 * SEM_INFO's semusz/semaem are the sets and semaphores in use; the return
 * value is the highest index in use), SEM_STAT (by index, returns the id,
 * needs read permission) and SEM_STAT_ANY (without the check). */
#include "conf.h"

static int gid, gidx;

static void as_nobody(void *arg)
{
	(void)arg;
	struct semid_ds ds;
	union semun u = { .buf = &ds };
	CHECK_ERR(semctl(gidx, 0, SEM_STAT, u), EACCES, "nobody SEM_STAT on 0600");
	int r = semctl(gidx, 0, SEM_STAT_ANY, u);
	CHECK(r == gid, "nobody SEM_STAT_ANY returns %d (%s), want %d", r, r < 0 ? strerror(errno) : "", gid);
}

int main(int argc, char **argv)
{
	conf_init("semctl03", 30);
	key_t key = conf_key(30);
	conf_single_role(argc, argv, &key);
	int id = conf_track_sem(CHECK_OK(semget(key, 5, IPC_CREAT | IPC_EXCL | 0600), "semget"));
	gid = id;
	int k[4] = { 0 };
	FILE *f = fopen("/proc/sys/kernel/sem", "r");
	CHECK(f && fscanf(f, "%d %d %d %d", &k[0], &k[1], &k[2], &k[3]) == 4, "read /proc/sys/kernel/sem");
	if (f)
		fclose(f);
	struct seminfo si;
	union semun ui = { .__buf = &si };
	int max = semctl(0, 0, IPC_INFO, ui);
	CHECK(max >= 0, "IPC_INFO: %s", strerror(errno));
	CHECK(si.semmsl == k[0] && si.semmns == k[1] && si.semopm == k[2] && si.semmni == k[3],
		"limits %d %d %d %d vs sysctl %d %d %d %d", si.semmsl, si.semmns, si.semopm, si.semmni, k[0], k[1], k[2], k[3]);
	CHECK(si.semvmx == 32767 && si.semaem == 32767 && si.semusz == 20, "IPC_INFO constants vmx %d aem %d usz %d", si.semvmx, si.semaem, si.semusz);
	int max2 = semctl(0, 0, SEM_INFO, ui);
	CHECK(max2 == max, "SEM_INFO returns %d, IPC_INFO %d", max2, max);
	CHECK(si.semusz >= 1 && si.semaem >= 5, "SEM_INFO use: %d sets, %d semaphores", si.semusz, si.semaem);
	int found = 0;
	for (int i = 0; i <= max; i++) {
		struct semid_ds ds;
		union semun u = { .buf = &ds };
		if (semctl(i, 0, SEM_STAT, u) == id) {
			found++;
			CHECK(ds.sem_nsems == 5 && ds.sem_perm.__key == key, "SEM_STAT contents");
			gidx = i;
			conf_as_nobody(as_nobody, NULL);
		}
	}
	CHECK(found == 1, "SEM_STAT found our set %d times", found);
	struct semid_ds ds;
	union semun u = { .buf = &ds };
	CHECK_ERR(semctl(max + 1, 0, SEM_STAT, u), EINVAL, "SEM_STAT past the highest index");
	return conf_done();
}
