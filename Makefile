# ysync — see README.md. `make demo` and `make test` are all a newcomer needs.
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
MANDIR     ?= $(PREFIX)/share/man
DATADIR    ?= $(PREFIX)/share/ysync
DESTDIR    ?=
CARGO      ?= cargo
BIN        ?= target/release/ysync

X86   = x86_64-unknown-linux-musl
ARM   = aarch64-unknown-linux-musl
# 32-bit ARM: ARMv7 with hard float (Raspberry Pi 2/3/4 on a 32-bit OS, many
# ARM NAS boxes and routers) and ARMv6 with hard float (Pi Zero, Pi 1; also
# runs on every ARMv7). Both build their C (ring) with Debian's
# arm-linux-gnueabihf-gcc, told which CPU to write for.
ARMV7 = armv7-unknown-linux-musleabihf
ARMV6 = arm-unknown-linux-musleabihf
ARMV7_CFLAGS = -march=armv7-a -mfpu=vfpv3-d16 -mfloat-abi=hard
ARMV6_CFLAGS = -march=armv6 -mfpu=vfp -mfloat-abi=hard -marm
# No PIE for a static binary: smaller, nothing to relocate at start. The
# paths of this checkout, of cargo's registry and of the toolchain are
# remapped, so a clone anywhere builds the same bytes (make dist).
CARGO_HOME ?= $(HOME)/.cargo
STATIC_FLAGS = -C relocation-model=static --remap-path-prefix=$(CURDIR)=/ysync \
    --remap-path-prefix=$(CARGO_HOME)=/cargo --remap-path-prefix=$(shell rustc --print sysroot 2>/dev/null)=/rust
# panic = "abort" unwinds nothing, so the unwind tables' search index
# (.eh_frame_hdr, 31 KB) and ring's C unwind tables are dead weight; a panic
# still prints its message, only its backtrace stays empty.
# Both link with rust-lld (it ships with Rust), which folds identical
# functions (--icf=all): generics instantiated for types of one shape are
# kept once. Rust gives no function two distinct addresses to rely on.
LLD_FLAGS = -C link-arg=--no-eh-frame-hdr -C link-arg=--icf=all
# Without its search index nothing reads .eh_frame (std's unwind tables,
# which -C force-unwind-tables=no cannot remove: they come precompiled) or
# .gcc_except_table (landing pads nothing lands on), so objcopy drops them
# after the link: about 200 KB. A panic still prints its message and aborts.
DEAD_SECTIONS = -R .eh_frame -R .gcc_except_table
X86_FLAGS = $(STATIC_FLAGS) $(LLD_FLAGS)
ARM_FLAGS = $(STATIC_FLAGS) $(LLD_FLAGS)
NO_UNWIND_CFLAGS = -fno-asynchronous-unwind-tables -fno-unwind-tables

.PHONY: bench bench-scale soak mutants build test test-native test-release test-aarch64 test-armv7 test-armv6 demo emulator \
        static static-aarch64 static-armv7 static-armv6 static-deps size dist deb image test-image clients client-deps \
        install install-files uninstall clean

build:
	$(CARGO) build --release --locked

# Unit tests, integration tests against the bundled Yandex Disk emulator
# (no network), and, when the cross tools are installed, the aarch64 binary
# under qemu.
# Optional parts are skipped, and say so, when their tools are missing; on CI
# (YSYNC_CI=1, set by .ci/run, which installs them) a missing tool fails.
test: test-native test-release
	@if command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64-static >/dev/null \
	    && rustup target list --installed 2>/dev/null | grep -qx $(ARM); then \
	    $(MAKE) --no-print-directory test-aarch64; \
	elif [ -n "$$YSYNC_CI" ]; then echo "make test: the aarch64 tools are missing on CI" >&2; exit 1; \
	else echo "make test: aarch64 tests skipped (make static-deps installs what they need)"; fi
	@if command -v arm-linux-gnueabihf-gcc >/dev/null && command -v qemu-arm-static >/dev/null \
	    && rustup component list --installed 2>/dev/null | grep -q '^rust-src' && python3 -m ziglang version >/dev/null 2>&1; then \
	    $(MAKE) --no-print-directory test-armv7 test-armv6; \
	elif [ -n "$$YSYNC_CI" ]; then echo "make test: the 32-bit ARM tools are missing on CI" >&2; exit 1; \
	else echo "make test: 32-bit ARM tests skipped (make static-deps installs what they need)"; fi
	@if command -v podman >/dev/null && command -v runc >/dev/null && command -v musl-gcc >/dev/null; then \
	    $(MAKE) --no-print-directory test-image; \
	elif [ -n "$$YSYNC_CI" ]; then echo "make test: podman, runc or musl-gcc is missing on CI" >&2; exit 1; \
	else echo "make test: the container image test skipped (apt-get install podman runc musl-tools)"; fi
	@# After the steps above, all four static binaries are built: package them.
	@if [ -f target/$(X86)/release/ysync ] && [ -f target/$(ARM)/release/ysync ] && [ -f target/$(ARMV7)/release/ysync ] \
	    && [ -f target/$(ARMV6)/release/ysync ] && command -v dpkg-deb >/dev/null; then \
	    sh tests/dist.sh; \
	elif [ -n "$$YSYNC_CI" ]; then echo "make test: a static binary or dpkg-deb is missing on CI for the dist check" >&2; exit 1; \
	else echo "make test: the dist check skipped (it packages the four static binaries the steps above build)"; fi
	@if command -v rclone >/dev/null && command -v openssl >/dev/null && python3 -c "import yadisk" 2>/dev/null; then \
	    tests/clients/run.sh; \
	elif [ -n "$$YSYNC_CI" ]; then echo "make test: rclone, openssl or yadisk is missing on CI" >&2; exit 1; \
	else echo "make test: real clients against the emulator skipped (make client-deps installs rclone and yadisk)"; fi

