/* test_kddm.c — KDDM between several instances over the fake transport:
 * fetch/grab/put with invalidation, function shipping, a creation race
 * for one id from two nodes, home failure with and without backups, clean
 * leave, a partition healed, a node joining, 30 000 objects, and peers' malformed messages. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include "kddm/kddm.h"
#include "kddm.pb-c.h"
#include "kddm_fake.h"

/* ---- a set of 64-bit counters ---------------------------------------- */

struct counter {
	int64_t v;
};

static int invalidations;

static int c_export(struct kddm_set *s, uint64_t id, const void *obj, uint8_t **buf, size_t *len)
{
	const struct counter *c = obj;
	*buf = malloc(8);
	memcpy(*buf, &c->v, 8);
	*len = 8;
	return 0;
}

static int c_import(struct kddm_set *s, uint64_t id, const uint8_t *buf, size_t len, void **obj)
{
	if (len != 8)
		return -EBADMSG;
	struct counter *c = malloc(sizeof(*c));
	memcpy(&c->v, buf, 8);
	*obj = c;
	return 0;
}

static void c_free(struct kddm_set *s, uint64_t id, void *obj)
{
	free(obj);
}

static void c_invalidate(struct kddm_set *s, uint64_t id, void *obj)
{
	invalidations++;
}

/* Call: 8 bytes = amount to add; the object is created (with the caller's
 * node id * 1000) if absent: "get or create" decided at the home. */
struct pending_call {
	struct kddm_call *c;
	int64_t v;
};

static void c_call_done(struct kddm *k, int status, void *data)
{
	struct pending_call *p = data;
	kddm_call_done(p->c, status, &p->v, 8);
	free(p);
}

static void c_call(struct kddm_set *s, uint64_t id, void **obj, uint32_t from, const uint8_t *in, size_t len,
		   struct kddm_call *c)
{
	if (len != 8) {
		kddm_call_done(c, -EINVAL, NULL, 0);
		return;
	}
	int64_t add;
	memcpy(&add, in, 8);
	struct counter *ct = *obj;
	if (!ct) {
		ct = calloc(1, sizeof(*ct));
		ct->v = (int64_t)from * 1000;
		*obj = ct;
	}
	ct->v += add;
	int64_t v = ct->v;
	/* Answer only once the backup (if any) has the new value. */
	if (kddm_backup(kddm_set_kddm(s))) {
		struct pending_call *p = malloc(sizeof(*p));
		p->c = c;
		p->v = v;
		kddm_sync(s, id, c_call_done, p);
		return;
	}
	kddm_call_done(c, 0, &v, 8);
}

static const struct kddm_set_ops strict_ops = {
	.version = KDDM_OPS_V1,
	.export_obj = c_export,
	.import_obj = c_import,
	.free_obj = c_free,
	.invalidate = c_invalidate,
	.call = c_call,
};

static int c_touch(struct kddm_set *s, uint64_t id, void **obj)
{
	*obj = calloc(1, sizeof(struct counter));
	return 0;
}

static const struct kddm_set_ops auto_ops = {
	.version = KDDM_OPS_V1,
	.first_touch = c_touch,
	.export_obj = c_export,
	.import_obj = c_import,
	.free_obj = c_free,
	.invalidate = c_invalidate,
	.call = c_call,
};

static void make_sets(struct kddm *k, void *data)
{
	struct kddm_set *s;
	assert_int_equal(kddm_set_new(k, "test.strict", &strict_ops, NULL, &s), 0);
	assert_int_equal(kddm_set_new(k, "test.auto", &auto_ops, NULL, &s), 0);
	if (data)
		kddm_set_backup(k, true);
}

static struct kfake *cluster(unsigned n, bool backup)
{
	struct kfake *f = kfake_new(n);
	for (unsigned i = 0; i < n; i++)
		make_sets(kfake_kddm(f, i), backup ? (void *)1 : NULL);
	kfake_run(f, 0);
	return f;
}

static struct kddm_set *S(struct kfake *f, unsigned node, const char *name)
{
	struct kddm *k = kfake_kddm(f, node);
	assert_non_null(k);
	struct kddm_set *s = kddm_set_find(k, name);
	assert_non_null(s);
	return s;
}

/* ---- completion recorders ------------------------------------------- */

struct res {
	int done;
	int status;
	int64_t v;
};

