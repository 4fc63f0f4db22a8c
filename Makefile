# Thin wrapper around Meson + Ninja. See README.md.
BUILD      ?= build
ASAN_BUILD ?= build-asan
PREFIX     ?= /usr/local

.PHONY: all deps run check check-unit check-asan check-pkg install clean bench deb

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized --prefix=$(PREFIX)

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

# Installs build and test dependencies from Debian's archive when missing.
deps:
	@bash scripts/install-deps.sh

# krg's main job on a local virtual cluster: start 3 nodes, show them working, tear down.
run: deps all
	bash scripts/demo.sh $(BUILD)

# Every test: unit + integration on the normal build; unit, transport, cluster smoke and migration on ASan+UBSan.
check: deps all
	meson test -C $(BUILD) --print-errorlogs --num-processes 2 --no-suite fuzz
	bash scripts/fuzz.sh 10
	$(MAKE) check-asan

check-asan: $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)
	meson test -C $(ASAN_BUILD) --print-errorlogs --suite unit --suite net --suite smoke --suite migrate

check-unit: all
	meson test -C $(BUILD) --print-errorlogs --suite unit

bench: all
	bash bench/rpc $(BUILD)
	bash bench/run $(BUILD)
	bash bench/drmaa $(BUILD)
	bash bench/migrate $(BUILD)
	bash bench/migrate-fd $(BUILD)
	bash bench/sched $(BUILD)
	bash bench/load $(BUILD)
	bash bench/ipc $(BUILD)
	bash bench/ipc-intercept $(BUILD)
	bash bench/dsm $(BUILD)
	bash bench/scale $(BUILD)
	bash bench/recover $(BUILD)

# Debian packages (docs/packaging.md): krg, libdrmaa-krg1, libkrg0, libkrg-dev
# in $(BUILD)/deb, checked by lintian.
deb: deps
	bash scripts/build-deb.sh $(BUILD)/deb

# The packages installed into a private root, a 3-node vcluster run from
# the installed binaries (tests/pkg/install.sh). A few minutes: not in check.
check-pkg: deb
	flock /tmp/krg-vcluster.lock bash tests/pkg/install.sh $(BUILD)/deb

install: all
	meson install -C $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
