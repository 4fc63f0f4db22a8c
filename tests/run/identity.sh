#!/usr/bin/env bash
# krg run runs as the caller: uid, gid, groups, umask, cwd, environment
# and limits equal the caller's, for unprivileged users and root.
PREFIX=rid
. "$(dirname "$0")/common.sh"
ensure_user krgrun1 krgrung1
ensure_user krgrun2 krgrung2
start_run_cluster 3

as() { # as USER CMD...: run CMD in node 1 as USER with its groups
	local u=$1
	shift
	on 1 setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups -- "$@"
}
for u in krgrun1 krgrun2 root; do
	for cmd in 'id' 'umask' 'pwd' 'env | grep -v "^_=" | sort' 'ulimit -n; ulimit -Hn; ulimit -s' 'ulimit -c'; do
		script="cd /usr/share; umask 027; ulimit -n 777; ulimit -c 0"
		local_out=$(as "$u" sh -c "$script; export KRGX=1; $cmd")
		remote_out=$(as "$u" sh -c "$script; export KRGX=1; krg run -n 3 -- sh -c '$cmd'")
		assert_eq "$remote_out" "$local_out" "$u: $cmd"
	done
done
# --env and --cwd
out=$(as krgrun1 krg run -n 2 --env FOO=bar --cwd /usr -- sh -c 'echo $FOO; pwd')
assert_eq "$out" "bar
/usr" "--env/--cwd"
# The user cannot do what it could not do locally.
set +e
as krgrun1 krg run -n 3 -- sh -c 'cat /etc/shadow' >/dev/null 2>&1
rc=$?
set -e
assert_ne "$rc" 0 "krgrun1 reading /etc/shadow remotely"
# The remote process belongs to the user.
as krgrun2 sh -c "krg run -n 3 -- sleep 3 >/dev/null 2>&1 &"
wait_for 5 "remote sleep" bash -c "$ADM vcluster exec 3 --prefix $PREFIX -- pgrep -u krgrun2 -x sleep"
echo PASS