static void obj_cb(struct kddm *k, int status, void *obj, void *data)
{
	struct res *r = data;
	r->done++;
	r->status = status;
	if (obj)
		r->v = ((struct counter *)obj)->v;
}

static void done_cb(struct kddm *k, int status, void *data)
{
	struct res *r = data;
	r->done++;
	r->status = status;
}

static void call_cb(struct kddm *k, int status, const uint8_t *out, size_t len, void *data)
{
	struct res *r = data;
	r->done++;
	r->status = status;
	if (status == 0 && len == 8)
		memcpy(&r->v, out, 8);
}

static int64_t fetch_value(struct kfake *f, unsigned node, const char *set, uint64_t id, int *status)
{
	struct res r = { 0 };
	assert_int_equal(kddm_fetch(S(f, node, set), id, obj_cb, &r), 0);
	kfake_run(f, 0);
	assert_int_equal(r.done, 1);
	*status = r.status;
	return r.v;
}

static int64_t call_add(struct kfake *f, unsigned node, const char *set, uint64_t id, int64_t add, int *status)
{
	struct res r = { 0 };
	assert_int_equal(kddm_call(S(f, node, set), id, &add, 8, call_cb, &r), 0);
	kfake_run(f, 0);
	assert_int_equal(r.done, 1);
	*status = r.status;
	return r.v;
}

static unsigned masters(struct kfake *f, unsigned n, const char *set, uint64_t id, unsigned *where)
{
	unsigned count = 0;
	for (unsigned i = 0; i < n; i++) {
		struct kddm *k = kfake_kddm(f, i);
		if (k && kddm_peek(kddm_set_find(k, set), id)) {
			count++;
			if (where)
				*where = i;
		}
	}
	return count;
}

/* An id whose hash home is node among the live nodes of instance k. */
static uint64_t id_homed_at(struct kddm *k, uint32_t node, uint64_t start)
{
	for (uint64_t id = start;; id++)
		if (kddm_hash_home(id, kddm_live(k)) == node)
			return id;
}

/* ---- tests ------------------------------------------------------------ */

static void test_fetch_grab_put(void **state)
{
	struct kfake *f = cluster(3, false);
	uint64_t id = id_homed_at(kfake_kddm(f, 0), 0, 100);
	struct counter *c = calloc(1, sizeof(*c));
	c->v = 42;
	struct res r = { 0 };
	assert_int_equal(kddm_create(S(f, 1, "test.strict"), id, c, done_cb, &r), 0);
	kfake_run(f, 0);
	assert_int_equal(r.status, 0);
	/* Creating it again is refused at the home, from anywhere. */
	c = calloc(1, sizeof(*c));
	r = (struct res){ 0 };
	assert_int_equal(kddm_create(S(f, 2, "test.strict"), id, c, done_cb, &r), 0);
	kfake_run(f, 0);
	assert_int_equal(r.status, -EEXIST);

	int st;
	assert_int_equal(fetch_value(f, 1, "test.strict", id, &st), 42);
	assert_int_equal(st, 0);
	assert_int_equal(fetch_value(f, 2, "test.strict", id, &st), 42);
	/* A second fetch is served by the local copy: no message. */
	uint64_t before = kfake_messages(f);
	assert_int_equal(fetch_value(f, 2, "test.strict", id, &st), 42);
	assert_int_equal(kfake_messages(f), before);

	/* Node 2 grabs: node 1's copy is invalidated before it gets it. */
	invalidations = 0;
	r = (struct res){ 0 };
	assert_int_equal(kddm_grab(S(f, 2, "test.strict"), id, obj_cb, &r), 0);
	kfake_run(f, 0);
	assert_int_equal(r.status, 0);
	assert_int_equal(invalidations, 1);
	/* While node 2 holds it, a fetch from node 1 waits. */
	struct res r1 = { 0 };
	assert_int_equal(kddm_fetch(S(f, 1, "test.strict"), id, obj_cb, &r1), 0);
	kfake_run(f, 0);
	assert_int_equal(r1.done, 0);
	struct kddm_set *s2 = S(f, 2, "test.strict");
	/* Node 2 reads its grabbed object locally, cannot grab it twice. */
	struct res rg = { 0 };
	assert_int_equal(kddm_fetch(s2, id, obj_cb, &rg), 0);
	assert_int_equal(rg.done, 1);
	assert_int_equal(rg.v, 42);
	r = (struct res){ 0 };
	assert_int_equal(kddm_grab(s2, id, obj_cb, &r), -EBUSY);
	assert_int_equal(kddm_put(s2, id, true, done_cb, &r), 0);
	kfake_run(f, 0);
	assert_int_equal(r.status, 0);
	assert_int_equal(r1.done, 1);
	assert_int_equal(r1.v, 42);
	kfake_free(f);
}

