#!/usr/bin/env bash
# Build and run krg's libFuzzer targets (tests/fuzz/fuzz_*.c, one per kind
# of input that comes from outside) with ASan + UBSan.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   SECONDS: run time of each target (default 30); `make check` gives 20:
#   the six targets take 2 minutes, plus ~30 s of build.
#   TARGET: frame, config, nodelist, image, api, peer, kddm (default: all).
# Exits non-zero when a target finds a crash, leak or UB, or fails to build.
# Seeds: tests/fuzz/corpus/<target>/ (committed, read only); what a run
# finds goes to fuzz-corpus/<target>/ (git-ignored), crashes to
# fuzz-corpus/<target>-crash-*. FUZZ_OUT=DIR keeps the build between runs.
set -euo pipefail
secs=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frame config nodelist image api peer kddm)
src=$(cd "$(dirname "$0")/.." && pwd)
out=${FUZZ_OUT:-$(mktemp -d /tmp/krg-fuzz.XXXXXX)}
mkdir -p "$out/proto" "$out/obj"

cflags=(-g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
	-D_GNU_SOURCE -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -std=gnu11 -w
	-I"$src/src" -I"$out" -I"$out/proto" $(pkg-config --cflags libprotobuf-c libuv libsodium libxxhash))
libs=($(pkg-config --libs libprotobuf-c libuv libsodium libxxhash))

# Production code the targets link: every schema, the layers that decode
# outside bytes (lib, net framing, api server, ckpt images) and the pure
# decoders of the services. Built once into one archive; each target takes
# what it needs from it.
for p in "$src"/src/proto/*.proto; do
	n=$(basename "$p" .proto)
	[ "$out/proto/$n.pb-c.c" -nt "$p" ] ||
		protoc-c --proto_path="$src/src/proto" --c_out="$out/proto" "$p"
done
srcs=("$out"/proto/*.pb-c.c "$src"/src/lib/{log,config,nodelist,key,json,fileio,fault,metrics}.c
      "$src"/src/net/frame.c "$src"/src/api/server.c "$src"/src/ckpt/*.c
      "$src"/src/proc/procid.c "$src"/src/proc/migrate/filemsg.c "$src"/src/proc/exec/exec_msg.c
      "$src"/src/proc/migrate/mig_msg.c "$src"/src/proc/ckpt/ckpt_msg.c "$src"/src/proc/table/table_msg.c
      "$src"/src/proc/sched/capset_msg.c "$src"/src/fsview/fsview_msg.c "$src"/src/fsview/wire.c "$src"/src/kddm/kddm{,_home,_member,_req}.c
      "$src"/src/ipc/engine_*.c
      "$src"/src/ipc/{intercept_filter,ipc_abi,ipc_service,ipc_service_ckpt,ipc_service_home,ipc_service_owner,ipc_service_usage,ipc_service_wire}.c "$src"/tests/unit/kddm_fake.c)
objs=()
for s in "${srcs[@]}"; do
	o=$out/obj/$(echo "${s#"$src"/}" | tr / _).o
	objs+=("$o")
	[ "$o" -nt "$s" ] && continue
	# Two compilers at a time (the machines that run this are small).
	[ "$(jobs -rp | wc -l)" -lt 2 ] || wait -n
	clang "${cflags[@]}" -c "$s" -o "$o" &
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n; done
rm -f "$out/libkrgfuzz.a"
ar rcs "$out/libkrgfuzz.a" "${objs[@]}"

status=0
for t in "${targets[@]}"; do
	clang "${cflags[@]}" -fsanitize=fuzzer "$src/tests/fuzz/fuzz_$t.c" "$out/libkrgfuzz.a" "${libs[@]}" \
		-o "$out/fuzz_$t"
	corpus=$src/fuzz-corpus/$t
	mkdir -p "$corpus"
	# An image seed holds a real process's pages (~120 KB).
	maxlen=70000
	[ "$t" != image ] || maxlen=131072
	echo "== fuzz_$t: $secs s"
	# New inputs go to the first directory (git-ignored); the seeds stay.
	if ! "$out/fuzz_$t" -max_total_time="$secs" -max_len=$maxlen -timeout=10 -rss_limit_mb=1536 \
		-print_final_stats=1 -artifact_prefix="$src/fuzz-corpus/$t-" \
		"$corpus" "$src/tests/fuzz/corpus/$t" 2>"$out/fuzz_$t.log"; then
		status=1
		tail -60 "$out/fuzz_$t.log"
		echo "fuzz_$t: FAILED (log $out/fuzz_$t.log)"
	else
		grep -E 'DONE|^stat::number_of_executed_units' "$out/fuzz_$t.log" || true
	fi
done
exit $status
