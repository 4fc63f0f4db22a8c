/* callwait.c — see callwait.h. */
#include <errno.h>
#include "lib/callwait.h"

int krg_callwait_add(struct krg_callwait *w, struct krg_callwait_call *c)
{
	*c = (struct krg_callwait_call){ 0 };
	pthread_mutex_lock(&w->lock);
	if (w->dead) {
		pthread_mutex_unlock(&w->lock);
		return -EIO;
	}
	pthread_cond_init(&c->cond, NULL);
	c->id = w->next_id++;
	c->next = w->calls;
	w->calls = c;
	pthread_mutex_unlock(&w->lock);
	return 0;
}

void *krg_callwait_end(struct krg_callwait *w, struct krg_callwait_call *c, int sent)
{
	pthread_mutex_lock(&w->lock);
	while (sent == 0 && !c->done && !w->dead)
		pthread_cond_wait(&c->cond, &w->lock);
	for (struct krg_callwait_call **p = &w->calls; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	pthread_mutex_unlock(&w->lock);
	pthread_cond_destroy(&c->cond);
	return c->reply;
}

bool krg_callwait_deliver(struct krg_callwait *w, uint64_t id, void *reply)
{
	pthread_mutex_lock(&w->lock);
	struct krg_callwait_call *c = w->calls;
	while (c && c->id != id)
		c = c->next;
	if (c) {
		c->reply = reply;
		c->done = true;
		pthread_cond_signal(&c->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return c != NULL;
}

void krg_callwait_dead(struct krg_callwait *w)
{
	pthread_mutex_lock(&w->lock);
	w->dead = true;
	for (struct krg_callwait_call *c = w->calls; c; c = c->next)
		pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&w->lock);
}
