/* duration.h — durations people type: "90s", "2m", "500ms", "1h30m",
 * "1.5s", a bare number being seconds (krg checkpoint --every, krg run
 * --checkpoint-every). Pure (tests/unit/test_duration.c). */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* *ms: the duration in milliseconds. -EINVAL (not a duration: empty, a
 * unit we do not know, a negative or fractional millisecond) or -ERANGE
 * (over 2^32-1 ms, about 49 days), with one line in err. */
int krg_duration_parse(const char *s, uint64_t *ms, char *err, size_t errlen);
/* "1.5 s", "2 min", "500 ms", "3 h": for messages. */
void krg_duration_format(uint64_t ms, char *buf, size_t len);
