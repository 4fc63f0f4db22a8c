/* msgctl03 — IPC_INFO and MSG_INFO (the limits of /proc/sys/kernel and
 * the use: queues, messages, bytes; the return value is the highest index
 * in use), MSG_STAT (by index, returns the id, needs read permission),
 * MSG_STAT_ANY (as MSG_STAT without the permission check). */
#include "conf.h"

static long sysctl_val(const char *name)
{
	char p[128];
	snprintf(p, sizeof p, "/proc/sys/kernel/%s", name);
	FILE *f = fopen(p, "r");
	long v = -1;
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static int gid;

static void as_nobody(void *arg)
{
	int idx = *(int *)arg;
	struct msqid_ds ds;
	CHECK_ERR(msgctl(idx, MSG_STAT, &ds), EACCES, "nobody MSG_STAT on 0600");
	int r = msgctl(idx, MSG_STAT_ANY, &ds);
	CHECK(r == gid, "nobody MSG_STAT_ANY returns %d (%s), want %d", r, r < 0 ? strerror(errno) : "", gid);
}

int main(int argc, char **argv)
{
	conf_init("msgctl03", 30);
	key_t key = conf_key(14);
	conf_single_role(argc, argv, &key);
	int id = conf_track_msq(CHECK_OK(msgget(key, IPC_CREAT | IPC_EXCL | 0600), "msgget"));
	gid = id;
	struct conf_msg m = { .mtype = 1 };
	CHECK_OK(msgsnd(id, &m, 10, 0), "msgsnd");
	CHECK_OK(msgsnd(id, &m, 20, 0), "msgsnd");
	struct msginfo mi;
	int max = msgctl(0, IPC_INFO, (struct msqid_ds *)&mi);
	CHECK(max >= 0, "IPC_INFO: %s", strerror(errno));
	CHECK(mi.msgmax == sysctl_val("msgmax"), "msgmax %d vs sysctl %ld", mi.msgmax, sysctl_val("msgmax"));
	CHECK(mi.msgmnb == sysctl_val("msgmnb"), "msgmnb %d vs sysctl %ld", mi.msgmnb, sysctl_val("msgmnb"));
	CHECK(mi.msgmni == sysctl_val("msgmni"), "msgmni %d vs sysctl %ld", mi.msgmni, sysctl_val("msgmni"));
	CHECK(mi.msgssz == 16 && mi.msgseg == 0xffff, "msgssz %d msgseg %u", mi.msgssz, mi.msgseg);
	CHECK(mi.msgpool == 512000 && mi.msgmap == 16384 && mi.msgtql == 16384, "IPC_INFO constants %d %d %d", mi.msgpool, mi.msgmap, mi.msgtql);
	/* MSG_INFO: our queue counts (others of this IPC space may too) */
	int max2 = msgctl(0, MSG_INFO, (struct msqid_ds *)&mi);
	CHECK(max2 == max, "MSG_INFO returns %d, IPC_INFO %d", max2, max);
	CHECK(mi.msgpool >= 1 && mi.msgmap >= 2 && mi.msgtql >= 30, "MSG_INFO use: %d queues %d messages %d bytes", mi.msgpool, mi.msgmap, mi.msgtql);
	/* MSG_STAT walks indexes 0..max: ours is among them, by its id */
	int found = 0;
	for (int i = 0; i <= max; i++) {
		struct msqid_ds ds;
		int r = msgctl(i, MSG_STAT, &ds);
		if (r == id) {
			found++;
			CHECK(ds.msg_qnum == 2 && ds.__msg_cbytes == 30 && ds.msg_perm.__key == key, "MSG_STAT contents");
			int idx = i;
			conf_as_nobody(as_nobody, &idx);
		}
	}
	CHECK(found == 1, "MSG_STAT found our queue %d times", found);
	CHECK(max >= id % 32768, "max index %d below ours %d", max, id % 32768);
	struct msqid_ds ds;
	CHECK_ERR(msgctl(max + 1, MSG_STAT, &ds), EINVAL, "MSG_STAT past the highest index");
	return conf_done();
}