# rclone and the Python yadisk library against a fresh fake-disk.
clients:
	tests/clients/run.sh

client-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -qq rclone openssl; \
	else echo "as root: apt-get install rclone openssl"; fi
	python3 -m pip install -q yadisk requests

test-native:
	$(CARGO) test --locked --all-targets -- --skip props:: --skip cycle::tests:: --skip cycle::swaps::
	@# The generated suites, with their one line each: property NAME: N cases, seed S.
	$(CARGO) test --locked --bin ysync -- --nocapture props:: cycle::tests:: cycle::swaps::

# The end-to-end tests again with the release binary, the one users run: it
# is faster, and timing-dependent paths (a restart right after a kill, the
# Disk's finalisation lag) must hold there too. (The crash-point hooks of
# tests/it/crash.rs exist in debug builds only.)
test-release: build
	YSYNC_TEST_BIN=$(CURDIR)/$(BIN) $(CARGO) test --locked --test it -- mirror:: smart:: promises:: stuck::

# Mirrors a sample folder into the bundled emulator and shows the fake Disk.
demo: build
	$(CARGO) run --release --locked --quiet --example demo -- $(BIN)

# The emulator on its own (http://127.0.0.1:8765/v1/disk, token demo-token).
emulator:
	$(CARGO) run --release --locked --example fake-disk

# ---- static binaries for routers, NAS boxes and the Raspberry Pi ----------

# Installs the Rust targets and Debian's cross tools (as root), or says what to run.
static-deps:
	rustup target add $(X86) $(ARM)
	rustup component add rust-src
	python3 -m ziglang version >/dev/null 2>&1 || python3 -m pip install -q ziglang
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -qq musl-tools gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf qemu-user-static; \
	else echo "as root: apt-get install musl-tools gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf qemu-user-static"; fi

static:
	@rustup target list --installed | grep -qx $(X86) || { echo "make static: the Rust target $(X86) is missing; run: rustup target add $(X86) (or make static-deps)" >&2; exit 1; }
	@command -v musl-gcc >/dev/null || { echo "make static: musl-gcc is missing (ring compiles C with it); run: apt-get install musl-tools (or make static-deps)" >&2; exit 1; }
	@rustup component list --installed 2>/dev/null | grep -q '^rust-src' || { echo "make static: rust-src is missing (std is built from it); run: rustup component add rust-src (or make static-deps)" >&2; exit 1; }
	@# std is built from rust-src with ysync's own profile (opt-level z, LTO
	@# with ysync), as for 32-bit ARM: 93 KB smaller than the prebuilt std,
	@# the room issue 26 needed (BENCHMARKS.md, "Binary size").
	RUSTC_BOOTSTRAP=1 CC_x86_64_unknown_linux_musl=musl-gcc CFLAGS_x86_64_unknown_linux_musl="$(NO_UNWIND_CFLAGS)" \
	    CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld RUSTFLAGS="$(X86_FLAGS)" \
	    $(CARGO) build --release --locked --target $(X86) -Zbuild-std=std,panic_abort
	objcopy $(DEAD_SECTIONS) target/$(X86)/release/ysync
	@target/$(X86)/release/ysync --version >/dev/null
	@ls -l target/$(X86)/release/ysync

