# vm: drive QEMU virtual machines from one line.
#   make            build ./vm
#   make check      unit + end-to-end tests; ends with "N passed, N failed"
#   make check-unit unit tests and lint only
#   make deps       install the Debian packages to build, run and test
#   make rescue     build the rescue image into rescue/out/
#   make demo       a real pipeline end to end in a scratch directory
#   make install    PREFIX=/usr/local DESTDIR=  (make uninstall)

VERSION  := 0.1
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
DATADIR  ?= $(PREFIX)/share/vm
MANDIR   ?= $(PREFIX)/share/man
DOCDIR   ?= $(PREFIX)/share/doc/vm
UNITDIR  ?= $(PREFIX)/lib/systemd/system
USERUNITDIR ?= $(PREFIX)/lib/systemd/user
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
SYSCONFDIR ?= /etc

CC       ?= cc

# pkg-config is asked when a value is first needed, not when make starts:
# in `make deps demo` the first goal installs the packages the second
# one links against.  $(eval ...) keeps each answer for the rest of the run.
lazy = $(eval $1 := $(shell $2))$($1)
WITH_GUESTFS ?= $(call lazy,WITH_GUESTFS,pkg-config --exists libguestfs 2>/dev/null && echo 1 || echo 0)
PKGS       = libarchive zlib libcurl libcrypto inih json-c libsystemd libnbd libmicrohttpd gnutls $(if $(filter 1,$(WITH_GUESTFS)),libguestfs)
PKG_CFLAGS = $(call lazy,PKG_CFLAGS,pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(call lazy,PKG_LIBS,pkg-config --libs $(PKGS) 2>/dev/null)

WARN     := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wvla -Wpointer-arith -Wcast-qual \
            -Wwrite-strings
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 $(WARN) -fstack-protector-strong
FORTIFY  := -D_FORTIFY_SOURCE=2
ifeq ($(CI),true)
CFLAGS   += -Werror
endif
ifeq ($(SANITIZE),1)
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
FORTIFY  :=
endif
CPPFLAGS += -Ilib $(FORTIFY) -D_GNU_SOURCE -DVM_VERSION='"$(VERSION)"' \
            -DVM_DATADIR='"$(DATADIR)"' -DWITH_GUESTFS=$(WITH_GUESTFS)
CFLAGS   += $(PKG_CFLAGS)

B        := build
LIB_SRC  := $(wildcard lib/*/*.c)
CMD_SRC  := $(wildcard cmd/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/%.o) $(B)/lib/qemu/accel_probe_bin.o
CMD_OBJ  := $(CMD_SRC:%.c=$(B)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)

all: vm

vm: $(CMD_OBJ) $(B)/libvm.a
	$(CC) $(LDFLAGS) -o $@ $(CMD_OBJ) $(B)/libvm.a $(PKG_LIBS)

# Objects are rebuilt when what is compiled into them changes: libguestfs
# on or off, the sanitizers.  PREFIX is not among them: an installed vm
# finds its data directory from where its binary is (see vm(1)).
BUILD_CONFIG = $(VERSION) $(WITH_GUESTFS) $(SANITIZE) $(CC)
$(B)/config.stamp: FORCE
	@mkdir -p $(B)
	@pkg-config --exists $(PKGS) || { \
		echo "vm: missing libraries ($(PKGS)); run: sudo make deps" >&2; \
		exit 1; }
	@echo '$(BUILD_CONFIG)' | cmp -s - $@ || echo '$(BUILD_CONFIG)' >$@

# Made anew: a member of a source file since moved or removed must go.
$(B)/libvm.a: $(LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

$(B)/%.o: %.c $(wildcard lib/*/*.h cmd/*.h) Makefile $(B)/config.stamp
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -c -o $@ $<

# The KVM probe guest: a boot sector assembled here, embedded as bytes.
$(B)/lib/qemu/accel-probe.bin: lib/qemu/accel-probe.S
	@mkdir -p $(dir $@)
	$(CC) -c -o $(B)/lib/qemu/accel-probe.o $<
	ld -m elf_x86_64 -Ttext=0x7c00 --oformat binary -e _start \
		-o $@ $(B)/lib/qemu/accel-probe.o

$(B)/lib/qemu/accel_probe_bin.c: $(B)/lib/qemu/accel-probe.bin
	{ echo '/* generated from lib/qemu/accel-probe.S */'; \
	  echo 'const unsigned char accel_probe_bin[] = {'; \
	  od -An -v -tx1 $< | sed 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '};'; \
	  echo "const unsigned int accel_probe_bin_len = $$(wc -c <$<);"; \
	} >$@

$(B)/lib/qemu/accel_probe_bin.o: $(B)/lib/qemu/accel_probe_bin.c
	$(CC) $(CFLAGS) -Wno-missing-variable-declarations -c -o $@ $<

$(B)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(B)/libvm.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libvm.a \
		$(PKG_LIBS) -lcmocka

unit: $(UNIT_BIN)

rescue: vm
	bash rescue/build-rescue --out rescue/out

# make check [JOBS=N | -jN]: e2e files N at a time (default 2);
# E2E="tests/e2e/t0003-job.sh ..." for some files only.
check: vm $(UNIT_BIN) rescue
	@bash tests/run.sh $(if $(JOBS),-j $(JOBS)) $(UNIT_BIN)

# unit tests and lint only: seconds
check-unit: vm $(UNIT_BIN)
	@E2E= bash tests/run.sh $(UNIT_BIN)

lint:
	@! grep -nE '\b(strcpy|strcat|sprintf|vsprintf|strncpy|strtok|atoi|system|popen|alloca|gets)\s*\(' \
		lib/*/*.c cmd/*.c tests/unit/*.c || { echo "banned calls above"; exit 1; }
	@bash tests/chainlint.sh tests/e2e/t*.sh || \
		{ echo "test bodies above can swallow a failure"; exit 1; }
	@echo "lint: ok"

deps:
	bash .ci/deps

demo: vm rescue
	bash tests/demo.sh

man: vm.1

# Everything lands under PREFIX (and DESTDIR); vm finds its data
# directory from where its binary is, so a tree copied elsewhere works.
install: vm
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/jobs \
		$(DESTDIR)$(DATADIR)/rescue $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(DOCDIR)/docs
	install -m 755 vm $(DESTDIR)$(BINDIR)/vm
	cp -R jobs/. $(DESTDIR)$(DATADIR)/jobs/
	install -m 755 rescue/build-rescue $(DESTDIR)$(DATADIR)/rescue/
	install -m 644 conf/images.conf $(DESTDIR)$(DATADIR)/images.conf
	cp -R rescue/guest $(DESTDIR)$(DATADIR)/rescue/
	if [ -d rescue/out ]; then cp -R rescue/out $(DESTDIR)$(DATADIR)/rescue/; fi
	install -m 644 vm.1 $(DESTDIR)$(MANDIR)/man1/vm.1
	install -m 644 vm.conf.5 $(DESTDIR)$(MANDIR)/man5/vm.conf.5
	install -m 644 README.md README.ru.md $(DESTDIR)$(DOCDIR)/
	install -m 644 docs/*.md $(DESTDIR)$(DOCDIR)/docs/
	install -m 644 conf/vm.conf $(DESTDIR)$(DOCDIR)/vm.conf.example
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(USERUNITDIR) \
		$(DESTDIR)$(COMPLETIONDIR)
	install -m 644 conf/vm.bash-completion $(DESTDIR)$(COMPLETIONDIR)/vm
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@WANTEDBY@|multi-user.target|' \
		conf/vm@.service.in >$(DESTDIR)$(UNITDIR)/vm@.service
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@WANTEDBY@|default.target|' \
		-e '/^# sandbox: begin/,/^# sandbox: end/d' \
		conf/vm@.service.in >$(DESTDIR)$(USERUNITDIR)/vm@.service
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@WANTEDBY@|multi-user.target|' \
		conf/vm-serve.service.in >$(DESTDIR)$(UNITDIR)/vm-serve.service
	install -m 644 conf/vm-serve.socket $(DESTDIR)$(UNITDIR)/vm-serve.socket
	chmod 644 $(DESTDIR)$(UNITDIR)/vm@.service \
		$(DESTDIR)$(USERUNITDIR)/vm@.service \
		$(DESTDIR)$(UNITDIR)/vm-serve.service

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/vm $(DESTDIR)$(MANDIR)/man1/vm.1 \
		$(DESTDIR)$(MANDIR)/man5/vm.conf.5
	rm -rf $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR)
	rm -f $(DESTDIR)$(UNITDIR)/vm@.service $(DESTDIR)$(USERUNITDIR)/vm@.service \
		$(DESTDIR)$(UNITDIR)/vm-serve.service $(DESTDIR)$(UNITDIR)/vm-serve.socket \
		$(DESTDIR)$(COMPLETIONDIR)/vm

clean:
	rm -rf $(B) vm

.PHONY: all unit check check-unit lint deps demo install uninstall clean rescue man FORCE
-include $(shell find $(B)/lib $(B)/cmd -name '*.d' -type f 2>/dev/null)
