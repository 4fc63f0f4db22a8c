/* msgctl02 — msgctl's errors: EPERM (IPC_SET/IPC_RMID by neither owner
 * nor creator; raising msg_qbytes above msgmnb without CAP_SYS_RESOURCE,
 * as the nobody owner), EACCES (IPC_STAT without read permission),
 * EINVAL (bad command, negative or removed id, an invalid uid in
 * IPC_SET), EFAULT (unreadable/unwritable buffer). */
#include <sys/mman.h>
#include "conf.h"


static void not_owner(void *arg)
{
	int id = *(int *)arg;
	struct msqid_ds ds;
	CHECK_ERR(msgctl(id, IPC_STAT, &ds), EACCES, "nobody IPC_STAT on 0600");
	memset(&ds, 0, sizeof ds);
	ds.msg_qbytes = 10;
	CHECK_ERR(msgctl(id, IPC_SET, &ds), EPERM, "nobody IPC_SET");
	CHECK_ERR(msgctl(id, IPC_RMID, NULL), EPERM, "nobody IPC_RMID");
}

static void owner(void *arg)
{
	int id = *(int *)arg;
	struct msqid_ds ds;
	CHECK_OK(msgctl(id, IPC_STAT, &ds), "nobody, owner, IPC_STAT");
	ds.msg_qbytes += 1000000;
	CHECK_ERR(msgctl(id, IPC_SET, &ds), EPERM, "qbytes above msgmnb without CAP_SYS_RESOURCE");
	ds.msg_qbytes = 1000;
	CHECK_OK(msgctl(id, IPC_SET, &ds), "lowering qbytes is fine");
	CHECK_OK(msgctl(id, IPC_RMID, NULL), "the owner removes it");
}

int main(int argc, char **argv)
{
	conf_init("msgctl02", 30);
	key_t key = conf_key(13);
	conf_single_role(argc, argv, &key);
	int id = conf_track_msq(CHECK_OK(msgget(key, IPC_CREAT | IPC_EXCL | 0600), "msgget"));
	struct msqid_ds ds;
	CHECK_ERR(msgctl(id, 99, &ds), EINVAL, "bad command");
	CHECK_ERR(msgctl(id, -1, &ds), EINVAL, "negative command");
	CHECK_ERR(msgctl(-1, IPC_STAT, &ds), EINVAL, "negative id");
	CHECK_ERR(msgctl(id, IPC_STAT, NULL), EFAULT, "IPC_STAT to NULL");
	void *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK_ERR(msgctl(id, IPC_STAT, ro), EFAULT, "IPC_STAT to read-only memory");
	CHECK_ERR(msgctl(id, IPC_SET, NULL), EFAULT, "IPC_SET from NULL");
	CHECK_OK(msgctl(id, IPC_STAT, &ds), "IPC_STAT");
	ds.msg_perm.uid = (uid_t)-1;
	CHECK_ERR(msgctl(id, IPC_SET, &ds), EINVAL, "IPC_SET uid -1");
	conf_as_nobody(not_owner, &id);
	CHECK_OK(msgctl(id, IPC_STAT, &ds), "IPC_STAT");
	ds.msg_perm.uid = NOBODY_UID;
	CHECK_OK(msgctl(id, IPC_SET, &ds), "give it to nobody");
	conf_as_nobody(owner, &id);
	CHECK_ERR(msgctl(id, IPC_STAT, &ds), EINVAL, "removed by its owner");
	int gone = msgget(IPC_PRIVATE, 0600);
	msgctl(gone, IPC_RMID, NULL);
	CHECK_ERR(msgctl(gone, IPC_RMID, NULL), EINVAL, "IPC_RMID twice");
	return conf_done();
}