/* Grab, modify through the grab's pointer, put: everyone sees it. */
static void *grabbed;
static void grab_keep(struct kddm *k, int status, void *obj, void *data)
{
	*(int *)data = status;
	grabbed = obj;
}

static void test_grab_write_back(void **state)
{
	struct kfake *f = cluster(3, false);
	uint64_t id = id_homed_at(kfake_kddm(f, 0), 1, 7);
	int st;
	assert_int_equal(fetch_value(f, 0, "test.auto", id, &st), 0); /* first touch */
	assert_int_equal(fetch_value(f, 2, "test.auto", id, &st), 0);
	int gst = 1;
	assert_int_equal(kddm_grab(S(f, 0, "test.auto"), id, grab_keep, &gst), 0);
	kfake_run(f, 0);
	assert_int_equal(gst, 0);
	((struct counter *)grabbed)->v = 99;
	assert_int_equal(kddm_put(S(f, 0, "test.auto"), id, true, NULL, NULL), 0);
	kfake_run(f, 0);
	for (unsigned n = 0; n < 3; n++)
		assert_int_equal(fetch_value(f, n, "test.auto", id, &st), 99);
	/* The home itself grabs and puts without a message. */
	uint64_t before = kfake_messages(f);
	gst = 1;
	assert_int_equal(kddm_grab(S(f, 1, "test.auto"), id, grab_keep, &gst), 0);
	kfake_run(f, 0);
	assert_int_equal(gst, 0);
	((struct counter *)grabbed)->v = 100;
	assert_int_equal(kddm_put(S(f, 1, "test.auto"), id, true, NULL, NULL), 0);
	kfake_run(f, 0);
	/* Two invalidations (copies on 0 and 2; their acks are replies,
	 * not counted). */
	assert_int_equal(kfake_messages(f) - before, 2);
	assert_int_equal(fetch_value(f, 2, "test.auto", id, &st), 100);
	kfake_free(f);
}

static void test_call_shipping(void **state)
{
	struct kfake *f = cluster(4, false);
	uint64_t id = 5;
	struct res r[4][10];
	memset(r, 0, sizeof(r));
	/* 40 increments from 4 nodes, all in flight at once. */
	for (int i = 0; i < 10; i++)
		for (unsigned n = 0; n < 4; n++) {
			int64_t one = 1;
			assert_int_equal(kddm_call(S(f, n, "test.auto"), id, &one, 8, call_cb, &r[n][i]), 0);
		}
	kfake_run(f, 0);
	for (int i = 0; i < 10; i++)
		for (unsigned n = 0; n < 4; n++)
			assert_int_equal(r[n][i].status, 0);
	unsigned where = 99;
	assert_int_equal(masters(f, 4, "test.auto", id, &where), 1);
	assert_int_equal(where, kddm_hash_home(id, kddm_live(kfake_kddm(f, 0))));
	int st;
	int64_t v = call_add(f, 3, "test.auto", id, 0, &st);
	assert_int_equal(st, 0);
	/* created by the first call to arrive (its node * 1000), then +40 */
	assert_int_equal(v % 1000, 40);
	kfake_free(f);
}

/* Two nodes ask for the same id at once with "create if absent": the
 * home decides, one object, both get its value. */
static void test_create_race(void **state)
{
	for (uint64_t id = 1000; id < 1010; id++) {
		struct kfake *f = cluster(3, false);
		struct res a = { 0 }, b = { 0 };
		int64_t zero = 0;
		assert_int_equal(kddm_call(S(f, 1, "test.strict"), id, &zero, 8, call_cb, &a), 0);
		assert_int_equal(kddm_call(S(f, 2, "test.strict"), id, &zero, 8, call_cb, &b), 0);
		kfake_run(f, 0);
		assert_int_equal(a.status, 0);
		assert_int_equal(b.status, 0);
		assert_int_equal(a.v, b.v);
		assert_true(a.v == 1000 || a.v == 2000);
		assert_int_equal(masters(f, 3, "test.strict", id, NULL), 1);
		kfake_free(f);
	}
}

