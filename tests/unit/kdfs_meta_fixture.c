/* kdfs_meta_fixture.c — see kdfs_meta_fixture.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include "kdfs_meta_fixture.h"

struct kdfs_meta *kmf_meta;
static char dir[] = "/tmp/kdfs-meta-XXXXXX";

int kmf_setup(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(dir));
	return kdfs_meta_open(dir, NULL, NULL, &kmf_meta);
}

int kmf_teardown(void **state)
{
	(void)state;
	kdfs_meta_close(kmf_meta);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

Krg__Kdfs__OpResult *kmf_apply(Krg__Kdfs__Op *op)
{
	op->now_ns = 1000;
	size_t n = krg__kdfs__op__get_packed_size(op);
	uint8_t *buf = malloc(n + 1), *res = NULL;
	size_t rl = 0;
	assert_non_null(buf);
	krg__kdfs__op__pack(op, buf);
	kdfs_meta_apply(kmf_meta, buf, n, &res, &rl);
	free(buf);
	Krg__Kdfs__OpResult *r = krg__kdfs__op_result__unpack(NULL, rl, res);
	free(res);
	assert_non_null(r);
	return r;
}

int kmf_status(Krg__Kdfs__Op *op)
{
	Krg__Kdfs__OpResult *r = kmf_apply(op);
	int s = r->status;
	krg__kdfs__op_result__free_unpacked(r, NULL);
	return s;
}

uint64_t kmf_create(uint64_t parent, const char *name, uint32_t mode, uint32_t stripe_count,
		    uint32_t stripe_size)
{
	Krg__Kdfs__Op op = KRG__KDFS__OP__INIT;
	Krg__Kdfs__Create c = KRG__KDFS__CREATE__INIT;
	op.op_case = KRG__KDFS__OP__OP_CREATE;
	op.create = &c;
	c.parent = parent;
	c.name = (char *)name;
	c.mode = mode;
	c.has_stripe_count = c.has_stripe_size = stripe_count > 0;
	c.stripe_count = stripe_count;
	c.stripe_size = stripe_size;
	Krg__Kdfs__OpResult *r = kmf_apply(&op);
	assert_int_equal(r->status, 0);
	uint64_t ino = r->attr->ino;
	krg__kdfs__op_result__free_unpacked(r, NULL);
	return ino;
}
