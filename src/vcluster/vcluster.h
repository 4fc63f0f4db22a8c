/* vcluster.h — `krgadm vcluster`: a virtual cluster of N nodes on one
 * machine, each node in its own net/mount/pid/ipc/uts namespaces and cgroup
 * (DESIGN.md, "Test platform: the virtual cluster"). */
#pragma once

/* Entry point called by krgadm's main. argv[0] is "vcluster", argv[1] the
 * subcommand (up, exec, down, status, krgd, link). Returns the process exit
 * status; errors are printed to stderr as one line. */
int krg_vcluster_main(int argc, char **argv);