/* Without backups, a home that dies takes its objects with it: the new
 * home (the hash's next choice) has none, callers get -ENOENT, nothing
 * hangs, and objects homed elsewhere are untouched. */
static void test_home_down_no_backup(void **state)
{
	struct kfake *f = cluster(3, false);
	struct kddm *k0 = kfake_kddm(f, 0);
	uint64_t lost = id_homed_at(k0, 2, 1), kept = id_homed_at(k0, 1, 1);
	int st;
	call_add(f, 0, "test.strict", lost, 5, &st);
	assert_int_equal(st, 0);
	call_add(f, 0, "test.strict", kept, 5, &st);
	/* A fetch is on its way to node 2 when it dies. */
	struct res r = { 0 };
	assert_int_equal(kddm_fetch(S(f, 0, "test.strict"), lost, obj_cb, &r), 0);
	kfake_kill(f, 2);
	kfake_run(f, 0);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.status, -ENOENT);
	fetch_value(f, 1, "test.strict", lost, &st);
	assert_int_equal(st, -ENOENT);
	assert_int_equal(fetch_value(f, 0, "test.strict", kept, &st), 5);
	assert_int_equal(st, 0);
	/* A set with first_touch starts over from a fresh object. */
	assert_int_equal(fetch_value(f, 0, "test.auto", lost, &st), 0);
	assert_int_equal(st, 0);
	kfake_free(f);
}

/* With backups, every acknowledged change survives the home's death and
 * the backup serves it at once. */
static void test_home_down_backup(void **state)
{
	struct kfake *f = cluster(3, true);
	struct kddm *k0 = kfake_kddm(f, 0);
	uint64_t ids[20];
	for (int i = 0; i < 20; i++) {
		ids[i] = id_homed_at(k0, 2, i ? ids[i - 1] + 1 : 1);
		int st;
		for (int j = 0; j <= i; j++)
			call_add(f, (unsigned)j % 2, "test.strict", ids[i], 1, &st);
		assert_int_equal(st, 0);
	}
	/* Calls in flight when the home dies are retried at the new home. */
	struct res r = { 0 };
	int64_t one = 1;
	assert_int_equal(kddm_call(S(f, 1, "test.strict"), ids[0], &one, 8, call_cb, &r), 0);
	kfake_kill(f, 2);
	kfake_run(f, 0);
	assert_int_equal(r.done, 1);
	struct kddm_stats stt;
	kddm_stats(kfake_kddm(f, 0), &stt);
	struct kddm_stats st1;
	kddm_stats(kfake_kddm(f, 1), &st1);
	assert_int_equal(stt.promoted + st1.promoted, 20);
	int st;
	/* The in-flight call either reached the old home (its effect was on
	 * the backup before the home answered... but the answer was lost:
	 * the retry applies it again) or not; callers that need exactly once
	 * carry their own token (docs/kddm.md). Here: 1 or 2 more. */
	int64_t v0 = fetch_value(f, 0, "test.strict", ids[0], &st);
	assert_int_equal(st, 0);
	assert_true(v0 == 2001 + 1 || v0 == 2001 + 2 || v0 == 1 + 1 || v0 == 1 + 2);
	for (int i = 1; i < 20; i++) {
		int64_t v = fetch_value(f, 0, "test.strict", ids[i], &st);
		assert_int_equal(st, 0);
		/* created by node 0 (0*1000) or 1 (1000) on the first call */
		assert_int_equal(v % 1000, i + 1);
	}
	kfake_free(f);
}

static void test_leave_hands_over(void **state)
{
	struct kfake *f = cluster(3, false);
	int st;
	for (uint64_t id = 1; id <= 300; id++)
		call_add(f, id % 3, "test.strict", id, (int64_t)id, &st);
	size_t on2 = kddm_count(S(f, 2, "test.strict"));
	assert_true(on2 > 50);
	kfake_leave(f, 2);
	for (uint64_t id = 1; id <= 300; id++) {
		int64_t v = fetch_value(f, id % 2, "test.strict", id, &st);
		assert_int_equal(st, 0);
		assert_int_equal(v % 1000, (int64_t)id % 1000);
	}
	assert_int_equal(kddm_count(S(f, 0, "test.strict")) + kddm_count(S(f, 1, "test.strict")), 300);
	kfake_free(f);
}

