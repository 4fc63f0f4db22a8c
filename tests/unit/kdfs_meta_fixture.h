/* kdfs_meta_fixture.h — one metadata store in a temporary directory for
 * the kdfs unit tests (test_kdfs_meta, test_kdfs_layout): ops applied as
 * the cluster log would apply them, the way each test used to write out
 * for itself. */
#pragma once
#include <stdint.h>
#include "kdfs/meta.h"

/* The store kmf_setup opened. */
extern struct kdfs_meta *kmf_meta;

/* cmocka group setup / teardown: a new store under /tmp, then removed. */
int kmf_setup(void **state);
int kmf_teardown(void **state);

/* Apply op (now_ns set to 1000); the result, never NULL (free with
 * krg__kdfs__op_result__free_unpacked). */
Krg__Kdfs__OpResult *kmf_apply(Krg__Kdfs__Op *op);
/* Apply op and give its status alone. */
int kmf_status(Krg__Kdfs__Op *op);
/* Create name under parent, which must succeed; its inode number.
 * stripe_count 0: a Create with no default layout (as before striping). */
uint64_t kmf_create(uint64_t parent, const char *name, uint32_t mode, uint32_t stripe_count,
		    uint32_t stripe_size);
