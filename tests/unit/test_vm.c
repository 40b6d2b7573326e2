/* Unit tests for lib/vm: share macros and the QEMU plan of a VM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/fsutil.h"
#include "vm/vm.h"

#include "golden.h"

/* A scratch HOSTDIR, WORKDIR, HOME and XDG_CONFIG_HOME for one test. */
struct fix {
	char *root, *host, *work, *home, *xdg;
	struct vm vm;
};

static int setup(void **state)
{
	char tmpl[] = "/tmp/vm-test-vm.XXXXXX";
	struct fix *f;

	if (!mkdtemp(tmpl))
		return -1;
	f = xcalloc(1, sizeof(*f));
	f->root = xstrdup(tmpl);
	f->host = xasprintf("%s/host", f->root);
	f->work = xasprintf("%s/work", f->root);
	f->home = xasprintf("%s/home", f->root);
	f->xdg = xasprintf("%s/config", f->root);
	if (fs_mkdir_p(f->host, 0755) || fs_mkdir_p(f->work, 0700) ||
	    fs_mkdir_p(f->home, 0755) || fs_mkdir_p(f->xdg, 0755))
		return -1;
	/* No real ~/.config/vm.defaults or OVMF choice may leak in. */
	setenv("HOME", f->home, 1);
	setenv("XDG_CONFIG_HOME", f->xdg, 1);
	unsetenv("VM_OVMF_CODE");
	unsetenv("VM_OVMF_VARS");
	vm_init(&f->vm);
	f->vm.hostdir = xstrdup(f->host);
	f->vm.workdir = xstrdup(f->work);
	f->vm.accel = "tcg";
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	vm_release(&f->vm);
	fs_rm_rf(f->root);
	free(f->root);
	free(f->host);
	free(f->work);
	free(f->home);
	free(f->xdg);
	free(f);
	unsetenv("VM_OVMF_CODE");
	return 0;
}

static void touch(const char *dir, const char *name)
{
	char *p = xasprintf("%s/%s", dir, name);

	assert_int_equal(fs_write_atomic(p, "", 0, 0644), 0);
	free(p);
}

static void put(const char *dir, const char *name, const char *text)
{
	char *p = xasprintf("%s/%s", dir, name);

	assert_int_equal(fs_write_atomic(p, text, strlen(text), 0644), 0);
	free(p);
}

static void mkdir_in(const char *dir, const char *name)
{
	char *p = xasprintf("%s/%s", dir, name);

	assert_int_equal(fs_mkdir_p(p, 0755), 0);
	free(p);
}

static void set(struct fix *f, const char *section, const char *key,
		const char *value)
{
	struct strbuf err = STRBUF_INIT;

	if (conf_set(&f->vm.conf, section, key, value, LAYER_CLI, &err))
		fail_msg("conf_set %s.%s=%s: %s", section, key, value, err.buf);
	strbuf_release(&err);
}

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}

/* vm_expand_macros(s) must give want, with *empty as given. */
static void expands(struct fix *f, const char *s, const char *want,
		    bool want_empty)
{
	bool empty = !want_empty;
	char *got = vm_expand_macros(&f->vm, s, &empty);

	assert_string_equal(got, want);
	if (empty != want_empty)
		fail_msg("expanding '%s': empty is %d", s, empty);
	free(got);
}

