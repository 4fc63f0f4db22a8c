/* proclist.h — shared by krg ps and krg top: fetching the cluster's
 * process list and node loads from the local krgd, and formatting. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "proto/node.pb-c.h"

/* proc.list through krgd; prints "krg CMD: reason" and returns an exit
 * status (non-zero) on failure. */
int krg_fetch_procs(const char *cmd, const char *sock, bool all, Krg__Node__ProcList **out);
/* node.stats; same conventions. */
int krg_fetch_stats(const char *cmd, const char *sock, Krg__Node__NodeStats **out);
/* Start time as ps does: HH:MM today, else Mon DD. */
void krg_fmt_start(uint64_t unix_ms, char *buf, size_t len);
/* Print s replacing control characters (a command line is the user's
 * text; it must not drive our terminal). At most width columns if > 0. */
void krg_put_safe(FILE *f, const char *s, int width);
