/* semget02 — semget fails with ENOSPC past semmni sets or semmns
 * semaphores (the limits semctl(IPC_INFO) reports), and succeeds again
 * after a removal. Needs small limits: the native runner gives it a
 * private IPC namespace with kernel.sem lowered. */
#include "conf.h"

int main(int argc, char **argv)
{
	conf_init("semget02", 60);
	key_t key = conf_key(21);
	conf_single_role(argc, argv, &key);
	struct seminfo si;
	union semun u = { .__buf = &si };
	CHECK(semctl(0, 0, IPC_INFO, u) >= 0, "IPC_INFO: %s", strerror(errno));
	CHECK(si.semmni > 1 && si.semmni <= 4096, "semmni %d: run with a semmni of at most 4096", si.semmni);
	if (si.semmni <= 1 || si.semmni > 4096)
		return conf_done();
	static int ids[4096];
	int n = 0, err = 0;
	for (;;) {
		int id = semget(IPC_PRIVATE, 1, 0600);
		if (id < 0) {
			err = errno;
			break;
		}
		ids[n++] = id;
		if (n > si.semmni)
			break;
	}
	CHECK(err == ENOSPC && n <= si.semmni, "sets: %d made, then errno %d (%s)", n, err, strerror(err));
	if (n > 0) {
		semctl(ids[--n], 0, IPC_RMID);
		int id = CHECK_OK(semget(IPC_PRIVATE, 1, 0600), "a set after a removal");
		if (id >= 0)
			ids[n++] = id;
	}
	for (int i = 0; i < n; i++)
		semctl(ids[i], 0, IPC_RMID);
	/* semmns: the sum of nsems */
	if (si.semmns / 2 + 1 <= si.semmsl) {
		int big = si.semmns / 2 + 1;
		int a = conf_track_sem(CHECK_OK(semget(IPC_PRIVATE, big, 0600), "half of semmns"));
		CHECK_ERR(semget(key, big, IPC_CREAT | 0600), ENOSPC, "past semmns");
		semctl(a, 0, IPC_RMID);
		int b = conf_track_sem(CHECK_OK(semget(key, big, IPC_CREAT | 0600), "after the removal"));
		(void)b;
	} else {
		CHECK(0, "semmns %d above twice semmsl %d: run with kernel.sem lowered", si.semmns, si.semmsl);
	}
	return conf_done();
}