/* nodes del, then nodes add of the same running node: it is a home again
 * and serves what it homes (it used to stay out of its own live set and
 * answer -EAGAIN until the requesters gave up, ~40 s). */
static void test_leave_then_back(void **state)
{
	struct kfake *f = cluster(3, false);
	int st;
	for (unsigned i = 0; i < 3; i++)
		kddm_node_leaving(kfake_kddm(f, i), 2);
	kfake_run(f, 0);
	for (unsigned i = 0; i < 3; i++)
		kddm_node_up(kfake_kddm(f, i), 2);
	kfake_run(f, 0);
	uint64_t id = id_homed_at(kfake_kddm(f, 0), 2, 1);
	for (unsigned n = 0; n < 3; n++) {
		call_add(f, n, "test.auto", id, 1, &st);
		assert_int_equal(st, 0);
	}
	unsigned where = 99;
	assert_int_equal(masters(f, 3, "test.auto", id, &where), 1);
	assert_int_equal(where, 2);
	kfake_free(f);
}

/* A restarted krgd replays old membership: node 0 sees node 2 leave and
 * come back after node 2 had said READY to it. Node 2 has nothing new to
 * say; node 0 asks it again (READY_ASK) instead of serving nothing. */
static void test_ready_asked_again(void **state)
{
	struct kfake *f = cluster(3, false);
	int st;
	kddm_node_down(kfake_kddm(f, 0), 2);
	kddm_node_up(kfake_kddm(f, 0), 2);
	kfake_run(f, 0);
	uint64_t id = id_homed_at(kfake_kddm(f, 0), 0, 1);
	call_add(f, 1, "test.auto", id, 1, &st);
	assert_int_equal(st, 0);
	kfake_free(f);
}

/* Membership changes are applied on each node at its own moment. Node 2
 * applies its own leaving first, hands over and says READY (epoch 6),
 * which reaches nodes 0 and 1 before they apply the same change: that
 * READY must still end their wait (it used to be forgotten, and node 0
 * answered -EAGAIN to everything until node 2 was gone). A READY sent
 * before the change (epoch 5) must not. */
static void test_ready_before_change(void **state)
{
	struct kfake *f = cluster(3, false);
	int st;
	for (unsigned i = 0; i < 3; i++)
		kddm_set_epoch(kfake_kddm(f, i), 5);
	/* Node 0 first: node 2 still answers READY_ASK at epoch 5. */
	kddm_set_epoch(kfake_kddm(f, 0), 6);
	kddm_node_leaving(kfake_kddm(f, 0), 2);
	kfake_run(f, 2000);
	assert_false(kddm_ready(kfake_kddm(f, 0)));
	/* Node 2 applies it, then node 1 (after node 2's READY came). */
	kddm_set_epoch(kfake_kddm(f, 2), 6);
	kddm_node_leaving(kfake_kddm(f, 2), 2);
	kfake_run(f, 2000);
	assert_true(kddm_ready(kfake_kddm(f, 0)));
	/* Node 2's READY at epoch 6 is here already: no wait at all. */
	kddm_set_epoch(kfake_kddm(f, 1), 6);
	kddm_node_leaving(kfake_kddm(f, 1), 2);
	assert_true(kddm_ready(kfake_kddm(f, 1)));
	kfake_run(f, 2000);
	uint64_t id = id_homed_at(kfake_kddm(f, 0), 1, 1);
	call_add(f, 2, "test.auto", id, 1, &st);
	assert_int_equal(st, 0);
	kfake_free(f);
}

/* A partition (docs/kddm.md "Partitions"): node 2 homes an object that
 * has a backup; node 2 is cut off; the majority declares it down,
 * promotes the backup and changes the object, while node 2, unaware,
 * changes its own master copy. Healed: node 2 applies the log (it was
 * declared down at epoch 6, up again at 8), and the majority hands the
 * object back to it. The majority's value is what every node reads, held
 * by one master, whether the HANDOVER reaches node 2 before its log
 * catches up or after. Node 2's stale copy used to win (the HANDOVER was
 * refused as -EEXIST and the majority dropped its own). */
