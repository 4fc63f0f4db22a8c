#!/usr/bin/env bash
# Build and run the frame/envelope fuzzer (tests/net/fuzz_frame.c) with
# libFuzzer + ASan + UBSan. Usage: scripts/fuzz.sh [SECONDS] (default 30).
# Exits non-zero when the fuzzer finds a crash, leak or UB, or fails to build.
# Corpus persists in fuzz-corpus/frame (git-ignored); crashes in fuzz-corpus/.
set -euo pipefail
secs=${1:-30}
src=$(cd "$(dirname "$0")/.." && pwd)
out=${FUZZ_OUT:-$(mktemp -d /tmp/krg-fuzz.XXXXXX)}
corpus=$src/fuzz-corpus/frame
mkdir -p "$out/proto" "$corpus"
protoc-c --proto_path="$src/src/proto" --c_out="$out/proto" "$src/src/proto/net.proto" "$src/src/proto/migrate.proto"
# Seeds: a valid frame holding an envelope, a zero length, an absurd length,
# a mig.file message.
printf '\x00\x00\x00\x00\x0c\x08\x01\x12\x04t.hi\x32\x02ok' >"$corpus/seed-ok"
printf '\x00\x00\x00\x00\x00' >"$corpus/seed-zero"
printf '\x03\xff\xff\xff\xff' >"$corpus/seed-huge"
printf '\x00\x08\x05\x12\x0bpages-1.img\x18\x40\x28\x01\x22\x03abc' >"$corpus/seed-migfile"
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE \
	-I"$src/src" -I"$out" \
	"$src/tests/net/fuzz_frame.c" "$src/src/net/frame.c" "$out/proto/net.pb-c.c" \
	"$src/src/proc/migrate/filemsg.c" "$out/proto/migrate.pb-c.c" \
	$(pkg-config --cflags --libs libprotobuf-c) -o "$out/fuzz_frame"
cd "$src/fuzz-corpus"
"$out/fuzz_frame" -max_total_time="$secs" -max_len=70000 -print_final_stats=1 "$corpus"
