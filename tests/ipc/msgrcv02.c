/* msgrcv02 — msgrcv's errors: E2BIG (a longer message without
 * MSG_NOERROR, which stays queued), EACCES (nobody on a 0602 queue),
 * EINVAL (negative or removed id, negative msgsz), ENOMSG (IPC_NOWAIT,
 * nothing of that type), EFAULT (an unwritable buffer: the message stays). */
#include <sys/mman.h>
#include "conf.h"

static void as_nobody(void *arg)
{
	int id = *(int *)arg;
	static struct conf_msg m;
	CHECK_ERR(msgrcv(id, &m, sizeof m.mtext, 0, IPC_NOWAIT), EACCES, "nobody msgrcv on 0602");
}

int main(int argc, char **argv)
{
	conf_init("msgrcv02", 30);
	key_t key = conf_key(8);
	conf_single_role(argc, argv, &key);
	static struct conf_msg m;
	int id = conf_track_msq(CHECK_OK(msgget(key, IPC_CREAT | IPC_EXCL | 0602), "msgget"));
	m.mtype = 4;
	memcpy(m.mtext, "0123456789", 10);
	CHECK_OK(msgsnd(id, &m, 10, 0), "msgsnd");
	CHECK_ERR(msgrcv(id, &m, 5, 0, IPC_NOWAIT), E2BIG, "buffer too small");
	CHECK_ERR(msgrcv(id, &m, 5, 0, 0), E2BIG, "buffer too small, blocking");
	conf_as_nobody(as_nobody, &id);
	CHECK_ERR(msgrcv(-1, &m, 10, 0, 0), EINVAL, "negative id");
	CHECK_ERR(msgrcv(id, &m, (size_t)-1, 0, 0), EINVAL, "negative msgsz");
	CHECK_ERR(msgrcv(id, &m, 10, 5, IPC_NOWAIT), ENOMSG, "no message of type 5");
	CHECK_ERR(msgrcv(id, &m, 10, 4, IPC_NOWAIT | MSG_EXCEPT), ENOMSG, "only type 4 there");
	void *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK_ERR(msgrcv(id, ro, 10, 0, IPC_NOWAIT), EFAULT, "unwritable buffer");
	struct msqid_ds ds;
	CHECK_OK(msgctl(id, IPC_STAT, &ds), "IPC_STAT");
	/* Linux has already taken the message off when the copy-out fails */
	CHECK(ds.msg_qnum == 0 || ds.msg_qnum == 1, "qnum %lu after EFAULT", (unsigned long)ds.msg_qnum);
	if (ds.msg_qnum == 1) {
		ssize_t n = msgrcv(id, &m, 10, 0, IPC_NOWAIT);
		CHECK(n == 10 && !memcmp(m.mtext, "0123456789", 10), "the message is intact");
	}
	int gone = msgget(IPC_PRIVATE, 0600);
	msgctl(gone, IPC_RMID, NULL);
	CHECK_ERR(msgrcv(gone, &m, 10, 0, IPC_NOWAIT), EINVAL, "removed id");
	return conf_done();
}
