# fedmsg-c: a fedmsg-compatible hub and bridge in C.
#
#   make            libraries, tools and plugins (release build in build/)
#   make run        the main job on an embedded default, no broker needed
#   make test       build checks, unit tests under ASan+UBSan, fuzz corpus replay, pytest
#                   (ASan+UBSan tools; then a subset under valgrind)
#   make bench      throughput as ratios to baselines measured in the same run
#   make bench-spool  the disk spool against LMDB (needs liblmdb-dev)
#   make soak       relay, hub and bridges under steady load for SOAK_MINUTES (10)
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

VERSION		 = 0.2.0
# Bumped when a public struct changes size: 1 = fm_validator_config and
# fm_validator_stats grew (the verify-once cache), so a program linked
# against libfedmsg.so.0 must be rebuilt, and the loader says so.
SOVERSION	 = 1

CC		?= cc
CLANG		?= clang
PYTHON		?= /usr/bin/python3
B		 = build

PKGS		 = jansson openssl libzmq
WARN		 = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
		   -Wmissing-prototypes -Wpointer-arith -Wformat=2 -Wvla \
		   -Wno-format-truncation  # error texts are cut to FM_ERRLEN on purpose
CFLAGS		?= -O2 -g
BASE_CFLAGS	 = -std=c11 -D_GNU_SOURCE -fPIC -DFM_PLUGIN_DIR='"$(PLUGINDIR)"' \
		   $(WARN) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS		 = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread
SAN		 = -fsanitize=address,undefined -fno-omit-frame-pointer \
		   -fno-sanitize-recover=all
SAN_CFLAGS	 = -O1 -g $(SAN)

# The layers, bottom up (DESIGN.md draws them).  Each folder is compiled
# with the include paths of the layers below it and its own, nothing more,
# and each layer is its own archive: an #include or a call the wrong way
# fails the build (make check-layers proves it).
#   libfedmsg/  the core library: libfedmsg.a (internal), libfedmsg.so
#   brokers/    broker links (AMQP 1.0 on qpid-proton, STOMP), the spool
#   hub/        fedmsg-hub          bridge/  fedmsg-bridge
#   tools/      the command-line programs, on brokers/ (--broker) and below
#   consumers/  plugins, on include/fedmsg/plugin.h only
INC_libfedmsg	 = -Iinclude -Ilibfedmsg
INC_brokers	 = $(INC_libfedmsg) -Ibrokers
INC_hub		 = $(INC_brokers) -Ihub
INC_bridge	 = $(INC_brokers) -Ibridge
INC_tools	 = $(INC_brokers) -Itools
INC_consumers	 = -Iinclude
INC_publishers	 = $(INC_brokers) -Ipublishers $(shell pkg-config --cflags libgit2 2>/dev/null)
# The include paths of a source file: those of its top folder.
layer_inc	 = $(INC_$(firstword $(subst /, ,$(1))))