static void partition_heal(bool handover_first)
{
	struct kfake *f = cluster(3, true);
	for (unsigned i = 0; i < 3; i++)
		kddm_set_epoch(kfake_kddm(f, i), 5);
	uint64_t id = id_homed_at(kfake_kddm(f, 0), 2, 1);
	int st;
	assert_int_equal(call_add(f, 0, "test.strict", id, 5, &st), 5);
	assert_int_equal(st, 0);
	kfake_cut(f, 2, true);
	for (unsigned i = 0; i < 2; i++) {
		kddm_set_epoch(kfake_kddm(f, i), 6);
		kddm_node_down(kfake_kddm(f, i), 2);
	}
	kfake_run(f, 0);
	assert_int_equal(call_add(f, 1, "test.strict", id, 100, &st), 105);
	assert_int_equal(st, 0);
	/* The minority's change (its backup cannot be reached: whatever it
	 * answers, its master copy has it). */
	struct res r = { 0 };
	int64_t add = 1000;
	assert_int_equal(kddm_call(S(f, 2, "test.strict"), id, &add, 8, call_cb, &r), 0);
	kfake_run(f, 0);
	assert_int_equal(((struct counter *)kddm_peek(S(f, 2, "test.strict"), id))->v, 1005);

	kfake_cut(f, 2, false);
	for (unsigned i = 0; i < 2; i++) {
		kddm_set_epoch(kfake_kddm(f, i), 8);
		kddm_node_up(kfake_kddm(f, i), 2);
	}
	if (handover_first)
		kfake_run(f, 2000);
	struct kddm *k2 = kfake_kddm(f, 2);
	kddm_set_epoch(k2, 6);
	kddm_node_down(k2, 2);
	kddm_set_epoch(k2, 8);
	kddm_node_up(k2, 2);
	kfake_run(f, 0);
	for (unsigned n = 0; n < 3; n++) {
		int64_t got = fetch_value(f, n, "test.strict", id, &st);
		if (got != 105) /* 1005: the minority's stale copy won */
			fprintf(stderr, "node %u reads %lld (status %d)\n", n, (long long)got, st);
		assert_int_equal(got, 105);
		assert_int_equal(st, 0);
	}
	unsigned where = 99;
	assert_int_equal(masters(f, 3, "test.strict", id, &where), 1);
	assert_int_equal(where, 2);
	struct kddm_stats kst;
	kddm_stats(k2, &kst);
	assert_int_equal(kst.fenced, 1);
	/* And it serves again as a home. */
	assert_int_equal(call_add(f, 0, "test.strict", id, 1, &st), 106);
	assert_int_equal(st, 0);
	kfake_free(f);
}

static void test_partition_log_first(void **state)
{
	partition_heal(false);
}

static void test_partition_handover_first(void **state)
{
	partition_heal(true);
}

