/* procid.h — cluster-wide process ids. As in Kerrighed, the id encodes the
 * process's home node (where it was created) in its high bits:
 *     id = home << 22 | pid        (pid as seen in the home node's pid namespace)
 * Linux pids are below 2^22 (pid_max limit), node ids below 256, so an id
 * is a positive 30-bit number that fits a pid_t and prints like one. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#define KRG_PID_BITS 22
#define KRG_PID_MASK ((1u << KRG_PID_BITS) - 1)

static inline uint32_t krg_procid_make(uint32_t home, uint32_t pid) { return home << KRG_PID_BITS | (pid & KRG_PID_MASK); }
static inline uint32_t krg_procid_home(uint32_t id) { return id >> KRG_PID_BITS; }
static inline uint32_t krg_procid_pid(uint32_t id) { return id & KRG_PID_MASK; }
/* Parse a decimal id; 0 or -EINVAL. */
int krg_procid_parse(const char *s, uint32_t *out);
