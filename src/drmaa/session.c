/* session.c — drmaa_init / drmaa_exit, the session lock, and the strings
 * of the binding (contact, version, DRM system, implementation).
 *
 * A session is a directory of job state (jobstore.h) named by the contact
 * string; drmaa_init(NULL) makes a new one, drmaa_init(NAME) attaches to
 * (or creates) session NAME, so a program can exit and later wait for
 * the jobs it left running, as the spec allows. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "api/client.h"
#include "drmaa/drmaa-int.h"
#include "proto/api.pb-c.h"

struct drmaa_session drmaa_sess = { .lock = PTHREAD_MUTEX_INITIALIZER };

void drmaa_lock(void)
{
	pthread_mutex_lock(&drmaa_sess.lock);
}

void drmaa_unlock(void)
{
	pthread_mutex_unlock(&drmaa_sess.lock);
}

int drmaa_need_session(char *diag, size_t len)
{
	if (!drmaa_sess.active)
		return drmaa_diag(diag, len, DRMAA_ERRNO_NO_ACTIVE_SESSION,
				  "no active DRMAA session: call drmaa_init first");
	return 0;
}

const char *drmaa_socket(void)
{
	/* Resolved once per session (it reads krgd.conf). */
	if (!drmaa_sess.active || !drmaa_sess.socket[0])
		return krg_api_socket_path(NULL);
	return drmaa_sess.socket;
}

unsigned drmaa_job_seq(const char *job_id)
{
	size_t n = strlen(drmaa_sess.name);
	if (!job_id || strncmp(job_id, drmaa_sess.name, n) || job_id[n] != '.')
		return 0;
	const char *p = job_id + n + 1;
	if (*p < '1' || *p > '9')
		return 0;
	char *end;
	errno = 0;
	unsigned long v = strtoul(p, &end, 10);
	return *end || errno || v > 0xffffffffu ? 0 : (unsigned)v;
}

bool drmaa_reaped_known(unsigned seq)
{
	if (seq < drmaa_sess.reaped_bits && drmaa_sess.reaped[seq / 8] & (1u << (seq % 8)))
		return true;
	if (!krg_job_has(drmaa_sess.dir, seq, "reaped"))
		return false;
	drmaa_reap(seq); /* by another attachment to the session: remember */
	return true;
}

int drmaa_reap(unsigned seq)
{
	if (seq >= drmaa_sess.reaped_bits) {
		size_t bits = (seq + 1024) & ~(size_t)7;
		uint8_t *n = realloc(drmaa_sess.reaped, bits / 8);
		if (n) {
			memset(n + drmaa_sess.reaped_bits / 8, 0, (bits - drmaa_sess.reaped_bits) / 8);
			drmaa_sess.reaped = n;
			drmaa_sess.reaped_bits = bits;
		}
	}
	if (seq < drmaa_sess.reaped_bits)
		drmaa_sess.reaped[seq / 8] |= (uint8_t)(1u << (seq % 8));
	for (size_t i = 0; i < drmaa_sess.npend; i++)
		if (drmaa_sess.pend[i] == seq) {
			memmove(&drmaa_sess.pend[i], &drmaa_sess.pend[i + 1],
				(drmaa_sess.npend - i - 1) * sizeof(unsigned));
			drmaa_sess.npend--;
			break;
		}
	return krg_job_mark(drmaa_sess.dir, seq, "reaped", true);
}

void drmaa_pending_add(unsigned seq)
{
	if (drmaa_sess.npend == drmaa_sess.cappend) {
		size_t nc = drmaa_sess.cappend ? 2 * drmaa_sess.cappend : 64;
		unsigned *n = realloc(drmaa_sess.pend, nc * sizeof(*n));
		if (!n)
			return; /* found again by drmaa_pending_refresh */
		drmaa_sess.pend = n;
		drmaa_sess.cappend = nc;
	}
	drmaa_sess.pend[drmaa_sess.npend++] = seq;
}

int drmaa_pending_refresh(void)
{
	unsigned *v;
	size_t n;
	int r = krg_jobs_list(drmaa_sess.dir, &v, &n);
	if (r < 0)
		return r;
	drmaa_sess.npend = 0;
	for (size_t i = 0; i < n; i++)
		if (!drmaa_reaped_known(v[i]))
			drmaa_pending_add(v[i]);
	free(v);
	return 0;
}

/* Ask krgd who we are: proves it answers, and gives the node list. */
static int ask_krgd(char *diag, size_t len)
{
	char err[512];
	uint8_t *resp = NULL;
	size_t rlen = 0;
	int r = krg_api_call(drmaa_socket(), "cluster.status", NULL, 0, 10000, &resp, &rlen, err, sizeof(err));
	if (r < 0)
		return drmaa_diag(diag, len, DRMAA_ERRNO_DRMS_INIT_FAILED, "cannot reach krgd at %s: %s",
				  drmaa_socket(), err);
	Krg__Api__ClusterStatus *st = krg__api__cluster_status__unpack(NULL, rlen, resp);
	free(resp);
	if (!st)
		return drmaa_diag(diag, len, DRMAA_ERRNO_DRMS_INIT_FAILED, "krgd sent a malformed cluster status");
	snprintf(drmaa_sess.cluster, sizeof(drmaa_sess.cluster), "%s", st->cluster_name);
	drmaa_sess.node = st->self;
	drmaa_sess.n_nodes = 0;
	for (size_t i = 0; i < st->n_nodes && drmaa_sess.n_nodes < 256; i++)
		drmaa_sess.nodes[drmaa_sess.n_nodes++] = st->nodes[i]->id;
	krg__api__cluster_status__free_unpacked(st, NULL);
	return 0;
}

