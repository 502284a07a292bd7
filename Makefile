# fedmsg-c: a fedmsg-compatible hub and bridge in C.
#
#   make            libraries, tools and plugins (release build in build/)
#   make run        the main job on an embedded default, no broker needed
#   make test       unit tests under ASan+UBSan, fuzz corpus replay, pytest
#                   (ASan+UBSan tools; then a subset under valgrind)
#   make bench      throughput as ratios to baselines measured in the same run
#   make fuzz       longer libFuzzer runs (FUZZ_SECONDS per target)
#   make install    PREFIX=/usr/local DESTDIR=
#   make clean
#
# Missing Debian packages are installed by .ci/install-deps (as root), so the
# README's two commands work on a fresh Debian 12 machine.

PREFIX		?= /usr/local
DESTDIR		?=
BINDIR		 = $(PREFIX)/bin
LIBDIR		 = $(PREFIX)/lib
INCLUDEDIR	 = $(PREFIX)/include
PLUGINDIR	 = $(LIBDIR)/fedmsg-c
PKGCONFIGDIR	 = $(LIBDIR)/pkgconfig
DOCDIR		 = $(PREFIX)/share/doc/fedmsg-c

VERSION		 = 0.1.0
SOVERSION	 = 0

CC		?= cc
CLANG		?= clang
PYTHON		?= /usr/bin/python3
B		 = build

PKGS		 = jansson openssl libzmq
WARN		 = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
		   -Wmissing-prototypes -Wpointer-arith -Wformat=2 -Wvla \
		   -Wno-format-truncation  # error texts are cut to FM_ERRLEN on purpose
CFLAGS		?= -O2 -g
BASE_CFLAGS	 = -std=c11 -D_GNU_SOURCE -fPIC -Iinclude -Ihub -Ihub/runtime \
		   -Ibridge -DFM_PLUGIN_DIR='"$(PLUGINDIR)"' $(WARN) \
		   $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS		 = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread
SAN		 = -fsanitize=address,undefined -fno-omit-frame-pointer \
		   -fno-sanitize-recover=all
SAN_CFLAGS	 = -O1 -g $(SAN)

# The core library: everything in hub/ except daemon entry points.
CORE_SRC	 = $(filter-out hub/fedmsg-%.c,$(wildcard hub/*.c))
# Broker links and bridges: bridge/*.c (libfmbridge.a, with qpid-proton),
# used by fedmsg-bridge and fedmsg-hub; bridge/fedmsg-*.c are programs.
BRIDGE_SRC	 = $(filter-out bridge/fedmsg-%.c,$(wildcard bridge/*.c))
REL_BRIDGE_OBJ	 = $(patsubst %.c,$(B)/rel/%.o,$(BRIDGE_SRC))
SAN_BRIDGE_OBJ	 = $(patsubst %.c,$(B)/asan/%.o,$(BRIDGE_SRC))
BRIDGE_LIBS	 = $(shell pkg-config --libs libqpid-proton 2>/dev/null || echo -lqpid-proton)
# The hub daemon: hub/runtime/*.c on top of the core library.
HUB_RT_SRC	 = $(filter-out hub/runtime/fedmsg-%.c,$(wildcard hub/runtime/*.c))
HUB_LIBS	 = -lmicrohttpd -lsystemd -ldl
REL_HUB_OBJ	 = $(patsubst %.c,$(B)/rel/%.o,$(HUB_RT_SRC))
SAN_HUB_OBJ	 = $(patsubst %.c,$(B)/asan/%.o,$(HUB_RT_SRC))
# Command-line tools: tools/fedmsg-*.c are programs; other tools/*.c are
# shared helpers linked into each of them.
TOOL_MAINS	 = $(wildcard tools/fedmsg-*.c)
TOOL_LIB_SRC	 = $(filter-out $(TOOL_MAINS),$(wildcard tools/*.c))
TOOLS		 = $(patsubst tools/%.c,%,$(TOOL_MAINS))
# Consumer plugins: consumers/<name>/*.c -> <name>.so, built against
# include/fedmsg/plugin.h only (they link nothing of ours).
PLUGIN_NAMES	 = $(patsubst consumers/%/,%,$(sort $(dir $(wildcard consumers/*/*.c))))
# (consumers/common.h is a header shared by the plugins, not a plugin)
PLUGINS		 = $(addprefix $(B)/plugins/,$(addsuffix .so,$(PLUGIN_NAMES)))
UNIT_SRC	 = $(wildcard tests/unit/test_*.c)
UNIT_TESTS	 = $(patsubst tests/unit/%.c,$(B)/asan/tests/%,$(UNIT_SRC))
FUZZ_SRC	 = $(wildcard tests/fuzz/fuzz_*.c)
FUZZERS		 = $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(FUZZ_SRC))
FUZZ_SECONDS	?= 300

