/* caps.c — Kerrighed's process capabilities, stored where every node reads
 * them: the replicated registry "caps", key = the process's cluster id in
 * decimal, value "EFF PERM INH_EFF INH_PERM START" (the masks, and the
 * process's start time in clock ticks so a reused pid does not inherit a
 * dead process's entry). A process without an entry inherits from its
 * nearest ancestor on this node that has one (children get the
 * inheritable sets as effective and permitted, as at Kerrighed's fork);
 * with none at all, every capability is set. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cluster/cluster.h"
#include "proc/procid.h"
#include "proc/schedsvc.h"
#include "proc/sched/sched-int.h"

static const struct {
	uint32_t cap;
	const char *name;
} cap_names[] = {
	{ KRG_CAP_CAN_MIGRATE, "CAN_MIGRATE" },
	{ KRG_CAP_DISTANT_FORK, "DISTANT_FORK" },
	{ KRG_CAP_CHECKPOINTABLE, "CHECKPOINTABLE" },
};

uint32_t krg_cap_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++)
		if (!strcmp(name, cap_names[i].name))
			return cap_names[i].cap;
	return 0;
}

const char *krg_cap_name(uint32_t cap)
{
	for (size_t i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++)
		if (cap == cap_names[i].cap)
			return cap_names[i].name;
	return "?";
}

int sched_proc_stat(pid_t pid, pid_t *ppid, uint64_t *start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -ESRCH;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	/* After "comm)": state(3) ppid(4) ... starttime(22). */
	int field = 2;
	long long v_ppid = 0;
	unsigned long long v_start = 0;
	for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
		field++;
		if (field == 4)
			v_ppid = atoll(tok);
		else if (field == 22) {
			v_start = strtoull(tok, NULL, 10);
			break;
		}
	}
	if (field != 22)
		return -EIO;
	if (ppid)
		*ppid = (pid_t)v_ppid;
	if (start)
		*start = v_start;
	return 0;
}

/* The entry of id, if any and (when pid runs here) still about pid. */
int sched_caps_entry(struct krg_cluster *c, uint32_t id, pid_t pid, struct krg_caps *out)
{
	const uint8_t *v;
	size_t len;
	char key[16], buf[128];
	if (!c)
		return -ENOENT;
	snprintf(key, sizeof(key), "%u", id);
	if (krg_cluster_registry_get(c, "caps", key, &v, &len) < 0 || len == 0 || len >= sizeof(buf))
		return -ENOENT;
	memcpy(buf, v, len);
	buf[len] = 0;
	unsigned e, p, ie, ip;
	unsigned long long start;
	if (sscanf(buf, "%u %u %u %u %llu", &e, &p, &ie, &ip, &start) != 5)
		return -ENOENT;
	uint64_t now_start;
	if (pid > 0 && sched_proc_stat(pid, NULL, &now_start) == 0 && now_start != start)
		return -ENOENT; /* a reused pid */
	*out = (struct krg_caps){ .eff = e & KRG_CAP_ALL, .perm = p & KRG_CAP_ALL, .inh_eff = ie & KRG_CAP_ALL,
				  .inh_perm = ip & KRG_CAP_ALL };
	return 0;
}

void krg_caps_child(const struct krg_caps *k, struct krg_caps *child)
{
	*child = (struct krg_caps){ .eff = k->inh_eff & k->inh_perm, .perm = k->inh_perm,
				    .inh_eff = k->inh_eff & k->inh_perm, .inh_perm = k->inh_perm };
}

int krg_caps_store(struct krg_cluster *c, uint32_t id, pid_t pid, const struct krg_caps *k,
		   void (*cb)(int status, const char *msg, void *data), void *data)
{
	uint64_t start;
	char key[16], val[96];
	int r = sched_proc_stat(pid, NULL, &start);
	if (r < 0)
		return r;
	snprintf(key, sizeof(key), "%u", id);
	int n = snprintf(val, sizeof(val), "%u %u %u %u %llu", k->eff & KRG_CAP_ALL, k->perm & KRG_CAP_ALL,
			 k->inh_eff & KRG_CAP_ALL, k->inh_perm & KRG_CAP_ALL, (unsigned long long)start);
	return krg_cluster_registry_set(c, "caps", key, val, (size_t)n, cb, data);
}

int krg_caps_get(struct krg_cluster *c, uint32_t self, uint32_t id, pid_t pid, struct krg_caps *out)
{
	struct krg_caps k;
	if (sched_caps_entry(c, id, pid, &k) == 0) {
		*out = k;
		return 1;
	}
	/* Inherited: walk up the parents on this node. */
	pid_t cur = pid;
	for (int depth = 0; cur > 1 && depth < 256; depth++) {
		pid_t pp;
		if (sched_proc_stat(cur, &pp, NULL) < 0 || pp <= 1)
			break;
		if (sched_caps_entry(c, krg_procid_make(self, (uint32_t)pp), pp, &k) == 0) {
			krg_caps_child(&k, out);
			return 1;
		}
		cur = pp;
	}
	*out = (struct krg_caps){ KRG_CAP_ALL, KRG_CAP_ALL, KRG_CAP_ALL, KRG_CAP_ALL };
	return 0;
}
