#!/usr/bin/env bash
# Debian's PostgreSQL 15 under `krg run` on one node of a 2-node vcluster:
# initdb and the server make their System V shm segments with shmget and
# attach them with shmat, served by krgd (docs/dsm.md, "Node-local
# segments"); with shared_memory_type = sysv its buffers are in the DSM's
# segment, and the server (not root) read(2)s files into them; it
# answers a query that writes and reads a table.
PREFIX=icpg
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
PGBIN=/usr/lib/postgresql/15/bin
[ "$(id -u)" = 0 ] || fail "cannot run: needs root"
[ -x "$PGBIN/postgres" ] || fail "cannot run: postgresql-15 missing (scripts/install-deps.sh)"
id postgres >/dev/null 2>&1 || fail "cannot run: no postgres user"
W=$(mktemp -d "$KRG_BUILD_DIR/pg.XXXXXX")
chmod 755 "$W"
chown postgres: "$W"
start_cluster 2
trap 'rc=$?; [ $rc -ne 0 ] && { dump_logs; cat "$W/pg.log" 2>/dev/null; }; on 1 pkill -INT -u postgres -x postgres >/dev/null 2>&1 || true; "$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1 || true; rm -rf "$W"; exit $rc' EXIT
PG=(setpriv --reuid=postgres --regid=postgres --init-groups)
on 1 krgadm sched disable mosix >/dev/null

echo "== initdb and the server under krg run"
on 1 "${PG[@]}" timeout 120 "$KRG" run -n 1 -- "$PGBIN/initdb" -D "$W/data" -A trust -U postgres >"$W/initdb.log" 2>&1 ||
	{ cat "$W/initdb.log"; fail "initdb under krg run"; }
on 1 sh -c "$(printf '%q ' "${PG[@]}") timeout 120 $KRG run -n 1 -- $PGBIN/postgres -D $W/data -k $W -c listen_addresses= -c shared_memory_type=sysv -c dynamic_shared_memory_type=sysv >$W/pg.log 2>&1 &"
wait_for 60 "the server accepts connections" on 1 "${PG[@]}" "$PGBIN/pg_isready" -q -h "$W"
out=$(on 1 "${PG[@]}" psql -h "$W" -U postgres -qAtc "create table t(x int); insert into t select generate_series(1,1000); select sum(x) from t;")
assert_eq "$out" "500500" "a query through the server"
grep -q "shmat of System V segment" "$W/pg.log" && fail "shmat refused"
pid=$(on 1 head -1 "$W/data/postmaster.pid")
on 1 grep -q "memfd:krg-dsm" "/proc/$pid/maps" || fail "the server's System V segment is not the DSM's mapping (krgd)"
on 1 "${PG[@]}" "$PGBIN/pg_ctl" -D "$W/data" stop -m fast >/dev/null
echo "postgres ok"