REL_CORE_OBJ	 = $(patsubst %.c,$(B)/rel/%.o,$(CORE_SRC))
REL_TOOL_OBJ	 = $(patsubst %.c,$(B)/rel/%.o,$(TOOL_LIB_SRC))
SAN_CORE_OBJ	 = $(patsubst %.c,$(B)/asan/%.o,$(CORE_SRC))
SAN_TOOL_OBJ	 = $(patsubst %.c,$(B)/asan/%.o,$(TOOL_LIB_SRC))

DEPS_STAMP	 = $(B)/.deps-build
TEST_DEPS_STAMP	 = $(B)/.deps-test


.PHONY: check-install-order all deps test-deps run test unit fuzz-replay integration valgrind fuzz bench FORCE \
	install uninstall clean asan-tools
.DELETE_ON_ERROR:
# Keep the objects that pattern chains would make intermediate (tools,
# unit tests): no relinking on every make.  Named one by one: a bare
# `.SECONDARY:` would also make the package stamps secondary, and make
# then skips installing packages that are missing.
.SECONDARY: $(patsubst %.c,$(B)/rel/%.o,$(TOOL_MAINS)) \
	$(patsubst %.c,$(B)/asan/%.o,$(TOOL_MAINS) $(UNIT_SRC))

all: $(DEPS_STAMP) $(B)/lib/libfedmsg.a $(B)/lib/libfedmsg.so \
	$(addprefix $(B)/bin/,$(TOOLS)) $(B)/bin/fedmsg-hub \
	$(B)/bin/fedmsg-bridge $(PLUGINS) $(B)/fedmsg-c.pc

# ---- dependencies -----------------------------------------------------------

$(DEPS_STAMP): .ci/install-deps
	@mkdir -p $(B)
	sh .ci/install-deps build
	@touch $@

$(TEST_DEPS_STAMP): .ci/install-deps Makefile
	@mkdir -p $(B)
	sh .ci/install-deps build test brokers peers
	@touch $@

deps: $(DEPS_STAMP)
test-deps: $(TEST_DEPS_STAMP)

# ---- release build ------------------------------------------------------------