int drmaa_init(const char *contact, char *diag, size_t len)
{
	drmaa_lock();
	int r = 0;
	char name[KRG_JOB_SESSION_MAX], why[512];
	if (drmaa_sess.active) {
		r = drmaa_diag(diag, len, DRMAA_ERRNO_ALREADY_ACTIVE_SESSION,
			       "session %s is already active (drmaa_exit first)", drmaa_sess.name);
		goto out;
	}
	if (contact && *contact) {
		if (!krg_jobs_session_valid(contact)) {
			r = drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_CONTACT_STRING,
				       "contact '%.64s' is not a krg session name ([A-Za-z0-9_-], at most %d)", contact,
				       KRG_JOB_SESSION_MAX - 1);
			goto out;
		}
		snprintf(name, sizeof(name), "%s", contact);
	} else {
		uint32_t rnd = 0;
		if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
			rnd = (uint32_t)time(NULL) ^ (uint32_t)getpid() << 8;
		snprintf(name, sizeof(name), "s%lx%04x", (unsigned long)time(NULL) & 0xffffff, rnd & 0xffff);
	}
	if (krg_jobs_base(drmaa_sess.base, sizeof(drmaa_sess.base), true, why, sizeof(why)) < 0) {
		r = drmaa_diag(diag, len, DRMAA_ERRNO_DRMS_INIT_FAILED, "%s", why);
		goto out;
	}
	drmaa_sess.socket[0] = 0;
	if ((r = ask_krgd(diag, len)))
		goto out;
	snprintf(drmaa_sess.socket, sizeof(drmaa_sess.socket), "%s", krg_api_socket_path(NULL));
	snprintf(drmaa_sess.dir, sizeof(drmaa_sess.dir), "%s/%s", drmaa_sess.base, name);
	if (mkdir(drmaa_sess.dir, 0700) < 0 && errno != EEXIST) {
		r = drmaa_diag(diag, len, DRMAA_ERRNO_DRMS_INIT_FAILED, "cannot create %s: %s", drmaa_sess.dir,
			       strerror(errno));
		goto out;
	}
	snprintf(drmaa_sess.name, sizeof(drmaa_sess.name), "%s", name);
	drmaa_sess.active = true;
	drmaa_sess.next_seq = 0;
	free(drmaa_sess.reaped);
	drmaa_sess.reaped = NULL;
	drmaa_sess.reaped_bits = 0;
	drmaa_sess.npend = 0;
	drmaa_sess.gen++;
out:
	drmaa_unlock();
	return r;
}

int drmaa_exit(char *diag, size_t len)
{
	drmaa_lock();
	int r = drmaa_need_session(diag, len);
	if (!r) {
		/* Jobs go on (their shepherds are detached); templates go. */
		while (drmaa_sess.templates) {
			struct drmaa_job_template_s *t = drmaa_sess.templates;
			drmaa_sess.templates = t->next;
			drmaa_template_free(t);
		}
		drmaa_sess.active = false;
		drmaa_sess.gen++;
	}
	drmaa_unlock();
	return r;
}

static int put(char *out, size_t outlen, const char *s, char *diag, size_t len)
{
	if (!out || !outlen)
		return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "output buffer missing");
	snprintf(out, outlen, "%s", s);
	return 0;
}

int drmaa_get_contact(char *contact, size_t contact_len, char *diag, size_t len)
{
	drmaa_lock();
	/* Before init: the default contact, empty (drmaa_init makes a new session). */
	int r = put(contact, contact_len, drmaa_sess.active ? drmaa_sess.name : "", diag, len);
	drmaa_unlock();
	return r;
}

int drmaa_version(unsigned int *major, unsigned int *minor, char *diag, size_t len)
{
	if (!major || !minor)
		return drmaa_diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "major or minor is NULL");
	*major = 1;
	*minor = 0;
	return 0;
}

int drmaa_get_DRM_system(char *drm_system, size_t drm_system_len, char *diag, size_t len)
{
	char s[256];
	drmaa_lock();
	if (drmaa_sess.active)
		snprintf(s, sizeof(s), "krg %s (cluster %s, node %u)", KRG_DRMAA_VERSION, drmaa_sess.cluster,
			 drmaa_sess.node);
	else
		snprintf(s, sizeof(s), "krg %s", KRG_DRMAA_VERSION);
	drmaa_unlock();
	return put(drm_system, drm_system_len, s, diag, len);
}

int drmaa_get_DRMAA_implementation(char *impl, size_t impl_len, char *diag, size_t len)
{
	return put(impl, impl_len, KRG_DRMAA_IMPL, diag, len);
}