static void test_join_takes_over(void **state)
{
	struct kfake *f = kfake_new(3);
	make_sets(kfake_kddm(f, 0), NULL);
	make_sets(kfake_kddm(f, 1), NULL);
	kfake_kill(f, 2);
	kfake_run(f, 0);
	int st;
	for (uint64_t id = 1; id <= 600; id++)
		call_add(f, id % 2, "test.strict", id, 1, &st);
	kfake_start(f, 2, make_sets, NULL);
	/* Requests issued while the handover runs wait for it (READY). */
	struct res r[10];
	memset(r, 0, sizeof(r));
	int64_t one = 1;
	for (int i = 0; i < 10; i++)
		assert_int_equal(kddm_call(S(f, 2, "test.strict"), (uint64_t)i + 1, &one, 8, call_cb, &r[i]), 0);
	kfake_run(f, 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(r[i].status, 0);
	size_t on2 = kddm_count(S(f, 2, "test.strict"));
	assert_true(on2 > 100 && on2 < 400);
	for (uint64_t id = 1; id <= 600; id++) {
		int64_t v = fetch_value(f, 2, "test.strict", id, &st);
		assert_int_equal(st, 0);
		assert_int_equal(v % 1000, id <= 10 ? 2 : 1);
		assert_int_equal(masters(f, 3, "test.strict", id, NULL), 1);
	}
	kfake_free(f);
}

static void test_scale(void **state)
{
	struct kfake *f = cluster(3, false);
	enum { N = 30000 };
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	static struct res r[N];
	memset(r, 0, sizeof(r));
	for (uint64_t id = 0; id < N; id++) {
		int64_t one = 1;
		assert_int_equal(kddm_call(S(f, id % 3, "test.strict"), id, &one, 8, call_cb, &r[id]), 0);
	}
	kfake_run(f, 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	size_t total = 0;
	for (unsigned n = 0; n < 3; n++)
		total += kddm_count(S(f, n, "test.strict"));
	assert_int_equal(total, N);
	for (uint64_t id = 0; id < N; id++)
		assert_int_equal(r[id].status, 0);
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	print_message("kddm: %d objects created by calls from 3 nodes in %.1f ms (%.2f us each, fake transport)\n",
		      N, ms, ms * 1000 / N);
	kfake_free(f);
}

/* A set's wire id as kddm.c computes it (FNV-1a of the name). */
static uint32_t set_wire_id(const char *name)
{
	uint32_t h = 2166136261u;
	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 16777619u;
	return h;
}

static void test_malformed(void **state)
{
	struct kfake *f = cluster(2, false);
	uint8_t junk[] = { 0xff, 0xff, 0xff, 0x01, 0x02 };
	kfake_inject(f, 1, 0, junk, sizeof(junk), true);
	kfake_run(f, 0);
	assert_int_equal(kfake_injected_status(f), -EBADMSG);
	/* A well-formed message for a set nobody has: "not here (yet)". */
	Krg__Kddm__Msg m = KRG__KDDM__MSG__INIT;
	m.op = KRG__KDDM__OP__FETCH;
	m.set = 12345;
	m.id = 1;
	uint8_t buf[64];
	size_t n = krg__kddm__msg__pack(&m, buf);
	kfake_inject(f, 1, 0, buf, n, true);
	kfake_run(f, 0);
	assert_int_equal(kfake_injected_status(f), -ENOPROTOOPT);
	/* A handover naming a node id beyond the cluster's range. */
	uint32_t bad[] = { 100000 };
	int64_t v = 3;
	m.op = KRG__KDDM__OP__HANDOVER;
	m.set = set_wire_id("test.strict");
	m.n_copyset = 1;
	m.copyset = bad;
	m.has_data = true;
	m.data.data = (uint8_t *)&v;
	m.data.len = 8;
	n = krg__kddm__msg__pack(&m, buf);
	kfake_inject(f, 1, 0, buf, n, true);
	kfake_run(f, 0);
	assert_int_equal(kfake_injected_status(f), -EBADMSG);
	/* A create whose bytes the set refuses. */
	m.op = KRG__KDDM__OP__CREATE;
	m.n_copyset = 0;
	m.data.len = 3;
	m.id = id_homed_at(kfake_kddm(f, 0), 0, 1);
	n = krg__kddm__msg__pack(&m, buf);
	kfake_inject(f, 1, 0, buf, n, true);
	kfake_run(f, 0);
	assert_int_equal(kfake_injected_status(f), -EBADMSG);
	/* A request claiming to come from this very node. */
	kfake_inject(f, 0, 0, buf, n, true);
	kfake_run(f, 0);
	assert_int_equal(kfake_injected_status(f), -EBADMSG);
	struct kddm_stats st;
	kddm_stats(kfake_kddm(f, 0), &st);
	assert_true(st.rejected >= 4);
	/* Still serving. */
	int s2;
	call_add(f, 1, "test.strict", 77, 1, &s2);
	assert_int_equal(s2, 0);
	kfake_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fetch_grab_put),
		cmocka_unit_test(test_grab_write_back),
		cmocka_unit_test(test_call_shipping),
		cmocka_unit_test(test_create_race),
		cmocka_unit_test(test_home_down_no_backup),
		cmocka_unit_test(test_home_down_backup),
		cmocka_unit_test(test_leave_hands_over),
		cmocka_unit_test(test_leave_then_back),
		cmocka_unit_test(test_ready_asked_again),
		cmocka_unit_test(test_ready_before_change),
		cmocka_unit_test(test_partition_log_first),
		cmocka_unit_test(test_partition_handover_first),
		cmocka_unit_test(test_join_takes_over),
		cmocka_unit_test(test_scale),
		cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