# Raspberry Pi 3/4/5 (64-bit OS), most ARM NAS boxes and routers.
static-aarch64:
	@rustup target list --installed | grep -qx $(ARM) || { echo "make static-aarch64: the Rust target $(ARM) is missing; run: rustup target add $(ARM) (or make static-deps)" >&2; exit 1; }
	@command -v aarch64-linux-gnu-gcc >/dev/null || { echo "make static-aarch64: aarch64-linux-gnu-gcc is missing (ring compiles C with it); run: apt-get install gcc-aarch64-linux-gnu (or make static-deps)" >&2; exit 1; }
	CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld \
	    CFLAGS_aarch64_unknown_linux_musl="$(NO_UNWIND_CFLAGS)" RUSTFLAGS="$(ARM_FLAGS)" $(CARGO) build --release --locked --target $(ARM)
	aarch64-linux-gnu-objcopy $(DEAD_SECTIONS) target/$(ARM)/release/ysync
	@ls -l target/$(ARM)/release/ysync

# 32-bit ARM, ARMv7 (Pi 2/3/4 on a 32-bit OS) and ARMv6 (Pi Zero, Pi 1).
# std is built from rust-src for the exact CPU (-Zbuild-std; RUSTC_BOOTSTRAP
# lets the stable compiler take the flag), so these need no prebuilt Rust
# target, and zig cc links musl for that CPU (build/zig-cc). ring's C is
# compiled by Debian's arm-linux-gnueabihf-gcc.
static-armv7: ; @$(MAKE) --no-print-directory static-arm32 T=$(ARMV7) T_CFLAGS="$(ARMV7_CFLAGS)" ZIG_CPU=cortex_a7
static-armv6: ; @$(MAKE) --no-print-directory static-arm32 T=$(ARMV6) T_CFLAGS="$(ARMV6_CFLAGS)" ZIG_CPU=arm1176jzf_s
static-arm32:
	@rustup component list --installed 2>/dev/null | grep -q '^rust-src' || { echo "make static: rust-src is missing (std is built from it); run: rustup component add rust-src (or make static-deps)" >&2; exit 1; }
	@python3 -m ziglang version >/dev/null 2>&1 || { echo "make static: zig is missing (it links musl for 32-bit ARM); run: python3 -m pip install ziglang (or make static-deps)" >&2; exit 1; }
	@command -v arm-linux-gnueabihf-gcc >/dev/null || { echo "make static: arm-linux-gnueabihf-gcc is missing (ring compiles C with it); run: apt-get install gcc-arm-linux-gnueabihf (or make static-deps)" >&2; exit 1; }
	$(eval TV := $(subst -,_,$(T)))
	RUSTC_BOOTSTRAP=1 ZIG_TARGET=arm-linux-musleabihf ZIG_CPU=$(ZIG_CPU) \
	    CC_$(TV)=arm-linux-gnueabihf-gcc CFLAGS_$(TV)="$(T_CFLAGS) $(NO_UNWIND_CFLAGS)" \
	    CARGO_TARGET_$(shell echo $(TV) | tr a-z A-Z)_LINKER=$(CURDIR)/build/zig-cc \
	    RUSTFLAGS="$(STATIC_FLAGS) -C link-self-contained=no" \
	    $(CARGO) build --release --locked --target $(T) -Zbuild-std=std,panic_abort
	@ls -l target/$(T)/release/ysync

# The core integration tests with the aarch64 binary, run by qemu.
test-aarch64: static-aarch64
	@command -v qemu-aarch64-static >/dev/null || { echo "make test-aarch64: qemu-aarch64-static is missing; run: apt-get install qemu-user-static (or make static-deps)" >&2; exit 1; }
	YSYNC_TEST_BIN=$(CURDIR)/target/$(ARM)/release/ysync YSYNC_TEST_RUNNER=qemu-aarch64-static \
	    $(CARGO) test --locked --test it -- mirror:: smart::

# The end-to-end mirror tests with the 32-bit binaries under qemu-arm. The
# ARMv6 one runs on an emulated ARM1176 (the Pi Zero's CPU), so an ARMv7
# instruction in it fails the test rather than a user's Pi Zero.
test-armv7: static-armv7
	YSYNC_TEST_BIN=$(CURDIR)/target/$(ARMV7)/release/ysync YSYNC_TEST_RUNNER=qemu-arm-static QEMU_CPU=cortex-a7 \
	    $(CARGO) test --locked --test it -- mirror:: smart::
test-armv6: static-armv6
	YSYNC_TEST_BIN=$(CURDIR)/target/$(ARMV6)/release/ysync YSYNC_TEST_RUNNER=qemu-arm-static QEMU_CPU=arm1176 \
	    $(CARGO) test --locked --test it -- mirror:: smart::

# The release files in dist/: a tarball per static target, .debs for amd64,
# arm64 and armhf, and SHA256SUMS (build/dist.sh; reproducible).
dist: static static-aarch64 static-armv7 static-armv6
	sh build/dist.sh