$(B)/rel/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(B)/lib/libfedmsg.a: $(REL_CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(B)/lib/libfedmsg.so: $(REL_CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libfedmsg.so.$(SOVERSION) -o $@.$(SOVERSION) $^ $(LIBS)
	ln -sf libfedmsg.so.$(SOVERSION) $@

$(B)/bin/%: $(B)/rel/tools/%.o $(REL_TOOL_OBJ) $(B)/lib/libfedmsg.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(REL_TOOL_OBJ) $(B)/lib/libfedmsg.a $(LIBS)

$(B)/lib/libfmbridge.a: $(REL_BRIDGE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(B)/bin/fedmsg-bridge: $(B)/rel/bridge/fedmsg-bridge.o \
		$(B)/lib/libfmbridge.a $(B)/lib/libfedmsg.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS) $(BRIDGE_LIBS)

$(B)/bin/fedmsg-hub: $(B)/rel/hub/runtime/fedmsg-hub.o $(REL_HUB_OBJ) \
		$(B)/lib/libfmbridge.a $(B)/lib/libfedmsg.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS) $(HUB_LIBS) $(BRIDGE_LIBS)

# -fvisibility=hidden: the entry symbol is the only one a plugin exports.
.SECONDEXPANSION:
$(B)/plugins/%.so: $$(wildcard consumers/%/*.c) $$(wildcard consumers/%/*.h) \
		consumers/common.h include/fedmsg/plugin.h | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -Iinclude $(WARN) $(CFLAGS) -fPIC -pthread \
	    -fvisibility=hidden -shared -o $@ $(filter %.c,$^)

# Things that embed PREFIX are rebuilt when it changes.
$(B)/.prefix: FORCE
	@mkdir -p $(B)
	@echo '$(PREFIX)' | cmp -s - $@ || echo '$(PREFIX)' > $@
$(B)/rel/hub/runtime/hub.o $(B)/asan/hub/runtime/hub.o: $(B)/.prefix
FORCE:

$(B)/fedmsg-c.pc: Makefile $(B)/.prefix
	@mkdir -p $(B)
	printf '%s\n' "prefix=$(PREFIX)" 'includedir=$${prefix}/include' \
	    'libdir=$${prefix}/lib' "plugindir=$(PLUGINDIR)" '' \
	    'Name: fedmsg-c' 'Description: fedmsg-compatible message bus library' \
	    'Version: $(VERSION)' 'Requires.private: $(PKGS)' \
	    'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -lfedmsg' > $@

# ---- sanitizer build (what the unit and integration tests run) ------------

$(B)/asan/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(SAN_CFLAGS) -MMD -MP -c -o $@ $<

# Unit tests need cmocka (the test packages): installed before any compile.
$(B)/asan/tests/%.o: tests/%.c | $(TEST_DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(SAN_CFLAGS) -MMD -MP -c -o $@ $<

$(B)/asan/lib/libfedmsg.a: $(SAN_CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(B)/asan/bin/%: $(B)/asan/tools/%.o $(SAN_TOOL_OBJ) $(B)/asan/lib/libfedmsg.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $< $(SAN_TOOL_OBJ) $(B)/asan/lib/libfedmsg.a $(LIBS)

$(B)/asan/tests/%: $(B)/asan/tests/unit/%.o $(B)/asan/lib/libfmbridge.a \
		$(B)/asan/lib/libfedmsg.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $< $(B)/asan/lib/libfmbridge.a \
	    $(B)/asan/lib/libfedmsg.a $(LIBS) $(BRIDGE_LIBS) -lcmocka

$(B)/asan/lib/libfmbridge.a: $(SAN_BRIDGE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(B)/asan/bin/fedmsg-bridge: $(B)/asan/bridge/fedmsg-bridge.o \
		$(B)/asan/lib/libfmbridge.a $(B)/asan/lib/libfedmsg.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ $(LIBS) $(BRIDGE_LIBS)

$(B)/asan/bin/fedmsg-hub: $(B)/asan/hub/runtime/fedmsg-hub.o $(SAN_HUB_OBJ) \
		$(B)/asan/lib/libfmbridge.a $(B)/asan/lib/libfedmsg.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ $(LIBS) $(HUB_LIBS) $(BRIDGE_LIBS)

asan-tools: $(addprefix $(B)/asan/bin/,$(TOOLS)) $(B)/asan/bin/fedmsg-hub \
	$(B)/asan/bin/fedmsg-bridge

# ---- fuzzing (clang libFuzzer) ------------------------------------------------

$(B)/fuzz/%: tests/fuzz/%.c $(CORE_SRC) $(BRIDGE_SRC) $(wildcard hub/*.h) \
		$(wildcard bridge/*.h) | $(TEST_DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CLANG) -std=c11 -D_GNU_SOURCE -Iinclude -Ihub -Ihub/runtime -Ibridge \
	    -g -O1 -fsanitize=fuzzer,address,undefined -o $@ $< $(CORE_SRC) \
	    $(BRIDGE_SRC) $(LIBS) $(BRIDGE_LIBS)

# Replays each target's checked-in corpus, then fuzzes it briefly.
fuzz-replay: $(TEST_DEPS_STAMP) $(FUZZERS)
	@for f in $(FUZZERS); do n=$$(basename $$f); \
	    echo "fuzz: $$n (corpus replay + 20 s)"; \
	    mkdir -p $(B)/fuzz/corpus-$$n && \
	    $$f -max_total_time=20 -timeout=5 -rss_limit_mb=1024 \
	        $(B)/fuzz/corpus-$$n tests/fuzz/corpus/$$n \
	        > $(B)/fuzz/$$n.log 2>&1 || { tail -50 $(B)/fuzz/$$n.log; exit 1; }; \
	    tail -1 $(B)/fuzz/$$n.log; done

fuzz: $(TEST_DEPS_STAMP) $(FUZZERS)
	@for f in $(FUZZERS); do n=$$(basename $$f); \
	    mkdir -p $(B)/fuzz/corpus-$$n && \
	    $$f -max_total_time=$(FUZZ_SECONDS) -timeout=5 -rss_limit_mb=1024 \
	        $(B)/fuzz/corpus-$$n tests/fuzz/corpus/$$n || exit 1; done

# ---- tests ----------------------------------------------------------------------

unit: $(TEST_DEPS_STAMP) $(UNIT_TESTS) $(PLUGINS)
	@set -e; for t in $(UNIT_TESTS); do \
	    echo "unit: $$t"; FM_TEST_DATA=tests/data $$t; done

integration: all asan-tools $(TEST_DEPS_STAMP)
	FM_BIN=$(CURDIR)/$(B)/asan/bin FM_BUILD=$(CURDIR)/$(B) \
	    $(PYTHON) -m pytest -q tests/integration

# The integration path again, the release binaries under valgrind (any
# error report fails the test, as a sanitizer's does: conftest FM_WRAP):
# the relay, the hub and its consumers, the bridges and the hub on
# RabbitMQ and ActiveMQ.  Left out: the long fault runs (outages, kill -9,
# bursts), whose timing valgrind's 20x slowdown would change.
VALGRIND	 = valgrind -q --error-exitcode=99 --leak-check=full \
		   --show-leak-kinds=definite --errors-for-leak-kinds=definite
VALGRIND_TESTS	 = $(addprefix tests/integration/,test_zmq_relay.py \
		   test_hub_consumers.py test_hub_amqp_outcomes.py \
		   test_bridge_config.py test_bridge_amqp.py test_hub_broker.py \
		   test_bridge_stomp.py)

valgrind: all $(TEST_DEPS_STAMP)
	FM_BIN=$(CURDIR)/$(B)/bin FM_BUILD=$(CURDIR)/$(B) FM_WRAP="$(VALGRIND)" \
	    $(PYTHON) -m pytest -q -k "not (outage or burst or restart or kill)" \
	    $(VALGRIND_TESTS)

# A clean copy of the tree must install the test packages before it
# compiles a test: what a fresh machine's `make test` relies on.
check-install-order:
	sh tests/build/check-install-order.sh .

test: $(TEST_DEPS_STAMP) check-install-order all unit fuzz-replay integration valgrind

# ---- the main job on the embedded default --------------------------------------

run: all
	@sh tests/run-demo.sh $(B)

# ---- benchmarks -------------------------------------------------------------------

# tests/bench/run.sh makes $(B)/dev with certs/mkcerts.sh if needed, runs
# openssl speed and bench_crypto, prints the table and $(B)/bench/crypto.txt;
# then tests/bench/run_bus.sh: fedmsg-relay and fedmsg-hub against a raw
# ZeroMQ hop (bench_zmq, noop_consumer.so, bench_plugin), printed and
# written to $(B)/bench/relay.txt and $(B)/bench/hub.txt; then (unless
# BENCH_BROKERS=0) tests/bench/run_brokers.sh: fedmsg-bridge through
# RabbitMQ (AMQP 1.0) and ActiveMQ (STOMP) against direct clients
# (bench_broker, tests/bench/bench_stomp.py): $(B)/bench/brokers.txt.
BENCH_PROGS	 = $(addprefix $(B)/bench/,bench_crypto bench_zmq bench_plugin \
		   noop_consumer.so bench_broker)

# qpid-proton's own C examples send.c/receive.c (libqpid-proton11-dev-
# examples), built from where Debian installs them: the AMQP baseline the
# issue names.  Their code, their flags: not held to our -Werror.
PROTON_EXAMPLES	?= /usr/share/proton/examples/c
ifneq ($(wildcard $(PROTON_EXAMPLES)/send.c),)
BENCH_PROGS	+= $(B)/bench/proton-send $(B)/bench/proton-receive
endif

BENCH_HEADERS	 = $(wildcard tests/bench/*.h)

bench: all $(BENCH_PROGS)
	sh tests/bench/run.sh $(B)

$(B)/bench/%: tests/bench/%.c $(BENCH_HEADERS) $(B)/lib/libfedmsg.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -O2 -g -o $@ $< $(B)/lib/libfedmsg.a $(LIBS)

# bench_broker: qpid-proton for AMQP 1.0, bridge/stomp.h for STOMP.
$(B)/bench/bench_broker: tests/bench/bench_broker.c $(BENCH_HEADERS) \
		$(B)/lib/libfmbridge.a \
		$(B)/lib/libfedmsg.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -O2 -g -o $@ $< $(B)/lib/libfmbridge.a \
	    $(B)/lib/libfedmsg.a $(LIBS) $(BRIDGE_LIBS)

$(B)/bench/proton-%: $(PROTON_EXAMPLES)/%.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) -O2 -o $@ $< $(BRIDGE_LIBS) -lpthread

# bench_plugin includes noop_consumer.c and dlopen()s its .so; its host
# has the hub's own ABI 1.1 accessors (plugin_json.c).
$(B)/bench/bench_plugin: tests/bench/bench_plugin.c $(BENCH_HEADERS) \
		tests/bench/noop_consumer.c include/fedmsg/plugin.h \
		$(B)/rel/hub/runtime/plugin_json.o $(B)/lib/libfedmsg.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -O2 -g -o $@ $< $(B)/rel/hub/runtime/plugin_json.o \
	    $(B)/lib/libfedmsg.a $(LIBS) -ldl

# Built like a consumers/<name>/ plugin, against include/fedmsg/plugin.h only.
$(B)/bench/noop_consumer.so: tests/bench/noop_consumer.c \
		include/fedmsg/plugin.h | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -Iinclude $(WARN) $(CFLAGS) -fPIC \
	    -fvisibility=hidden -shared -o $@ $<

# ---- install ------------------------------------------------------------------------

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(INCLUDEDIR)/fedmsg \
	    $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PLUGINDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 755 $(addprefix $(B)/bin/,$(TOOLS)) $(B)/bin/fedmsg-hub \
	    $(B)/bin/fedmsg-bridge $(DESTDIR)$(BINDIR)/
	install -m 644 include/fedmsg/*.h $(DESTDIR)$(INCLUDEDIR)/fedmsg/
	install -m 644 $(B)/lib/libfedmsg.a $(DESTDIR)$(LIBDIR)/
	install -m 755 $(B)/lib/libfedmsg.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/
	ln -sf libfedmsg.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libfedmsg.so
	install -m 644 $(B)/fedmsg-c.pc $(DESTDIR)$(PKGCONFIGDIR)/
	$(if $(PLUGINS),install -m 755 $(PLUGINS) $(DESTDIR)$(PLUGINDIR)/)
	install -d $(DESTDIR)$(DOCDIR)/examples
	install -m 644 consumers/example/example.c $(DESTDIR)$(DOCDIR)/examples/
	install -d $(DESTDIR)$(LIBDIR)/systemd/system
	sed 's|/usr/local/bin|$(BINDIR)|' hub/runtime/fedmsg-hub.service \
	    > $(DESTDIR)$(LIBDIR)/systemd/system/fedmsg-hub.service

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(TOOLS) fedmsg-hub fedmsg-bridge)
	rm -rf $(DESTDIR)$(INCLUDEDIR)/fedmsg
	rm -f $(DESTDIR)$(LIBDIR)/libfedmsg.a $(DESTDIR)$(LIBDIR)/libfedmsg.so*
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/fedmsg-c.pc
	rm -rf $(DESTDIR)$(PLUGINDIR)
	rm -f $(DESTDIR)$(LIBDIR)/systemd/system/fedmsg-hub.service
	rm -rf $(DESTDIR)$(DOCDIR)

clean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