/* dir + "/" + name, for expected paths; caller frees. */
static char *in(const char *dir, const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static void test_expand_dirs(void **state)
{
	struct fix *f = *state;
	char *data = in(f->host, "data"), *indir = in(f->work, ".in");
	char *outdir = in(f->work, ".out");
	char *both = xasprintf("%s:%s", f->host, indir);

	expands(f, "@HOSTDIR@", f->host, false);
	expands(f, "@HOSTDIR@/data", data, false);
	expands(f, "@INDIR@", indir, false);
	expands(f, "@DATADIR@", outdir, false);
	expands(f, "@OUTDIR@", outdir, false);
	expands(f, "@HOSTDIR@:@INDIR@", both, false);
	expands(f, "/plain/path", "/plain/path", false);
	expands(f, "", "", false);
	/* Unknown macros and lone @ are kept as they are. */
	expands(f, "user@host", "user@host", false);
	expands(f, "@FOO@", "@FOO@", false);
	expands(f, "/x/@hostdir@", "/x/@hostdir@", false);
	expands(f, "@", "@", false);
	free(data);
	free(indir);
	free(outdir);
	free(both);
}

static void test_expand_without_workdir(void **state)
{
	struct fix *f = *state;
	char *indir = in(f->host, ".in"), *outdir = in(f->host, ".out");

	free(f->vm.workdir);
	f->vm.workdir = NULL;
	expands(f, "@INDIR@", indir, false);
	expands(f, "@DATADIR@", outdir, false);
	free(indir);
	free(outdir);
}

static void test_expand_media_unset(void **state)
{
	struct fix *f = *state;

	expands(f, "@MIRROR@", "", true);
	expands(f, "@MEDIA@", "", true);
	expands(f, "@MEDIA@/isos", "/isos", true);
	/* A relative mirror needs media to hang from. */
	set(f, "vm", "media_mirror", "mirror");
	expands(f, "@MIRROR@", "", true);
	set(f, "vm", "media_storage", "store");
	expands(f, "@MEDIA@", "", true);
}

static void test_expand_media_set(void **state)
{
	struct fix *f = *state;
	char *hm = in(f->home, "media"), *hmm = in(f->home, "media/mirror");
	char *hx = in(f->home, "mx");

	set(f, "vm", "media", "/srv/media");
	expands(f, "@MEDIA@", "/srv/media", false);
	/* No mirror below media configured: still empty. */
	expands(f, "@MIRROR@", "", true);
	set(f, "vm", "media_mirror", "mirror");
	expands(f, "@MIRROR@", "/srv/media/mirror", false);
	expands(f, "@MIRROR@/debian", "/srv/media/mirror/debian", false);
	set(f, "vm", "media_storage", "store");
	expands(f, "@MEDIA@", "/srv/media/store", false);
	set(f, "vm", "media_mirror", "/abs/mirror");
	expands(f, "@MIRROR@", "/abs/mirror", false);
	set(f, "vm", "media_mirror", "~/mx");
	expands(f, "@MIRROR@", hx, false);
	set(f, "vm", "media", "~/media");
	set(f, "vm", "media_storage", "");
	set(f, "vm", "media_mirror", "mirror");
	expands(f, "@MEDIA@", hm, false);
	expands(f, "@MIRROR@", hmm, false);
	free(hm);
	free(hmm);
	free(hx);
}

static void test_expand_absolute_mirror_without_media(void **state)
{
	struct fix *f = *state;

	set(f, "vm", "media_mirror", "/abs/mirror");
	expands(f, "@MIRROR@", "/abs/mirror", false);
	expands(f, "@MEDIA@", "", true);
}

/* The VM of the golden test: two disks, two shares, a forward. */
static void run_vm(struct fix *f)
{
	set(f, "vm", "name", "web1");
	set(f, "vm", "uefi", "no");
	set(f, "vm", "disks", "AHCI=30G,VIRT=10G");
	set(f, "vm", "memory", "4G");
	set(f, "vm", "cores", "4");
	set(f, "vm", "shares", "data:@HOSTDIR@/data");
	set(f, "vm", "shares", "scratch:rw:scratch");
	set(f, "vm", "forwards", "tcp::2222-:22");
	touch(f->work, "disk-0.img");
	touch(f->work, "disk-1.img");
	mkdir_in(f->host, "data");
	mkdir_in(f->host, "scratch");
}

/* The argv of a plan with the scratch dirs as @HOSTDIR@ / @WORKDIR@. */
static char *plan_text(struct fix *f, const struct vm_plan *plan)
{
	struct strvec argv = STRVEC_INIT;
	char *text;

	qemu_argv_build(&plan->q, &argv);
	text = golden_argv_text(&argv);
	strvec_clear(&argv);
	text = golden_replace(text, f->work, "@WORKDIR@");
	text = golden_replace(text, f->host, "@HOSTDIR@");
	/* the golden files are for a TMPDIR with user xattrs */
	text = golden_replace(text, "security_model=mapped-file",
			      "security_model=mapped-xattr");
	assert_null(strstr(text, f->root));
	return text;
}

static void test_plan_run(void **state)
{
	struct fix *f = *state;
	struct strbuf err = STRBUF_INIT;
	struct vm_plan plan;
	char *want, *text;
	int r;

	run_vm(f);
	put(f->host, "vm.defaults",
	    "# extra arguments for web1\n-usb -device usb-tablet\n");
	r = vm_plan_build(&f->vm, PLAN_RUN, NULL, NULL, &plan, &err);
	if (r)
		fail_msg("vm_plan_build: %d %s", r, err.buf);
	assert_string_equal(err.buf, "");

	assert_string_equal(plan.q.binary, "qemu-system-x86_64");
	assert_string_equal(plan.q.name, "web1");
	assert_string_equal(plan.q.accel, "tcg");
	assert_false(plan.q.uefi);
	assert_false(plan.q.q35);
	assert_null(plan.q.ovmf_code);
	assert_int_equal(plan.q.sockets, 1);
	assert_int_equal(plan.q.cores, 4);
	assert_int_equal(plan.q.memory_mib, 4096);
	assert_null(plan.q.cdrom);
	assert_null(plan.q.kernel);
	assert_true(plan.q.netdev);
	assert_int_equal(plan.q.spice_port, 5900);
	assert_string_equal(plan.q.spice_host, "127.0.0.1");

	assert_int_equal(plan.q.ndisks, 2);
	assert_int_equal(plan.q.disks[0].bus, BUS_AHCI);
	assert_int_equal(plan.q.disks[1].bus, BUS_VIRT);
	want = in(f->work, "disk-1.img");
	assert_string_equal(plan.q.disks[1].path, want);
	free(want);

	assert_int_equal(plan.q.nshares, 2);
	assert_string_equal(plan.q.shares[0].id, "data");
	want = in(f->host, "data");
	assert_string_equal(plan.q.shares[0].dir, want);
	free(want);
	assert_false(plan.q.shares[0].rw);
	assert_string_equal(plan.q.shares[1].id, "scratch");
	want = in(f->host, "scratch");	/* relative dirs are in HOSTDIR */
	assert_string_equal(plan.q.shares[1].dir, want);
	free(want);
	assert_true(plan.q.shares[1].rw);
	assert_int_equal(plan.q.shares[1].mapped_file,
			 !fs_has_user_xattrs(plan.q.shares[1].dir));

	assert_int_equal(plan.q.forwards->nr, 1);
	assert_string_equal(plan.q.forwards->v[0], "hostfwd=tcp::2222-:22");

	want = in(f->host, "vm.defaults");
	assert_non_null(plan.defaults_file);
	assert_string_equal(plan.defaults_file, want);
	free(want);
	assert_non_null(plan.q.extra);
	assert_int_equal(plan.q.extra->nr, 3);
	assert_string_equal(plan.q.extra->v[0], "-usb");
	assert_string_equal(plan.q.extra->v[2], "usb-tablet");

	/* QEMU's console goes to vm, which serves console.sock and logs */
	want = in(f->work, "qemu-console.sock");
	assert_string_equal(plan.q.console_sock, want);
	free(want);
	assert_null(plan.q.console_log);
	want = in(f->work, "console.sock");
	assert_string_equal(plan.console_sock, want);
	free(want);
	want = in(f->work, "console.log");
	assert_string_equal(plan.console_log, want);
	free(want);
	want = in(f->work, "qmp.sock");
	assert_string_equal(plan.q.qmp_sock, want);
	free(want);

	text = plan_text(f, &plan);
	golden_check("vm_run.args", text);
	free(text);
	vm_plan_release(&plan);
	strbuf_release(&err);
}

static void test_plan_run_cdrom(void **state)
{
	struct fix *f = *state;
	struct strbuf err = STRBUF_INIT;
	struct vm_plan plan;
	char *iso = in(f->host, "sub/../install.iso");
	char *want = in(f->host, "install.iso");

	set(f, "vm", "uefi", "no");
	touch(f->work, "disk-0.img");
	assert_int_equal(vm_plan_build(&f->vm, PLAN_RUN, iso, NULL, &plan, &err), 0);
	assert_non_null(plan.q.cdrom);
	assert_string_equal(plan.q.cdrom, want);
	assert_false(plan.q.cdrom_first);
	assert_int_equal(plan.q.ndisks, 1);
	assert_int_equal(plan.q.nshares, 0);
	vm_plan_release(&plan);
	free(iso);
	free(want);
	strbuf_release(&err);
}

static void test_plan_rescue(void **state)
{
	struct fix *f = *state;
	struct strbuf err = STRBUF_INIT;
	struct vm_plan plan;
	char *want, *text;
	int r;

	/* UEFI stays on for the VM; a kernel-booted rescue needs none. */
	set(f, "vm", "forwards", "tcp::2222-:22");
	set(f, "rescue", "forwards", "tcp::2200-:22");
	touch(f->work, "disk-0.img");
	mkdir_in(f->work, ".in");
	mkdir_in(f->work, ".out");
	put(f->host, "vm.defaults", "-usb\n");
	r = vm_plan_build(&f->vm, PLAN_RESCUE, NULL, NULL, &plan, &err);
	if (r)
		fail_msg("vm_plan_build: %d %s", r, err.buf);
	assert_string_equal(plan.q.name, "vm-rescue");
	assert_true(plan.q.q35);
	assert_false(plan.q.uefi);
	assert_int_equal(plan.q.sockets, 1);
	assert_int_equal(plan.q.cores, 2);
	assert_int_equal(plan.q.memory_mib, 1024);
	assert_int_equal(plan.q.spice_port, 0);
	/* mirror:@MIRROR@ has no mirror set up and is left out. */
	assert_int_equal(plan.q.nshares, 2);
	assert_string_equal(plan.q.shares[0].id, "in");
	want = in(f->work, ".in");
	assert_string_equal(plan.q.shares[0].dir, want);
	free(want);
	assert_false(plan.q.shares[0].rw);
	assert_string_equal(plan.q.shares[1].id, "out");
	want = in(f->work, ".out");
	assert_string_equal(plan.q.shares[1].dir, want);
	free(want);
	assert_true(plan.q.shares[1].rw);
	assert_int_equal(plan.q.shares[1].mapped_file,
			 !fs_has_user_xattrs(plan.q.shares[1].dir));
	assert_int_equal(plan.q.forwards->nr, 1);
	assert_string_equal(plan.q.forwards->v[0], "hostfwd=tcp::2200-:22");
	/* vm.defaults is for the VM, not for the rescue system. */
	assert_null(plan.q.extra);
	assert_null(plan.defaults_file);
	want = in(f->work, "rescue-console.log");
	assert_string_equal(plan.q.console_log, want);
	free(want);
	want = in(f->work, "rescue-qmp.sock");
	assert_string_equal(plan.q.qmp_sock, want);
	free(want);

	text = plan_text(f, &plan);
	golden_check("vm_rescue.args", text);
	free(text);
	vm_plan_release(&plan);
	strbuf_release(&err);
}

/* cores of the rescue plan as f's settings and host stand */
static unsigned rescue_cores_of(struct fix *f)
{
	struct strbuf err = STRBUF_INIT;
	struct vm_plan plan;
	unsigned cores;

	if (vm_plan_build(&f->vm, PLAN_RESCUE, NULL, NULL, &plan, &err))
		fail_msg("vm_plan_build: %s", err.buf);
	cores = plan.q.cores;
	vm_plan_release(&plan);
	strbuf_release(&err);
	return cores;
}

static void test_plan_rescue_cores(void **state)
{
	struct fix *f = *state;

	touch(f->work, "disk-0.img");
	mkdir_in(f->work, ".in");
	mkdir_in(f->work, ".out");
	/* TCG on 2 CPUs: one vCPU, the default not being asked for */
	f->vm.host_cpus = 2;
	assert_int_equal(rescue_cores_of(f), 1);
	/* 4 CPUs, or KVM: the setting's default, 2 */
	f->vm.host_cpus = 4;
	assert_int_equal(rescue_cores_of(f), 2);
	f->vm.host_cpus = 2;
	f->vm.accel = "kvm";
	assert_int_equal(rescue_cores_of(f), 2);
	/* asked for: as asked, under TCG too */
	f->vm.accel = "tcg";
	set(f, "rescue", "cores", "2");
	assert_int_equal(rescue_cores_of(f), 2);
	set(f, "rescue", "cores", "3");
	assert_int_equal(rescue_cores_of(f), 3);
}

static void test_plan_missing_share_dir(void **state)
{
	struct fix *f = *state;
	struct strbuf err = STRBUF_INIT;
	struct vm_plan plan;
	char *dir = in(f->host, "nope");

	set(f, "vm", "uefi", "no");
	set(f, "vm", "shares", "data:@HOSTDIR@/nope");
	touch(f->work, "disk-0.img");
	assert_int_equal(vm_plan_build(&f->vm, PLAN_RUN, NULL, NULL, &plan, &err),
			 -ENOENT);
	assert_contains(err.buf, "share data");
	assert_contains(err.buf, dir);
	assert_contains(err.buf, "does not exist");
	vm_plan_release(&plan);
	free(dir);
	strbuf_release(&err);
}

static void test_plan_share_is_a_file(void **state)
{
	struct fix *f = *state;
	struct strbuf err = STRBUF_INIT;
	struct vm_plan plan;

	set(f, "vm", "uefi", "no");
	set(f, "vm", "shares", "ok:@HOSTDIR@");
	set(f, "vm", "shares", "file:notadir");
	touch(f->work, "disk-0.img");
	touch(f->host, "notadir");
	assert_int_equal(vm_plan_build(&f->vm, PLAN_RUN, NULL, NULL, &plan, &err),
			 -ENOENT);
	assert_contains(err.buf, "share file:");
	assert_contains(err.buf, "/notadir does not exist");
	vm_plan_release(&plan);
	strbuf_release(&err);
}

static void test_plan_empty_macro_share_left_out(void **state)
{
	struct fix *f = *state;
	struct strbuf err = STRBUF_INIT;
	struct vm_plan plan;

	set(f, "vm", "uefi", "no");
	set(f, "vm", "shares", "mirror:@MIRROR@");
	set(f, "vm", "shares", "home:@HOSTDIR@");
	touch(f->work, "disk-0.img");
	assert_int_equal(vm_plan_build(&f->vm, PLAN_RUN, NULL, NULL, &plan, &err), 0);
	assert_int_equal(plan.q.nshares, 1);
	assert_string_equal(plan.q.shares[0].id, "home");
	assert_string_equal(plan.q.shares[0].dir, f->host);
	vm_plan_release(&plan);
	strbuf_release(&err);
}

static void test_plan_missing_disk(void **state)
{
	struct fix *f = *state;
	struct strbuf err = STRBUF_INIT;
	struct vm_plan plan;
	char *disk1 = in(f->work, "disk-1.img");

	set(f, "vm", "uefi", "no");
	set(f, "vm", "disks", "AHCI=30G,NVME=10G");
	touch(f->work, "disk-0.img");
	assert_int_equal(vm_plan_build(&f->vm, PLAN_RUN, NULL, NULL, &plan, &err),
			 -ENOENT);
	assert_contains(err.buf, disk1);
	assert_contains(err.buf, "is missing");
	vm_plan_release(&plan);
	strbuf_reset(&err);

	/* A dry run plans without the files. */
	f->vm.dry_run = true;
	assert_int_equal(vm_plan_build(&f->vm, PLAN_RUN, NULL, NULL, &plan, &err), 0);
	assert_int_equal(plan.q.ndisks, 2);
	assert_string_equal(plan.q.disks[1].path, disk1);
	vm_plan_release(&plan);
	free(disk1);
	strbuf_release(&err);
}

static void test_plan_no_workdir(void **state)
{
	struct fix *f = *state;
	struct strbuf err = STRBUF_INIT;
	struct vm_plan plan;

	free(f->vm.workdir);
	f->vm.workdir = NULL;
	assert_int_equal(vm_plan_build(&f->vm, PLAN_RUN, NULL, NULL, &plan, &err),
			 -ENOENT);
	assert_contains(err.buf, "no working files");
	vm_plan_release(&plan);
	strbuf_release(&err);
}

static void test_plan_images(void **state)
{
	struct fix *f = *state;
	struct strbuf err = STRBUF_INIT;
	struct vm_plan plan;
	char *tools = in(f->host, "tools.iso");
	char *extra = in(f->root, "extra.img");
	char *spec = xasprintf("VIRT=raw=%s", extra);

	set(f, "vm", "uefi", "no");
	set(f, "vm", "images", "CDROM=tools.iso");
	set(f, "vm", "images", spec);
	touch(f->work, "disk-0.img");
	touch(f->host, "tools.iso");
	touch(f->root, "extra.img");
	assert_int_equal(vm_plan_build(&f->vm, PLAN_RUN, NULL, NULL, &plan, &err), 0);
	/* images first, in their order: the boot order follows them */
	assert_int_equal(plan.q.ndisks, 3);
	assert_int_equal(plan.q.disks[0].bus, BUS_CDROM);
	assert_string_equal(plan.q.disks[0].path, tools);	/* in HOSTDIR */
	assert_null(plan.q.disks[0].format);
	assert_int_equal(plan.q.disks[1].bus, BUS_VIRT);
	assert_string_equal(plan.q.disks[1].path, extra);
	assert_string_equal(plan.q.disks[1].format, "raw");
	assert_true(str_ends_with(plan.q.disks[2].path, "/disk-0.img"));
	vm_plan_release(&plan);

	/* no disks at all: the images are the VM's disks */
	set(f, "vm", "disks", "");
	assert_int_equal(vm_plan_build(&f->vm, PLAN_RUN, NULL, NULL, &plan, &err), 0);
	assert_int_equal(plan.q.ndisks, 2);
	assert_string_equal(plan.q.disks[1].path, extra);
	vm_plan_release(&plan);

	assert_int_equal(unlink(extra), 0);
	assert_int_equal(vm_plan_build(&f->vm, PLAN_RUN, NULL, NULL, &plan, &err),
			 -ENOENT);
	assert_contains(err.buf, "image ");
	assert_contains(err.buf, extra);
	assert_contains(err.buf, "No such file or directory");
	vm_plan_release(&plan);
	free(tools);
	free(extra);
	free(spec);
	strbuf_release(&err);
}

static void test_plan_uefi(void **state)
{
	struct fix *f = *state;
	struct strbuf err = STRBUF_INIT;
	struct vm_plan plan;
	char *code = in(f->root, "OVMF_CODE.fd");
	char *vars = in(f->work, "efivars.bin");

	touch(f->work, "disk-0.img");
	touch(f->root, "OVMF_CODE.fd");
	setenv("VM_OVMF_CODE", code, 1);
	assert_int_equal(vm_plan_build(&f->vm, PLAN_RUN, NULL, NULL, &plan, &err),
			 -ENOENT);
	assert_contains(err.buf, "UEFI variables");
	assert_contains(err.buf, vars);
	vm_plan_release(&plan);
	strbuf_reset(&err);

	touch(f->work, "efivars.bin");
	assert_int_equal(vm_plan_build(&f->vm, PLAN_RUN, NULL, NULL, &plan, &err), 0);
	assert_true(plan.q.uefi);
	assert_true(plan.q.q35);
	assert_string_equal(plan.q.ovmf_code, code);
	assert_string_equal(plan.q.ovmf_vars, vars);
	vm_plan_release(&plan);

	assert_int_equal(unlink(code), 0);
	assert_int_equal(vm_plan_build(&f->vm, PLAN_RUN, NULL, NULL, &plan, &err),
			 -ENOENT);
	assert_contains(err.buf, "UEFI firmware not found");
	vm_plan_release(&plan);
	free(code);
	free(vars);
	strbuf_release(&err);
}

static void test_plan_defaults_order(void **state)
{
	struct fix *f = *state;
	struct strbuf err = STRBUF_INIT;
	struct vm_plan plan;
	char *want;

	set(f, "vm", "uefi", "no");
	touch(f->work, "disk-0.img");
	put(f->xdg, "vm.defaults", "-from-xdg\n");
	assert_int_equal(vm_plan_build(&f->vm, PLAN_RUN, NULL, NULL, &plan, &err), 0);
	want = in(f->xdg, "vm.defaults");
	assert_string_equal(plan.defaults_file, want);
	free(want);
	assert_int_equal(plan.q.extra->nr, 1);
	assert_string_equal(plan.q.extra->v[0], "-from-xdg");
	vm_plan_release(&plan);

	put(f->host, "vm.defaults", "-from-host\n");
	assert_int_equal(vm_plan_build(&f->vm, PLAN_RUN, NULL, NULL, &plan, &err), 0);
	assert_string_equal(plan.q.extra->v[0], "-from-host");
	vm_plan_release(&plan);

	put(f->work, "vm.defaults", "-from-work\n");
	assert_int_equal(vm_plan_build(&f->vm, PLAN_RUN, NULL, NULL, &plan, &err), 0);
	assert_string_equal(plan.q.extra->v[0], "-from-work");
	assert_int_equal(plan.q.extra->nr, 1);
	vm_plan_release(&plan);
	strbuf_release(&err);
}

static void test_plan_defaults_home_config(void **state)
{
	struct fix *f = *state;
	struct strbuf err = STRBUF_INIT;
	struct vm_plan plan;

	set(f, "vm", "uefi", "no");
	touch(f->work, "disk-0.img");
	mkdir_in(f->home, ".config");
	put(f->home, ".config/vm.defaults", "-from-home\n");
	unsetenv("XDG_CONFIG_HOME");
	assert_int_equal(vm_plan_build(&f->vm, PLAN_RUN, NULL, NULL, &plan, &err), 0);
	setenv("XDG_CONFIG_HOME", f->xdg, 1);
	assert_non_null(plan.q.extra);
	assert_int_equal(plan.q.extra->nr, 1);
	assert_string_equal(plan.q.extra->v[0], "-from-home");
	vm_plan_release(&plan);
	strbuf_release(&err);
}

static void test_plan_bad_defaults(void **state)
{
	struct fix *f = *state;
	struct strbuf err = STRBUF_INIT;
	struct vm_plan plan;
	char *file = in(f->host, "vm.defaults");

	set(f, "vm", "uefi", "no");
	touch(f->work, "disk-0.img");
	put(f->host, "vm.defaults", "-append 'console=ttyS0\n");
	assert_int_equal(vm_plan_build(&f->vm, PLAN_RUN, NULL, NULL, &plan, &err),
			 -EINVAL);
	assert_contains(err.buf, file);
	assert_contains(err.buf, "unterminated quote");
	vm_plan_release(&plan);
	free(file);
	strbuf_release(&err);
}

/* The options' values come into the typed settings and into the plan. */
static void test_load_conf_cli_typed(void **state)
{
	struct fix *f = *state;
	struct strbuf err = STRBUF_INIT;
	struct strvec cli = STRVEC_INIT;
	const struct vm_conf *c = &f->vm.conf;
	char *none = in(f->root, "no-system.conf");
	struct vm_plan plan;
	int r;

	setenv("VM_SYSTEM_CONFIG", none, 1);
	strvec_pushl(&cli, "--memory", "vm.memory", "1536M",
		     "--disks", "vm.disks", "AHCI=30G,NVME=10G:raw",
		     "--image", "vm.images", "CDROM=/x y.iso",
		     "--forward", "vm.forwards", "tcp::2222-:22",
		     "--forward", "vm.forwards", "udp::5353-:53",
		     "--share", "vm.shares", "data:rw:@HOSTDIR@/my data",
		     "--no-uefi", "vm.uefi", "no", NULL);
	r = vm_load_conf(&f->vm, &cli, &err);
	unsetenv("VM_SYSTEM_CONFIG");
	if (r)
		fail_msg("vm_load_conf: %d %s", r, err.buf);
	assert_true(c->memory == 1536ULL << 20);
	assert_int_equal(c->disks.nr, 2);
	assert_int_equal(c->disks.v[1].bus, BUS_NVME);
	assert_true(c->disks.v[1].size == 10ULL << 30);
	assert_string_equal(c->disks.v[1].format, "raw");
	assert_int_equal(c->images.nr, 1);
	assert_int_equal(c->images.v[0].bus, BUS_CDROM);
	assert_string_equal(c->images.v[0].path, "/x y.iso");
	assert_int_equal(c->forwards.nr, 2);
	assert_int_equal(c->forwards.v[1].proto, FWD_UDP);
	assert_int_equal(c->forwards.v[1].host_port, 5353);
	assert_int_equal(c->forwards.v[1].guest_port, 53);
	assert_int_equal(conf_forward_host_port(c, 22), 2222);
	assert_int_equal(c->shares.nr, 1);
	assert_string_equal(c->shares.v[0].id, "data");
	assert_string_equal(c->shares.v[0].dir, "@HOSTDIR@/my data");
	assert_true(c->shares.v[0].rw);

	/* The plan takes them as they are. */
	f->vm.dry_run = true;
	mkdir_in(f->host, "my data");
	r = vm_plan_build(&f->vm, PLAN_RUN, NULL, NULL, &plan, &err);
	if (r)
		fail_msg("vm_plan_build: %d %s", r, err.buf);
	assert_int_equal(plan.q.memory_mib, 1536);
	assert_int_equal(plan.q.ndisks, 3);
	assert_int_equal(plan.q.disks[0].bus, BUS_CDROM);
	assert_string_equal(plan.q.disks[0].path, "/x y.iso");
	assert_string_equal(plan.q.disks[2].format, "raw");
	assert_int_equal(plan.q.forwards->nr, 2);
	assert_string_equal(plan.q.forwards->v[1], "hostfwd=udp::5353-:53");
	assert_int_equal(plan.q.nshares, 1);
	assert_true(plan.q.shares[0].rw);
	vm_plan_release(&plan);
	f->vm.cli = NULL;
	strvec_clear(&cli);
	free(none);
	strbuf_release(&err);
}

/*
 * Each settings file is read once, however often the layers are merged:
 * a rescue profile's second pass and a job's merge read none of them
 * again; a reload reads guest.conf alone (a restore may have replaced
 * it), another directory's guest.conf is one more file.
 */
static void test_settings_read_once(void **state)
{
	struct fix *f = *state;
	struct strbuf err = STRBUF_INIT;
	struct strvec cli = STRVEC_INIT;
	struct vm_conf jc, other;
	char *sys = in(f->root, "system.conf");
	char *jobf = in(f->root, "T.rescue");
	char *odir = in(f->root, "other");
	unsigned n0;

	put(f->root, "system.conf", "[vm]\nmemory = 1G\n");
	put(f->xdg, "vm.conf", "[vm]\ncores = 2\n[rescue.big]\nmemory = 2G\n");
	put(f->host, "guest.conf", "[vm]\nname = T\nrescue = big\n");
	put(f->root, "T.rescue", "[rescue]\ncores = 3\n");
	mkdir_in(f->root, "other");
	put(f->root, "other/guest.conf", "[vm]\nname = O\n");
	setenv("VM_SYSTEM_CONFIG", sys, 1);
	strvec_pushl(&cli, "--cores", "vm.cores", "4", NULL);
	n0 = conf_files_read();
	if (vm_load_conf(&f->vm, &cli, &err))
		fail_msg("vm_load_conf: %s", err.buf);
	/* system, user, guest: the profile's second pass read nothing */
	assert_int_equal(conf_files_read() - n0, 3);
	assert_true(f->vm.conf.memory == 1ULL << 30);
	assert_int_equal(f->vm.conf.cores, 4);
	assert_true(f->vm.conf.rescue.memory == 2ULL << 30);
	/* a job's own merge: its file, and guest.conf as it was */
	conf_init(&jc);
	assert_int_equal(vm_settings_for(&f->vm, f->host, true, jobf, &jc,
					 &err), 0);
	assert_int_equal(conf_files_read() - n0, 4);
	assert_int_equal(jc.rescue.cores, 3);
	assert_true(jc.rescue.memory == 2ULL << 30);
	assert_int_equal(f->vm.conf.rescue.cores != 3, true);
	/* a reload of an unchanged guest.conf reads nothing */
	assert_int_equal(vm_reload_conf(&f->vm, &err), 0);
	assert_int_equal(conf_files_read() - n0, 4);
	/* a key set is known without reading the file back */
	assert_int_equal(vm_guest_conf_set(&f->vm, "firstboot", "no", &err),
			 0);
	assert_int_equal(vm_reload_conf(&f->vm, &err), 0);
	assert_int_equal(conf_files_read() - n0, 4);
	assert_false(f->vm.conf.firstboot);
	assert_true(f->vm.conf.memory == 1ULL << 30);
	/* guest.conf changed by another (a step before): read as it is now */
	put(f->host, "guest.conf", "[vm]\nname = T\nrescue = big\nmemory = 3G\n");
	assert_int_equal(vm_reload_conf(&f->vm, &err), 0);
	assert_int_equal(conf_files_read() - n0, 5);
	assert_true(f->vm.conf.memory == 3ULL << 30);
	/* another directory's, once however often its settings are merged */
	conf_init(&other);
	assert_int_equal(vm_settings_for(&f->vm, odir, false, NULL, &other,
					 &err), 0);
	assert_int_equal(conf_files_read() - n0, 6);
	assert_string_equal(other.name, "O");
	assert_int_equal(other.cores, 2);
	conf_release(&other);
	conf_init(&other);
	assert_int_equal(vm_settings_for(&f->vm, odir, true, NULL, &other,
					 &err), 0);
	assert_int_equal(vm_guest_settings(&f->vm, odir, &other, &err), 0);
	assert_int_equal(conf_files_read() - n0, 6);
	assert_int_equal(other.cores, 4);
	unsetenv("VM_SYSTEM_CONFIG");
	conf_release(&other);
	conf_release(&jc);
	strvec_clear(&cli);
	strbuf_release(&err);
	free(sys);
	free(jobf);
	free(odir);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_expand_dirs),
		T(test_expand_without_workdir),
		T(test_expand_media_unset),
		T(test_expand_media_set),
		T(test_expand_absolute_mirror_without_media),
		T(test_plan_run),
		T(test_plan_run_cdrom),
		T(test_plan_rescue),
		T(test_plan_rescue_cores),
		T(test_plan_missing_share_dir),
		T(test_plan_share_is_a_file),
		T(test_plan_empty_macro_share_left_out),
		T(test_plan_missing_disk),
		T(test_plan_no_workdir),
		T(test_plan_images),
		T(test_plan_uefi),
		T(test_plan_defaults_order),
		T(test_plan_defaults_home_config),
		T(test_plan_bad_defaults),
		T(test_load_conf_cli_typed),
		T(test_settings_read_once),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
