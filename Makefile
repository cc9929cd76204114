# ysync — see README.md. `make demo` and `make test` are all a newcomer needs.
PREFIX  ?= /usr/local
DESTDIR ?=
CARGO   ?= cargo
BIN      = target/release/ysync

.PHONY: build test demo emulator install uninstall clean

build:
	$(CARGO) build --release --locked

# Unit tests (planner, config, scan, state, client) and integration tests that
# run the real binary against the bundled Yandex Disk emulator. No network.
test:
	$(CARGO) test --locked --all-targets

# Mirrors a sample folder into the bundled emulator and shows the fake Disk.
demo: build
	$(CARGO) run --release --locked --quiet --example demo -- $(BIN)

# The emulator on its own (http://127.0.0.1:8765/v1/disk, token demo-token).
emulator:
	$(CARGO) run --release --locked --example fake-disk

install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/ysync
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/ysync
	install -m 644 ysync.conf.example $(DESTDIR)$(PREFIX)/share/ysync/ysync.conf.example

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/ysync
	rm -rf $(DESTDIR)$(PREFIX)/share/ysync

clean:
	$(CARGO) clean
