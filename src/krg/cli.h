/* cli.h — shared by the krg subcommand files (one file per command, the
 * table in main.c). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit statuses of krg itself (docs/krg.md). A remote command's own status
 * is passed through unchanged; these are for krg's own failures. */
#define KRG_EXIT_USAGE 2        /* bad command line (ps, kill, top) */
#define KRG_EXIT_NOEXEC 126     /* run: command found but not executable */
#define KRG_EXIT_NOTFOUND 127   /* run: command not found */
#define KRG_EXIT_FAILURE 255    /* run: krg failed (unknown node, no krgd, node died) */

int cmd_run(int argc, char **argv);
int cmd_ps(int argc, char **argv);
int cmd_kill(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_checkpoint(int argc, char **argv);
int cmd_restart(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_jobs(int argc, char **argv);
int cmd_capset(int argc, char **argv);
int cmd_ipcs(int argc, char **argv);
int cmd_ipcmk(int argc, char **argv);
int cmd_ipcrm(int argc, char **argv);
int cmd_kdfs(int argc, char **argv);

/* Periodic checkpoints (ckpt_every.c): ask krgd to checkpoint app id
 * every every_ms (0: stop); 0 or -errno with one line in err. And `krg
 * checkpoint --list`: krg's exit status. */
int krg_ckpt_every_set(uint32_t id, uint64_t every_ms, char *err, size_t errlen);
int krg_ckpt_every_list(bool json);
/* What krgd lists (NULL and one line in err if it cannot), for krg ps;
 * and the note krg ps gives a process that is such an application. */
struct Krg__Ckptsvc__PeriodicList;
struct Krg__Ckptsvc__Periodic;
struct Krg__Ckptsvc__PeriodicList *krg_ckpt_every_fetch(const char *sock, char *err, size_t errlen);
void krg_ckpt_every_note(const struct Krg__Ckptsvc__Periodic *e, char *buf, size_t len);

/* Show checkpoint progress on stderr when it is a tty (cmd_checkpoint.c). */
void krg_ckpt_progress(const char *cmd);

/* Send a filled "proc.run" request to krgd and stream the remote process's
 * stdio on this terminal until it ends; krg's exit status (cmd_run.c).
 * env and envset are freed once the request is packed (may be NULL). */
struct Krg__Proc__RunRequest;
int krg_run_request(struct Krg__Proc__RunRequest *req, const char *sock_path, const char *who, char **env, char **envset);