# The container image from scratch (contrib/container/Dockerfile), with
# podman or else docker; IMAGE_TARGET=aarch64-unknown-linux-musl (after
# make static-aarch64) for an arm64 image.
IMAGE_TARGET ?= $(X86)
image: static
	$$(command -v podman || command -v docker) build -f contrib/container/Dockerfile \
	    --build-arg TARGET=$(IMAGE_TARGET) -t ysync:$$(sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n 1) -t ysync:latest .

# The image built and run by podman against the emulator (tests/it/packages.rs).
test-image: static
	YSYNC_TEST_IMAGE=1 $(CARGO) test --locked --test it -- packages::the_container_image

# Just the .deb of this machine's static binary (build/deb.sh).
deb: static
	sh build/deb.sh target/$(X86)/release/ysync amd64 $$(sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n 1) dist

# Sizes of the static binaries against their budgets.
size: static static-aarch64 static-armv7 static-armv6
	bench/size.sh

# ---- install ------------------------------------------------------------------

install: build install-files

install-files:
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(DATADIR)/systemd \
	    $(DESTDIR)$(DATADIR)/openrc $(DESTDIR)$(DATADIR)/cron $(DESTDIR)$(DATADIR)/openwrt \
	    $(DESTDIR)$(DATADIR)/entware $(DESTDIR)$(SYSCONFDIR)
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/ysync
	install -m 644 ysync.1 $(DESTDIR)$(MANDIR)/man1/ysync.1
	install -m 644 ysync.conf.example README.md GUIDE.md $(DESTDIR)$(DATADIR)/
	@# The service files name the binary where this install puts it.
	for f in contrib/systemd/* contrib/cron/ysync.cron contrib/openrc/ysync; do \
	    sed 's|/usr/local/bin/ysync|$(PREFIX)/bin/ysync|g' $$f > $(DESTDIR)$(DATADIR)/$${f#contrib/}; done
	chmod 644 $(DESTDIR)$(DATADIR)/systemd/* $(DESTDIR)$(DATADIR)/cron/ysync.cron
	chmod 755 $(DESTDIR)$(DATADIR)/openrc/ysync
	install -m 755 contrib/openwrt/ysync $(DESTDIR)$(DATADIR)/openwrt/ysync
	install -m 755 contrib/entware/S99ysync $(DESTDIR)$(DATADIR)/entware/S99ysync
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/ysync.conf ]; then \
	    echo "kept the existing $(DESTDIR)$(SYSCONFDIR)/ysync.conf"; \
	else install -m 600 ysync.conf.example $(DESTDIR)$(SYSCONFDIR)/ysync.conf; \
	    echo "installed $(DESTDIR)$(SYSCONFDIR)/ysync.conf: set token, local_dir and remote_dir"; fi

# Leaves /etc/ysync.conf (it holds your token) and the state in place.
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/ysync $(DESTDIR)$(MANDIR)/man1/ysync.1
	rm -rf $(DESTDIR)$(DATADIR)

# The planner's properties and the whole-cycle model tests, a hundred times
# longer than in `make test` (not in CI): 1 000 000 planner cases and
# 100 000 cycle seeds, optimised. A failure prints its seed;
# YSYNC_TEST_SEED=<seed> cargo test --bin ysync <props|cycle::tests> replays it.
soak:
	YSYNC_PROPS_CASES=1000000 YSYNC_CYCLE_SEEDS=100000 $(CARGO) test --locked --release --bin ysync -- --nocapture props:: cycle::tests::

# Mutation testing (not in CI; about an hour): cargo-mutants changes the
# planner and the executor one mutant at a time, and the unit tests (with
# the generated suites cut to 1 000 cases and 100 seeds) must fail for each.
# Survivors are listed in mutants.out/missed.txt.
MUTATED = -f src/plan.rs -f src/plan/moves.rs -f src/plan/order.rs -f src/exec/mod.rs -f src/exec/upload.rs -f src/exec/moves.rs
mutants:
	$(CARGO) mutants --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-mutants
	YSYNC_PROPS_CASES=1000 YSYNC_CYCLE_SEEDS=100 $(CARGO) mutants -j 1 $(MUTATED) -- --bin ysync

# Speed, memory and requests against their limits, then the scale table
# (10 000, 100 000 and 1 000 000 files; BENCH_FILES=N for one quick size);
# results go to BENCHMARKS.md. About 45 minutes with the million.
bench:
	python3 bench/run.py
	python3 bench/restore.py
	SCALE_FILES=$${BENCH_FILES:-10000,100000,1000000} SCALE_WRITE=1 python3 bench/scale.py

# Peak memory and wall of each kind of cycle at several tree sizes (issue
# 15); SCALE_FILES=10000,100000,1000000 for the million, SCALE_WRITE=1 to
# write the table into BENCHMARKS.md. Not in `make test`.
bench-scale:
	python3 bench/scale.py

clean:
	$(CARGO) clean
