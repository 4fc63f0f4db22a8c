/* msgget02 — msgget's permission and existence errors: EACCES when the
 * mode asked for is not granted (a non-owner, as nobody), EACCES for the
 * group class, the owner's bits for the owner, EEXIST before EACCES, and
 * a removed key is ENOENT. */
#include "conf.h"

static key_t k600, k604;

static void as_nobody(void *arg)
{
	(void)arg;
	CHECK_ERR(msgget(k600, 0400), EACCES, "nobody asks r on a 0600 queue");
	CHECK_ERR(msgget(k600, 0200), EACCES, "nobody asks w on a 0600 queue");
	CHECK(msgget(k600, 0) >= 0, "nobody asking for no access gets the id");
	CHECK(msgget(k604, 0004) >= 0, "nobody asks r (others) on a 0604 queue");
	CHECK(msgget(k604, 0444) >= 0, "r in every class is r for others");
	CHECK_ERR(msgget(k604, 0002), EACCES, "nobody asks w on a 0604 queue");
	CHECK_ERR(msgget(k604, IPC_CREAT | IPC_EXCL | 0002), EEXIST, "EEXIST comes before EACCES");
	struct msqid_ds ds;
	CHECK_ERR(msgctl(msgget(k600, 0), IPC_STAT, &ds), EACCES, "nobody IPC_STAT on 0600");
}

int main(int argc, char **argv)
{
	conf_init("msgget02", 30);
	key_t key = conf_key(2);
	conf_single_role(argc, argv, &key);
	k600 = key;
	k604 = key + 1;
	int a = conf_track_msq(CHECK_OK(msgget(k600, IPC_CREAT | 0600), "create 0600"));
	conf_track_msq(CHECK_OK(msgget(k604, IPC_CREAT | 0604), "create 0604"));
	conf_as_nobody(as_nobody, NULL);
	CHECK(msgget(k600, 0600) == a, "the owner gets rw");
	CHECK_OK(msgctl(a, IPC_RMID, NULL), "IPC_RMID");
	CHECK_ERR(msgget(k600, 0600), ENOENT, "a removed key");
	CHECK_ERR(msgctl(a, IPC_STAT, NULL), EINVAL, "a removed id");
	return conf_done();
}
