# vm: drive QEMU virtual machines from one line.
#   make            build ./vm
#   make check      unit + end-to-end tests; ends with "N passed, N failed"
#   make deps       install the Debian packages to build, run and test
#   make rescue     build the rescue image into rescue/out/
#   make demo       a real pipeline end to end in a scratch directory
#   make install    PREFIX=/usr/local DESTDIR=

VERSION  := 0.1
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
DATADIR  ?= $(PREFIX)/share/vm
MANDIR   ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc

CC       ?= cc
PKGS     := libarchive libcurl inih
WITH_GUESTFS ?= $(shell pkg-config --exists libguestfs 2>/dev/null && echo 1 || echo 0)
ifeq ($(WITH_GUESTFS),1)
PKGS     += libguestfs
endif

WARN     := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wvla -Wpointer-arith -Wcast-qual \
            -Wwrite-strings
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 $(WARN) -fstack-protector-strong
CPPFLAGS += -D_FORTIFY_SOURCE=2 -D_GNU_SOURCE -DVM_VERSION='"$(VERSION)"' \
            -DVM_DATADIR='"$(DATADIR)"' -DWITH_GUESTFS=$(WITH_GUESTFS)
ifeq ($(CI),true)
CFLAGS   += -Werror
endif
ifeq ($(SANITIZE),1)
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
CPPFLAGS := $(filter-out -D_FORTIFY_SOURCE=2,$(CPPFLAGS))
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS   += $(PKG_CFLAGS)

B        := build
LIB_SRC  := $(wildcard lib/*.c)
CMD_SRC  := $(wildcard cmd/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/%.o) $(B)/lib/accel_probe_bin.o
CMD_OBJ  := $(CMD_SRC:%.c=$(B)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)

all: vm

vm: $(CMD_OBJ) $(B)/libvm.a
	$(CC) $(LDFLAGS) -o $@ $(CMD_OBJ) $(B)/libvm.a $(PKG_LIBS)

$(B)/libvm.a: $(LIB_OBJ)
	$(AR) rcs $@ $^

$(B)/%.o: %.c $(wildcard lib/*.h cmd/*.h) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -c -o $@ $<

# The KVM probe guest: a boot sector assembled here, embedded as bytes.
$(B)/lib/accel-probe.bin: lib/accel-probe.S
	@mkdir -p $(dir $@)
	$(CC) -c -o $(B)/lib/accel-probe.o $<
	ld -m elf_x86_64 -Ttext=0x7c00 --oformat binary -e _start \
		-o $@ $(B)/lib/accel-probe.o

$(B)/lib/accel_probe_bin.c: $(B)/lib/accel-probe.bin
	{ echo '/* generated from lib/accel-probe.S */'; \
	  echo 'const unsigned char accel_probe_bin[] = {'; \
	  od -An -v -tx1 $< | sed 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '};'; \
	  echo "const unsigned int accel_probe_bin_len = $$(wc -c <$<);"; \
	} >$@

$(B)/lib/accel_probe_bin.o: $(B)/lib/accel_probe_bin.c
	$(CC) $(CFLAGS) -Wno-missing-variable-declarations -c -o $@ $<

$(B)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(B)/libvm.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Ilib $(LDFLAGS) -o $@ $< $(B)/libvm.a \
		$(PKG_LIBS) -lcmocka

unit: $(UNIT_BIN)

rescue: vm
	bash rescue/build-rescue --out rescue/out

check: vm $(UNIT_BIN) rescue
	@bash tests/run.sh $(UNIT_BIN)

lint:
	@! grep -nE '\b(strcpy|strcat|sprintf|vsprintf|strncpy|strtok|atoi|system|popen|alloca|gets)\s*\(' \
		lib/*.c cmd/*.c tests/unit/*.c || { echo "banned calls above"; exit 1; }
	@bash tests/chainlint.sh tests/e2e/t*.sh || \
		{ echo "test bodies above can swallow a failure"; exit 1; }
	@echo "lint: ok"

deps:
	bash .ci/deps

demo: vm rescue
	bash tests/demo.sh

man: vm.1

install: vm
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/jobs \
		$(DESTDIR)$(DATADIR)/rescue $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(SYSCONFDIR)
	install -m 755 vm $(DESTDIR)$(BINDIR)/vm
	cp -R jobs/. $(DESTDIR)$(DATADIR)/jobs/
	install -m 755 rescue/build-rescue $(DESTDIR)$(DATADIR)/rescue/
	cp -R rescue/guest $(DESTDIR)$(DATADIR)/rescue/
	if [ -d rescue/out ]; then cp -R rescue/out $(DESTDIR)$(DATADIR)/rescue/; fi
	install -m 644 conf/vm.conf $(DESTDIR)$(SYSCONFDIR)/vm.conf.example
	install -m 644 vm.1 $(DESTDIR)$(MANDIR)/man1/vm.1

clean:
	rm -rf $(B) vm

.PHONY: all unit check lint deps demo install clean rescue man
-include $(shell find $(B)/lib $(B)/cmd -name '*.d' -type f 2>/dev/null)
