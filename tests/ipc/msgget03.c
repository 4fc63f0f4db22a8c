/* msgget03 — msgget fails with ENOSPC once msgmni queues exist (the limit
 * read from msgctl(IPC_INFO), as the kernel reports it), and a queue can
 * be created again once one is removed. Needs a small msgmni: the native
 * runner gives it a private IPC namespace with msgmni lowered. */
#include "conf.h"

int main(int argc, char **argv)
{
	conf_init("msgget03", 60);
	key_t key = conf_key(3);
	conf_single_role(argc, argv, &key);
	struct msginfo mi;
	int r = msgctl(0, IPC_INFO, (struct msqid_ds *)&mi);
	CHECK(r >= 0, "IPC_INFO: %s", strerror(errno));
	if (r < 0)
		return conf_done();
	int limit = mi.msgmni;
	CHECK(limit > 0 && limit <= 4096, "msgmni %d: run with a msgmni of at most 4096", limit);
	if (limit <= 0 || limit > 4096)
		return conf_done();
	static int ids[4096];
	int n = 0, err = 0;
	for (;;) {
		int id = msgget(IPC_PRIVATE, 0600);
		if (id < 0) {
			err = errno;
			break;
		}
		ids[n++] = id;
		if (n > limit)
			break;
	}
	/* Other queues of this namespace count too: at most limit of ours. */
	CHECK(err == ENOSPC, "after %d queues: errno %d (%s), want ENOSPC", n, err, strerror(err));
	CHECK(n <= limit, "created %d queues with msgmni %d", n, limit);
	CHECK(n > 0, "could not create a single queue");
	if (n > 0) {
		CHECK_OK(msgctl(ids[--n], IPC_RMID, NULL), "remove one");
		int id = CHECK_OK(msgget(IPC_PRIVATE, 0600), "create after a removal");
		if (id >= 0)
			ids[n++] = id;
		CHECK_ERR(msgget(key, IPC_CREAT | 0600), ENOSPC, "a keyed queue is refused too");
	}
	for (int i = 0; i < n; i++)
		msgctl(ids[i], IPC_RMID, NULL);
	return conf_done();
}