CORE_SRC	 = $(wildcard libfedmsg/*.c)
BROKER_SRC	 = $(wildcard brokers/*.c)
BROKER_LIBS	 = $(shell pkg-config --libs libqpid-proton 2>/dev/null || echo -lqpid-proton) \
		   $(shell pkg-config --libs librabbitmq 2>/dev/null || echo -lrabbitmq)
# hub/ and bridge/: fedmsg-<name>.c is the program, the rest its archive.
HUB_SRC		 = $(filter-out hub/fedmsg-%.c,$(wildcard hub/*.c))
HUB_LIBS	 = -lmicrohttpd -lsystemd -ldl
BRIDGE_SRC	 = $(filter-out bridge/fedmsg-%.c,$(wildcard bridge/*.c))
# Command-line tools: tools/fedmsg-*.c are programs; other tools/*.c are
# shared helpers (libfmtools.a).
TOOL_MAINS	 = $(wildcard tools/fedmsg-*.c)
TOOL_LIB_SRC	 = $(filter-out $(TOOL_MAINS),$(wildcard tools/*.c))
TOOLS		 = $(patsubst tools/%.c,%,$(TOOL_MAINS))
# publishers/: programs that publish for others (fedmsg-git-hook), on
# libgit2; fedmsg-<name>.c is the program, the rest its archive.
PUB_SRC		 = $(filter-out publishers/fedmsg-%.c,$(wildcard publishers/*.c))
PUB_LIBS	 = $(shell pkg-config --libs libgit2 2>/dev/null || echo -lgit2) $(BROKER_LIBS)
# Consumer plugins: consumers/<name>/*.c -> <name>.so, built against
# include/fedmsg/plugin.h only (they link nothing of ours).  A plugin
# that needs a library of its own names it in PLUGIN_LIBS_<name>.
PLUGIN_LIBS_resultsdb = -lcurl -ljansson
PLUGIN_LIBS_robosignatory = -lcurl -lgssapi_krb5 -lkrb5
PLUGIN_NAMES	 = $(patsubst consumers/%/,%,$(sort $(dir $(wildcard consumers/*/*.c))))
PLUGINS		 = $(addprefix $(B)/plugins/,$(addsuffix .so,$(PLUGIN_NAMES)))
SAN_PLUGINS	 = $(addprefix $(B)/asan/plugins/,$(addsuffix .so,$(PLUGIN_NAMES)))
UNIT_SRC	 = $(wildcard tests/unit/test_*.c)
UNIT_TESTS	 = $(patsubst tests/unit/%.c,$(B)/asan/tests/%,$(UNIT_SRC))
# Unit tests that run a second time built without sanitizers: what they
# test is glibc's own malloc, which ASan replaces.
UNIT_PLAIN	 = $(B)/tests/test_heap
# tests/tools/*.c: helper programs the integration tests run (ASan build).
TEST_TOOL_SRC	 = $(wildcard tests/tools/*.c)
TEST_TOOLS	 = $(patsubst tests/tools/%.c,$(B)/asan/tests/tools/%,$(TEST_TOOL_SRC))
FUZZ_SRC	 = $(wildcard tests/fuzz/fuzz_*.c)
FUZZERS		 = $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(FUZZ_SRC))
FUZZ_SECONDS	?= 300
# Unit tests and fuzzers link the layer they test and those below it:
# libfedmsg unless listed under another layer here (a libfedmsg test must
# not link proton).
TEST_LAYERS	 = brokers tools publishers hub bridge consumers
TESTS_brokers	 = test_spool test_crc32c test_stomp test_stomp_frame test_stomp_session \
		   test_net test_amqp_net test_broker_wrap test_broker_format \
		   fuzz_stomp test_amqp_routing_key test_amqp091_connect \
		   test_resend_limit fuzz_broker_wrap test_amqp091_table \
		   test_spool_faults test_stomp_link
TESTS_tools	 = test_terse test_fm_serial test_topic_binding test_relay_pool
TESTS_publishers = test_git_commit test_hook_broker
# the plugins under the hub's own ABI 1.1 accessors (hub/plugin_json.c)
TESTS_hub	 = test_consumers test_pubq
TESTS_bridge	 = test_koji_map test_coalesce fuzz_koji_map
# a plugin's own code (#included): the public headers, its libraries
TESTS_consumers	 = test_rdb_mapping test_negotiate
test_layer	 = $(or $(firstword $(foreach l,$(TEST_LAYERS),$(if \
		   $(filter $(1),$(TESTS_$(l))),$(l)))),libfedmsg)
# Per layer: the archives a test links (in link order), its libraries.
TEST_ARCHIVES_libfedmsg = libfedmsg.a
TEST_ARCHIVES_brokers = libfmbroker.a libfedmsg.a
TEST_ARCHIVES_tools = libfmtools.a libfmbroker.a libfedmsg.a
TEST_ARCHIVES_publishers = libfmpublishers.a libfmbroker.a libfedmsg.a
TEST_ARCHIVES_hub = libfmhub.a libfmbroker.a libfedmsg.a
TEST_ARCHIVES_bridge = libfmbridge.a libfmbroker.a libfedmsg.a
TEST_LIBS_brokers = $(BROKER_LIBS)
TEST_LIBS_publishers = $(PUB_LIBS)
TEST_LIBS_hub	 = $(HUB_LIBS) $(BROKER_LIBS)
TEST_LIBS_bridge = $(BROKER_LIBS)
TEST_LIBS_tools = $(BROKER_LIBS)
TEST_LIBS_consumers = $(PLUGIN_LIBS_resultsdb) -lgssapi_krb5 -lkrb5
test_archives	 = $(addprefix $(B)/asan/lib/,$(TEST_ARCHIVES_$(call test_layer,$(1))))
test_inc	 = $(INC_$(call test_layer,$(1))) -Itests/unit

# The archive of each layer, release and sanitizer builds.
layer_objs	 = $(patsubst %.c,$(B)/$(1)/%.o,$(2))
REL_LIBS	 = $(B)/lib/libfedmsg.a $(B)/lib/libfmbroker.a \
		   $(B)/lib/libfmhub.a $(B)/lib/libfmbridge.a $(B)/lib/libfmtools.a \
		   $(B)/lib/libfmpublishers.a
SAN_LIBS	 = $(patsubst $(B)/lib/%,$(B)/asan/lib/%,$(REL_LIBS))

DEPS_STAMP	 = $(B)/.deps-build
TEST_DEPS_STAMP	 = $(B)/.deps-test

.PHONY: all deps test-deps run test check-install-order check-layers \
	check-exports unit fuzz-replay integration valgrind fuzz bench \
	bench-spool soak FORCE \
	install uninstall clean asan-tools
.DELETE_ON_ERROR:
# Keep the objects that pattern chains would make intermediate (tools,
# unit tests): no relinking on every make.  Named one by one: a bare
# `.SECONDARY:` would also make the package stamps secondary, and make
# then skips installing packages that are missing.
.SECONDARY: $(patsubst %.c,$(B)/rel/%.o,$(TOOL_MAINS)) \
	$(patsubst %.c,$(B)/asan/%.o,$(TOOL_MAINS) $(UNIT_SRC) $(TEST_TOOL_SRC))

all: $(DEPS_STAMP) $(B)/lib/libfedmsg.a $(B)/lib/libfedmsg.so \
	$(addprefix $(B)/bin/,$(TOOLS)) $(B)/bin/fedmsg-hub \
	$(B)/bin/fedmsg-bridge $(B)/bin/fedmsg-git-hook $(PLUGINS) $(B)/fedmsg-c.pc

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

# Prerequisites below may name the stem ($$*): the unit tests' archives.
.SECONDEXPANSION:

$(B)/rel/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(call layer_inc,$*) $(BASE_CFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(B)/lib/libfedmsg.a: $(call layer_objs,rel,$(CORE_SRC))
$(B)/lib/libfmbroker.a: $(call layer_objs,rel,$(BROKER_SRC))
$(B)/lib/libfmhub.a: $(call layer_objs,rel,$(HUB_SRC))
$(B)/lib/libfmbridge.a: $(call layer_objs,rel,$(BRIDGE_SRC))
$(B)/lib/libfmtools.a: $(call layer_objs,rel,$(TOOL_LIB_SRC))
$(B)/lib/libfmpublishers.a: $(call layer_objs,rel,$(PUB_SRC))
$(REL_LIBS) $(SAN_LIBS):
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# Exports only the public API (libfedmsg.map); --no-undefined: a call
# from libfedmsg/ into a higher layer fails here.
$(B)/lib/libfedmsg.so: $(call layer_objs,rel,$(CORE_SRC)) libfedmsg/libfedmsg.map
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libfedmsg.so.$(SOVERSION) \
	    -Wl,--version-script=libfedmsg/libfedmsg.map -Wl,--no-undefined \
	    -o $@.$(SOVERSION) $(filter %.o,$^) $(LIBS)
	ln -sf libfedmsg.so.$(SOVERSION) $@

$(B)/bin/%: $(B)/rel/tools/%.o $(B)/lib/libfmtools.a $(B)/lib/libfmbroker.a \
		$(B)/lib/libfedmsg.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS) $(BROKER_LIBS)

$(B)/bin/fedmsg-bridge: $(B)/rel/bridge/fedmsg-bridge.o $(B)/lib/libfmbridge.a \
		$(B)/lib/libfmbroker.a $(B)/lib/libfedmsg.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS) $(BROKER_LIBS)

$(B)/bin/fedmsg-hub: $(B)/rel/hub/fedmsg-hub.o $(B)/lib/libfmhub.a \
		$(B)/lib/libfmbroker.a $(B)/lib/libfedmsg.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS) $(HUB_LIBS) $(BROKER_LIBS)

$(B)/bin/fedmsg-git-hook: $(B)/rel/publishers/fedmsg-git-hook.o \
		$(B)/lib/libfmpublishers.a $(B)/lib/libfmbroker.a $(B)/lib/libfedmsg.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS) $(PUB_LIBS)

# -fvisibility=hidden: the entry symbol is the only one a plugin exports.
$(B)/plugins/%.so: $$(wildcard consumers/%/*.c) $$(wildcard consumers/%/*.h) \
		include/fedmsg/plugin.h include/fedmsg/plugin_config.h | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -Iinclude $(WARN) $(CFLAGS) -fPIC -pthread \
	    -fvisibility=hidden -shared -o $@ $(filter %.c,$^) $(PLUGIN_LIBS_$*)

# The same plugins under ASan+UBSan, for the unit tests and the ASan hub.
# gcc links the sanitizer runtimes as shared libraries, so the .so needs
# the same libasan.so as its host; the release hub (valgrind) cannot load
# these and keeps $(B)/plugins.
$(B)/asan/plugins/%.so: $$(wildcard consumers/%/*.c) $$(wildcard consumers/%/*.h) \
		include/fedmsg/plugin.h include/fedmsg/plugin_config.h | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -Iinclude $(WARN) $(SAN_CFLAGS) -fPIC -pthread \
	    -fvisibility=hidden -shared -o $@ $(filter %.c,$^) $(PLUGIN_LIBS_$*)

# Things that embed PREFIX are rebuilt when it changes.
$(B)/.prefix: FORCE
	@mkdir -p $(B)
	@echo '$(PREFIX)' | cmp -s - $@ || echo '$(PREFIX)' > $@
$(B)/rel/hub/hub.o $(B)/asan/hub/hub.o: $(B)/.prefix
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
	$(CC) $(call layer_inc,$*) $(BASE_CFLAGS) $(SAN_CFLAGS) -MMD -MP -c -o $@ $<

# Unit tests need cmocka (the test packages): installed before any compile.
$(B)/asan/tests/%.o: tests/%.c | $(TEST_DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(call test_inc,$(notdir $*)) $(BASE_CFLAGS) $(SAN_CFLAGS) -MMD -MP -c -o $@ $<

# exec.c's value checks, compiled into their test, also under
# float-cast-overflow (which -fsanitize=undefined leaves out).
$(B)/asan/tests/unit/test_exec_internal.o: SAN_CFLAGS += \
		-fsanitize=float-cast-overflow

$(B)/asan/lib/libfedmsg.a: $(call layer_objs,asan,$(CORE_SRC))
$(B)/asan/lib/libfmbroker.a: $(call layer_objs,asan,$(BROKER_SRC))
$(B)/asan/lib/libfmhub.a: $(call layer_objs,asan,$(HUB_SRC))
$(B)/asan/lib/libfmbridge.a: $(call layer_objs,asan,$(BRIDGE_SRC))
$(B)/asan/lib/libfmtools.a: $(call layer_objs,asan,$(TOOL_LIB_SRC))
$(B)/asan/lib/libfmpublishers.a: $(call layer_objs,asan,$(PUB_SRC))

$(B)/asan/bin/%: $(B)/asan/tools/%.o $(B)/asan/lib/libfmtools.a \
		$(B)/asan/lib/libfmbroker.a $(B)/asan/lib/libfedmsg.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ $(LIBS) $(BROKER_LIBS)

# test_json_oom fails libfedmsg's allocations one by one (its own
# __wrap_malloc, __wrap_calloc, __wrap_realloc).
TEST_LDFLAGS_test_json_oom = -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc
# test_spool_faults fails the spool's fdatasync() and ftruncate() on demand.
TEST_LDFLAGS_test_spool_faults = -Wl,--wrap=ftruncate,--wrap=fdatasync

$(B)/asan/tests/%: $(B)/asan/tests/unit/%.o $$(call test_archives,$$*)
	@mkdir -p $(dir $@)
	$(CC) $(SAN) $(TEST_LDFLAGS_$*) -o $@ $^ $(LIBS) \
	    $(TEST_LIBS_$(call test_layer,$*)) -lcmocka

# UNIT_PLAIN: libfedmsg's release archive, the release flags
$(B)/tests/%: tests/unit/%.c $(B)/lib/libfedmsg.a | $(TEST_DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(INC_libfedmsg) -Itests/unit $(BASE_CFLAGS) $(CFLAGS) -o $@ $^ \
	    $(LIBS) -lcmocka

$(B)/asan/bin/fedmsg-bridge: $(B)/asan/bridge/fedmsg-bridge.o \
		$(B)/asan/lib/libfmbridge.a $(B)/asan/lib/libfmbroker.a \
		$(B)/asan/lib/libfedmsg.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ $(LIBS) $(BROKER_LIBS)

$(B)/asan/bin/fedmsg-hub: $(B)/asan/hub/fedmsg-hub.o $(B)/asan/lib/libfmhub.a \
		$(B)/asan/lib/libfmbroker.a $(B)/asan/lib/libfedmsg.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ $(LIBS) $(HUB_LIBS) $(BROKER_LIBS)

$(B)/asan/bin/fedmsg-git-hook: $(B)/asan/publishers/fedmsg-git-hook.o \
		$(B)/asan/lib/libfmpublishers.a $(B)/asan/lib/libfmbroker.a \
		$(B)/asan/lib/libfedmsg.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ $(LIBS) $(PUB_LIBS)

asan-tools: $(addprefix $(B)/asan/bin/,$(TOOLS)) $(B)/asan/bin/fedmsg-hub \
	$(B)/asan/bin/fedmsg-bridge $(B)/asan/bin/fedmsg-git-hook $(TEST_TOOLS) $(SAN_PLUGINS)

# (no cmocka: built with the tools, before the test packages)
$(B)/asan/tests/tools/%.o: tests/tools/%.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(INC_libfedmsg) $(BASE_CFLAGS) $(SAN_CFLAGS) -MMD -MP -c -o $@ $<

$(B)/asan/tests/tools/%: $(B)/asan/tests/tools/%.o $(B)/asan/lib/libfedmsg.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $< $(B)/asan/lib/libfedmsg.a $(LIBS)

# ---- fuzzing (clang libFuzzer) ------------------------------------------------

# Each fuzzer is built from the sources of its layer and those below it.
fuzz_src	 = $(CORE_SRC) \
		   $(if $(filter brokers bridge,$(call test_layer,$(1))),$(BROKER_SRC)) \
		   $(if $(filter bridge,$(call test_layer,$(1))),$(BRIDGE_SRC))
$(B)/fuzz/%: tests/fuzz/%.c $$(call fuzz_src,$$*) $$(wildcard libfedmsg/*.h) \
		$$(wildcard tests/fuzz/*.h) \
		$$(if $$(filter brokers bridge,$$(call test_layer,$$*)),$$(wildcard brokers/*.h)) \
		$$(if $$(filter bridge,$$(call test_layer,$$*)),$$(wildcard bridge/*.h)) \
		| $(TEST_DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CLANG) -std=c11 -D_GNU_SOURCE $(INC_$(call test_layer,$*)) \
	    -g -O1 -fsanitize=fuzzer,address,undefined -o $@ $< \
	    $(call fuzz_src,$*) $(LIBS) $(TEST_LIBS_$(call test_layer,$*))

# Replays each target's checked-in corpus, then fuzzes it briefly (one
# target per job: `make -j2 fuzz-replay` runs two at once).
fuzz-replay: $(addprefix fuzz-replay-,$(notdir $(FUZZERS)))
fuzz-replay-%: $(TEST_DEPS_STAMP) $(B)/fuzz/%
	@mkdir -p $(B)/fuzz/corpus-$*
	@$(B)/fuzz/$* -max_total_time=20 -timeout=5 -rss_limit_mb=1024 \
	    $(B)/fuzz/corpus-$* tests/fuzz/corpus/$* \
	    > $(B)/fuzz/$*.log 2>&1 || { tail -50 $(B)/fuzz/$*.log; exit 1; }
	@echo "fuzz: $* (corpus replay + 20 s): $$(tail -1 $(B)/fuzz/$*.log)"

fuzz: $(TEST_DEPS_STAMP) $(FUZZERS)
	@for f in $(FUZZERS); do n=$$(basename $$f); \
	    mkdir -p $(B)/fuzz/corpus-$$n && \
	    $$f -max_total_time=$(FUZZ_SECONDS) -timeout=5 -rss_limit_mb=1024 \
	        $(B)/fuzz/corpus-$$n tests/fuzz/corpus/$$n || exit 1; done

# ---- tests ----------------------------------------------------------------------

unit: $(TEST_DEPS_STAMP) $(UNIT_TESTS) $(UNIT_PLAIN) $(SAN_PLUGINS)
	@set -e; for t in $(UNIT_TESTS) $(UNIT_PLAIN); do \
	    echo "unit: $$t"; FM_TEST_DATA=tests/data \
	    FM_TEST_PLUGIN_DIR=$(B)/asan/plugins $$t; done

# The integration files run TEST_JOBS at a time (pytest-xdist; a file at
# a time per worker, the broker files grouped: conftest): most of a test's
# time is spent waiting on processes, brokers and deadlines, not on the
# CPU.  TEST_JOBS=0 runs them one by one.
TEST_JOBS	?= 3
PYTEST_JOBS	 = -n $(TEST_JOBS) --dist loadgroup

# FM_PLUGIN_DIR, FM_PLUGIN_CFLAGS: the plugins (ours, tests/abi/) that the
# hub under test loads are built like it (conftest).
# qpid-proton's own example broker, unchanged: a second AMQP 1.0 broker
# (tests/integration/test_bridge_amqp_proton.py).
PROTON_BROKER	 = $(B)/tests/proton-broker
$(PROTON_BROKER): | $(TEST_DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) -O2 -o $@ $(PROTON_EXAMPLES)/broker.c $(BROKER_LIBS) -lpthread

integration: all asan-tools $(PROTON_BROKER) $(TEST_DEPS_STAMP)
	FM_BIN=$(CURDIR)/$(B)/asan/bin FM_BUILD=$(CURDIR)/$(B) \
	    FM_PLUGIN_DIR=$(CURDIR)/$(B)/asan/plugins FM_PLUGIN_CFLAGS="$(SAN)" \
	    $(PYTHON) -m pytest -q $(PYTEST_JOBS) tests/integration

# The integration tests again, the release binaries and plugins under
# valgrind (any error report or definite leak fails the test, as a
# sanitizer's does; so does a teardown SIGKILL that lost the report:
# conftest FM_WRAP, STOP_TIMEOUT; deadlines stretch, conftest SLOW).
# Everything short: relay, tools, hub (plugins, queues, verdicts, SIGHUP
# reload, publish, brokers), bridges (AMQP, STOMP, failover, a STOMP ERROR
# frame, a receipt that never comes, an AMQP peer that never settles).
# Left out:
#  - runs whose timing valgrind's slowdown changes: RabbitMQ outage and
#    kill -9 during a flow, the SIGSTOP burst, the 10x burst and the
#    signing relay's burst (their RSS bounds are measured for the ASan
#    build), the relay restart while a
#    publisher sends every 5 ms, the STOMP broker restart and two SIGKILLs,
#    the blackholed AMQP path (a 2 s heartbeat idle timeout), the STOMP
#    and 0-9-1 partitions (test_bridge_partition.py, the same);
#  - the 50 MB and raised max_message_bytes messages (memory bounds
#    measured for the ASan build; minutes under valgrind);
#  - test_sign_cli.py and test_verify_cli.py: ~290 one-shot runs of
#    fedmsg-sign/-verify (~10 minutes under valgrind); their parser,
#    canonical JSON and x509 code runs under valgrind in the relay and the
#    hub, and under ASan and libFuzzer;
#  - files whose time goes to the Python peers or to brokers starting, not
#    to our code (test_peer_fedmsg: real fedmsg; test_git_hook: Fedora's
#    hook on every push; test_git_hook_big: git building 12 000 commits;
#    test_bridge_koji: Koji's protonmsg; the broker
#    runs of ResultsDB and robosignatory; test_broker_harness: the test
#    brokers' own harness).  The C paths they drive run under valgrind in
#    the other files (relay, hub with the same plugins, bridges) and all
#    of them under ASan in `make integration`;
#  - kerberos_config: three hub start-ups that stop at a config error
#    (the same paths run under ASan; the Kerberos flow runs here);
#  - test_hub_install.py: `make install` with another PREFIX relinks the
#    release fedmsg-hub that the other workers are running under valgrind.
# (--child-silent-after-fork: the exec plugin's helper is a fork() of
# the hub that never returns to it; its exit is no leak report.)
VALGRIND	 = valgrind -q --error-exitcode=99 --leak-check=full \
		   --show-leak-kinds=definite --errors-for-leak-kinds=definite \
		   --child-silent-after-fork=yes
VALGRIND_TESTS	 = $(filter-out $(addprefix %/,test_sign_cli.py \
		   test_verify_cli.py test_peer_fedmsg.py test_git_hook.py \
		   test_git_hook_big.py \
		   test_bridge_koji.py test_resultsdb_broker.py \
		   test_robosignatory_broker.py test_broker_harness.py \
		   test_hub_install.py test_tail_broker.py \
		   test_logger_broker.py), \
		   $(wildcard tests/integration/test_*.py))
VALGRIND_SKIP	 = outage or burst or restart_while_publishing or \
		   broker_restart or kill or blackholed or 50mb or \
		   max_message_bytes or partition or kerberos_config or \
		   unread_replies

valgrind: all $(PROTON_BROKER) $(TEST_DEPS_STAMP)
	FM_BIN=$(CURDIR)/$(B)/bin FM_BUILD=$(CURDIR)/$(B) FM_WRAP="$(VALGRIND)" \
	    FM_PLUGIN_DIR=$(CURDIR)/$(B)/plugins \
	    $(PYTHON) -m pytest -q $(PYTEST_JOBS) -k "not ($(VALGRIND_SKIP))" \
	    $(VALGRIND_TESTS)

# A clean copy of the tree must install the test packages before it
# compiles a test: what a fresh machine's `make test` relies on.
check-install-order:
	sh tests/build/check-install-order.sh .

# A wrong-way #include fails to compile (DESIGN.md: the layers).
check-layers:
	sh tests/build/check-layers.sh .

# libfedmsg.so exports the fm_* functions of include/fedmsg/ and no other.
check-exports: $(B)/lib/libfedmsg.so
	sh tests/build/check-exports.sh $(B)

# The builds and the short checks run NPROC jobs at once; the test runs
# one after the other (each runs its own jobs: unit and fuzz-replay side
# by side, integration and valgrind TEST_JOBS pytest workers).
NPROC		:= $(shell nproc 2>/dev/null || echo 2)
test: $(TEST_DEPS_STAMP)
	$(MAKE) -j$(NPROC) check-install-order check-layers check-exports all \
	    asan-tools $(UNIT_TESTS) $(FUZZERS)
	$(MAKE) -j$(NPROC) unit fuzz-replay
	$(MAKE) integration
	$(MAKE) valgrind

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
# RabbitMQ (AMQP 1.0, 0-9-1) and ActiveMQ (STOMP) against direct clients
# (bench_broker, tests/bench/bench_stomp.py) and the Python peers
# (tests/bench/bench_fm.py): $(B)/bench/brokers.txt.
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
	$(CC) $(INC_libfedmsg) $(BASE_CFLAGS) -O2 -g -o $@ $< \
	    $(B)/lib/libfedmsg.a $(LIBS)

# bench_broker: qpid-proton for AMQP 1.0, brokers/stomp.h for STOMP.
$(B)/bench/bench_broker: tests/bench/bench_broker.c $(BENCH_HEADERS) \
		$(B)/lib/libfmbroker.a $(B)/lib/libfedmsg.a
	@mkdir -p $(dir $@)
	$(CC) $(INC_brokers) $(BASE_CFLAGS) -O2 -g -o $@ $< \
	    $(B)/lib/libfmbroker.a $(B)/lib/libfedmsg.a $(LIBS) $(BROKER_LIBS)

# bench_spool_lmdb: our spool against LMDB on the same append/ack workload
# (tests/bench/README); built only where liblmdb-dev is installed, never
# required.
bench-spool: $(if $(wildcard /usr/include/lmdb.h),$(B)/bench/bench_spool_lmdb)
	@test -f /usr/include/lmdb.h || { echo "bench-spool needs liblmdb-dev"; exit 1; }
	$(B)/bench/bench_spool_lmdb

$(B)/bench/bench_spool_lmdb: tests/bench/bench_spool_lmdb.c \
		$(B)/lib/libfmbroker.a $(B)/lib/libfedmsg.a
	@mkdir -p $(dir $@)
	$(CC) $(INC_brokers) $(BASE_CFLAGS) -O2 -g -o $@ $< \
	    $(B)/lib/libfmbroker.a $(B)/lib/libfedmsg.a $(LIBS) \
	    $(BROKER_LIBS) -llmdb

# soak: relay, hub (example + archive) and a bridge to each test broker under
# a steady load for SOAK_MINUTES (default 10): RSS at start and end, messages
# lost, p99 latency per minute (tests/soak/soak.py; not part of `make test`);
# then the 2 000-commit git push compared whole with Fedora's hook, and a
# 30 s RabbitMQ outage under a real fedmsg publisher through a 0-9-1
# bridge with confirms (tests/integration/soak_amqp091_outage.py).
soak: all asan-tools $(B)/bench/bench_zmq
	sh certs/mkcerts.sh $(B)/dev >/dev/null
	/usr/bin/python3 tests/soak/soak.py $(B)
	# fedmsg-git-hook: a 2 000-commit push, every message against Fedora's hook
	FM_GIT_HOOK_FULL=1 FM_BIN=$(abspath $(B))/bin /usr/bin/python3 -m pytest -q \
	    tests/integration/test_git_hook_big.py -k 2000
	FM_BIN=$(CURDIR)/$(B)/asan/bin FM_BUILD=$(CURDIR)/$(B) \
	    $(PYTHON) -m pytest -q tests/integration/soak_amqp091_outage.py

$(B)/bench/proton-%: $(PROTON_EXAMPLES)/%.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) -O2 -o $@ $< $(BROKER_LIBS) -lpthread

# bench_plugin includes noop_consumer.c and dlopen()s its .so; its host
# has the hub's own ABI 1.1 accessors (plugin_json.c).
$(B)/bench/bench_plugin: tests/bench/bench_plugin.c $(BENCH_HEADERS) \
		tests/bench/noop_consumer.c include/fedmsg/plugin.h \
		$(B)/lib/libfmhub.a $(B)/lib/libfedmsg.a
	@mkdir -p $(dir $@)
	$(CC) $(INC_hub) $(BASE_CFLAGS) -O2 -g -o $@ $< $(B)/lib/libfmhub.a \
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
	    $(B)/bin/fedmsg-bridge $(B)/bin/fedmsg-git-hook $(DESTDIR)$(BINDIR)/
	install -m 644 include/fedmsg/*.h $(DESTDIR)$(INCLUDEDIR)/fedmsg/
	install -m 755 $(B)/lib/libfedmsg.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/
	ln -sf libfedmsg.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libfedmsg.so
	install -m 644 $(B)/fedmsg-c.pc $(DESTDIR)$(PKGCONFIGDIR)/
	$(if $(PLUGINS),install -m 755 $(PLUGINS) $(DESTDIR)$(PLUGINDIR)/)
	install -d $(DESTDIR)$(DOCDIR)/examples
	install -m 644 consumers/example/example.c $(DESTDIR)$(DOCDIR)/examples/
	install -d $(DESTDIR)$(LIBDIR)/systemd/system
	sed 's|/usr/local/bin|$(BINDIR)|' hub/fedmsg-hub.service \
	    > $(DESTDIR)$(LIBDIR)/systemd/system/fedmsg-hub.service

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(TOOLS) fedmsg-hub fedmsg-bridge fedmsg-git-hook)
	rm -rf $(DESTDIR)$(INCLUDEDIR)/fedmsg
	rm -f $(DESTDIR)$(LIBDIR)/libfedmsg.a $(DESTDIR)$(LIBDIR)/libfedmsg.so*
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/fedmsg-c.pc
	rm -rf $(DESTDIR)$(PLUGINDIR)
	rm -f $(DESTDIR)$(LIBDIR)/systemd/system/fedmsg-hub.service
	rm -rf $(DESTDIR)$(DOCDIR)

clean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
