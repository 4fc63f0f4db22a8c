/* Unit tests for lib/callwait.c, the pending-call table of the FUSE
 * programs (krg-kdfs, krg-fsview): real threads wait on calls while a
 * reader thread hands out replies by id, in any order; when krgd goes away
 * every waiting call and every later one fails instead of hanging. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>
#include "lib/callwait.h"

#define N 8

struct caller {
	struct krg_callwait *w;
	pthread_t th;
	uint64_t id;          /* set once registered */
	int registered;       /* 1 once id is set */
	void *reply;          /* what krg_callwait_end gave */
	pthread_mutex_t *m;
	pthread_cond_t *cv;
};

static void *caller_main(void *arg)
{
	struct caller *c = arg;
	struct krg_callwait_call call;
	if (krg_callwait_add(c->w, &call) < 0) {
		pthread_mutex_lock(c->m);
		c->registered = -1;
		pthread_cond_broadcast(c->cv);
		pthread_mutex_unlock(c->m);
		return NULL;
	}
	pthread_mutex_lock(c->m);
	c->id = call.id;
	c->registered = 1;
	pthread_cond_broadcast(c->cv);
	pthread_mutex_unlock(c->m);
	c->reply = krg_callwait_end(c->w, &call, 0);
	return NULL;
}

static void start_callers(struct krg_callwait *w, struct caller *cs, int n, pthread_mutex_t *m, pthread_cond_t *cv)
{
	for (int i = 0; i < n; i++) {
		cs[i] = (struct caller){ .w = w, .m = m, .cv = cv };
		assert_int_equal(pthread_create(&cs[i].th, NULL, caller_main, &cs[i]), 0);
	}
	/* Wait until every caller is registered (a condition, not a sleep). */
	pthread_mutex_lock(m);
	for (int i = 0; i < n; i++)
		while (!cs[i].registered)
			pthread_cond_wait(cv, m);
	pthread_mutex_unlock(m);
}

/* Replies handed out in reverse order reach their own callers; ids are
 * distinct; a reply for an id nobody waits for is refused. */
static void deliver_by_id(void **state)
{
	struct krg_callwait w = KRG_CALLWAIT_INIT;
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	struct caller cs[N];
	int tags[N];
	start_callers(&w, cs, N, &m, &cv);
	for (int i = 0; i < N; i++)
		for (int j = 0; j < i; j++)
			assert_true(cs[i].id != cs[j].id);
	assert_false(krg_callwait_deliver(&w, 0, &tags[0]));       /* ids start at 1 */
	for (int i = N - 1; i >= 0; i--) {
		tags[i] = i;
		assert_true(krg_callwait_deliver(&w, cs[i].id, &tags[i]));
	}
	for (int i = 0; i < N; i++) {
		pthread_join(cs[i].th, NULL);
		assert_ptr_equal(cs[i].reply, &tags[i]);
	}
	/* Every call is out of the table: a late reply finds nobody. */
	assert_null(w.calls);
	assert_false(krg_callwait_deliver(&w, cs[0].id, &tags[0]));
}

/* krgd gone: waiting calls end with no reply, later ones fail at once. */
static void dead_fails_all(void **state)
{
	struct krg_callwait w = KRG_CALLWAIT_INIT;
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	struct caller cs[4];
	start_callers(&w, cs, 4, &m, &cv);
	int one = 1;
	assert_true(krg_callwait_deliver(&w, cs[2].id, &one));
	krg_callwait_dead(&w);
	for (int i = 0; i < 4; i++) {
		pthread_join(cs[i].th, NULL);
		if (i == 2)
			assert_ptr_equal(cs[i].reply, &one);  /* came before the end */
		else
			assert_null(cs[i].reply);
	}
	struct krg_callwait_call late;
	assert_int_equal(krg_callwait_add(&w, &late), -EIO);
}

/* A request that could not be sent does not wait (its reply never comes). */
static void unsent_does_not_wait(void **state)
{
	struct krg_callwait w = KRG_CALLWAIT_INIT;
	struct krg_callwait_call c;
	assert_int_equal(krg_callwait_add(&w, &c), 0);
	assert_null(krg_callwait_end(&w, &c, -EIO));
	assert_null(w.calls);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(deliver_by_id),
		cmocka_unit_test(dead_fails_all),
		cmocka_unit_test(unsent_does_not_wait),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
