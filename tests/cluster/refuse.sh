#!/usr/bin/env bash
# krgd refuses to start, with one clear line and status 1, on: a missing or
# group/world-readable key, a bad config line (file:line), a port in use, a
# duplicate node id. SIGTERM stops it cleanly.
PREFIX=refuse
. "$(dirname "$0")/common.sh"
start_cluster 3
addr() { json_get 1 "[n['address'] for n in s['nodes'] if n['id']==$1][0].split(':')[0]"; }
A1=$(addr 1) A2=$(addr 2) A3=$(addr 3)

# refuse NODE PATTERN SCRIPT: run SCRIPT (bash) in NODE, expect krgd's refusal
refuse() {
	local node=$1 pat=$2 script=$3 out rc=0
	out=$(on "$node" bash -c "$script" 2>&1) || rc=$?
	[ $rc -eq 1 ] || fail "krgd exit status $rc (want 1) for /$pat/: $out"
	echo "$out" | grep -q "$pat" || fail "krgd said: $out (want /$pat/)"
	[ "$(echo "$out" | wc -l)" -eq 1 ] || fail "krgd said more than one line: $out"
}
# A config for a second krgd inside node 3, on its own port, socket and state.
conf() { # conf NODE_ID SELF_PORT KEYFILE [extra line]
	cat <<EOC
node_id = $1
cluster_name = $PREFIX
node = 1 $A1:7480
node = 2 $A2:7480
node = 3 $A3:${2}
state_dir = /tmp/k2/state
key_file = $3
api_socket = /tmp/k2/krgd.sock
${4:-}
EOC
}
setup="mkdir -p /tmp/k2 && cp /run/krg/cluster.key /tmp/k2/key && chmod 600 /tmp/k2/key"

refuse 3 "cannot open cluster key /tmp/k2/missing" "$setup; cat > /tmp/k2/c <<'X'
$(conf 3 7490 /tmp/k2/missing)
X
krgd --config /tmp/k2/c"
refuse 3 "accessible by group or others (mode 0640)" "$setup; chmod 640 /tmp/k2/key; cat > /tmp/k2/c <<'X'
$(conf 3 7490 /tmp/k2/key)
X
krgd --config /tmp/k2/c"
refuse 3 "accessible by group or others (mode 0604)" "$setup; chmod 604 /tmp/k2/key; cat > /tmp/k2/c <<'X'
$(conf 3 7490 /tmp/k2/key)
X
krgd --config /tmp/k2/c"
refuse 3 "/tmp/k2/c:9: unknown key 'heartbeat'" "$setup; cat > /tmp/k2/c <<'X'
$(conf 3 7490 /tmp/k2/key "heartbeat = 5")
X
krgd --config /tmp/k2/c"
refuse 3 "/tmp/k2/c:4: node: duplicate node id 1" "$setup; printf 'node_id = 1\nnode = 1 $A1\n\nnode = 1 $A2\n' > /tmp/k2/c; krgd --config /tmp/k2/c"
# port 7480 on node 3 is the running krgd's
refuse 3 "address already in use" "$setup; cat > /tmp/k2/c <<'X'
$(conf 3 7480 /tmp/k2/key)
X
krgd --config /tmp/k2/c"
# the node's own socket is live
refuse 3 "another krgd is already running" "krgd --config /run/krg/krgd.conf"
# a krgd claiming node 1's id while node 1 is alive
refuse 3 "another krgd with node id 1 is already running" "$setup; cat > /tmp/k2/c <<'X'
$(conf 1 7491 /tmp/k2/key | sed "s/^node = 1 .*/node = 1 $A3:7491/; s/^node = 3 .*/node = 3 $A3:7480/")
X
timeout 20 krgd --config /tmp/k2/c --log-level warn"
# the cluster is unharmed
on 1 krgadm cluster wait --timeout 10

# SIGTERM: clean stop, status 0, says so in the log
on 2 bash -c 'kill -TERM $(pgrep -x krgd)'
wait_for 10 "krgd on node 2 to stop" bash -c "! '$ADM' vcluster exec 2 --prefix $PREFIX -- pgrep -x krgd"
tail -n 3 "$(log_of 2)" | grep -q "stopped" || fail "no 'stopped' line after SIGTERM"
grep -q "received Terminated" "$(log_of 2)" || fail "log does not say SIGTERM was received"
echo PASS
