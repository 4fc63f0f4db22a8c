/* fault.h — named fault points for tests, in the spirit of sqlite's test
 * hooks: each place where a test holds, slows, breaks or switches off a
 * step of krg is a point with a name, listed once in fault.c, and is
 * enabled only by the environment of the process that reaches it:
 *
 *     KRG_FAULT="mig-hold:/tmp/h,ckpt-restore-fail,lazy-slow:/tmp/s"
 *
 * A point is off unless named. Its value (after ':') is a path, a number
 * of milliseconds, ... as the point says. krgd and the CLIs refuse to
 * start when KRG_FAULT names a point that does not exist, so a typo in a
 * test cannot make it test nothing. Tests use nothing else. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

/* Is point `name` enabled? */
bool krg_fault_on(const char *name);
/* Its value, or NULL when it is off or has none. Valid until KRG_FAULT
 * changes (the environment is read on each call: tests change it). */
const char *krg_fault_value(const char *name, char *buf, size_t len);
/* Its value as a number, dflt when off, absent or not a number. */
long krg_fault_long(const char *name, long dflt);
/* 0 when every point KRG_FAULT names exists; -EINVAL and err saying
 * which one otherwise. */
int krg_fault_check(char *err, size_t errlen);
/* The registry, for --help texts and docs: name, what it does. */
struct krg_fault_point {
	const char *name;
	const char *what;
};
const struct krg_fault_point *krg_fault_points(size_t *n);
