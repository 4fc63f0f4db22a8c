/* service.c — the start order of krgd's service table (service.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "lib/service.h"

static int find(const struct krg_service *const *table, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(table[i]->name, name))
			return (int)i;
	return -1;
}

int krg_service_order(const struct krg_service *const *table, size_t n, size_t *order, char *err, size_t errlen)
{
	/* n is a handful: a quadratic pass per placed service is plenty.
	 * Each round places the first service in table order whose needs
	 * are all placed, so a table already in a good order keeps it. */
	bool placed[n ? n : 1];
	memset(placed, 0, sizeof(placed));
	for (size_t i = 0; i < n; i++) {
		if (find(table, i, table[i]->name) >= 0) {
			snprintf(err, errlen, "service '%s' is in the table twice", table[i]->name);
			return -EEXIST;
		}
		for (const char *const *need = table[i]->needs; need && *need; need++)
			if (find(table, n, *need) < 0) {
				snprintf(err, errlen, "service '%s' needs '%s', which is not in the table",
					 table[i]->name, *need);
				return -ENOENT;
			}
	}
	for (size_t k = 0; k < n; k++) {
		size_t pick = n;
		for (size_t i = 0; i < n && pick == n; i++) {
			if (placed[i])
				continue;
			bool ready = true;
			for (const char *const *need = table[i]->needs; need && *need && ready; need++)
				ready = placed[find(table, n, *need)];
			if (ready)
				pick = i;
		}
		if (pick == n) {
			for (size_t i = 0; i < n; i++)
				if (!placed[i]) {
					snprintf(err, errlen, "services needing each other in a cycle, '%s' among them",
						 table[i]->name);
					break;
				}
			return -ELOOP;
		}
		placed[pick] = true;
		order[k] = pick;
	}
	return 0;
}
