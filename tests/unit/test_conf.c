/* Unit tests for lib/conf: defaults, layers, value checks, INI files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf/conf.h"
#include "util/fsutil.h"
#include "scratch.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

static int conf_setup(void **state)
{
	struct vm_conf *c = xcalloc(1, sizeof(*c));

	conf_init(c);
	*state = c;
	return 0;
}

static int conf_teardown(void **state)
{
	conf_release(*state);
	free(*state);
	return 0;
}

/* Write text to TMPDIR/name; returns the path (caller frees). */
static char *write_file(const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return path;
}

static char *read_text(const char *path)
{
	struct strbuf sb = STRBUF_INIT;

	assert_int_equal(fs_read_file(path, 1 << 20, &sb), 0);
	return strbuf_detach(&sb);
}

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}

static void assert_lacks(const char *hay, const char *needle)
{
	if (strstr(hay, needle))
		fail_msg("\"%s\" contains \"%s\"", hay, needle);
}

/* conf_set expecting ret; err must be empty on success, set on failure. */
static void set_expect(struct vm_conf *c, const char *section,
		       const char *key, const char *value,
		       enum conf_layer layer, int ret, const char *msg)
{
	struct strbuf err = STRBUF_INIT;
	int r = conf_set(c, section, key, value, layer, &err);

	if (r != ret)
		fail_msg("[%s] %s = '%s': got %d, want %d (%s)", section, key,
			 value, r, ret, err.buf);
	if (!ret)
		assert_string_equal(err.buf, "");
	else
		assert_true(err.len > 0);
	if (msg)
		assert_contains(err.buf, msg);
	strbuf_release(&err);
}

#define SET_OK(c, s, k, v) set_expect(c, s, k, v, LAYER_CLI, 0, NULL)
#define SET_BAD(c, s, k, v, msg) \
	set_expect(c, s, k, v, LAYER_CLI, -EINVAL, msg)

static void assert_list(const struct strvec *sv, const char *const *want)
{
	size_t i;

	for (i = 0; want[i]; i++) {
		if (i >= sv->nr)
			fail_msg("list has %zu items, wanted more", sv->nr);
		assert_string_equal(sv->v[i], want[i]);
	}
	assert_int_equal(sv->nr, i);
}

/*
 * The typed lists, each item made into text again from its fields (not
 * with conf's own writer) and compared with want.
 */
static void assert_paths(const struct path_list *l, const char *const *want)
{
	struct strvec sv = STRVEC_INIT;
	size_t i;

	for (i = 0; i < l->nr; i++)
		strvec_push(&sv, l->v[i]);
	assert_list(&sv, want);
	strvec_clear(&sv);
}

static void assert_shares(const struct share_list *l, const char *const *want)
{
	struct strvec sv = STRVEC_INIT;
	size_t i;

	for (i = 0; i < l->nr; i++)
		strvec_pushf(&sv, "%s:%s%s", l->v[i].id,
			     l->v[i].rw ? "rw:" : "", l->v[i].dir);
	assert_list(&sv, want);
	strvec_clear(&sv);
}

static void assert_forwards(const struct forward_list *l,
			    const char *const *want)
{
	struct strvec sv = STRVEC_INIT;
	size_t i;

	for (i = 0; i < l->nr; i++)
		strvec_push(&sv, l->v[i].rule);
	assert_list(&sv, want);
	strvec_clear(&sv);
}

static void assert_images(const struct disk_list *l, const char *const *want)
{
	struct strvec sv = STRVEC_INIT;
	size_t i;

	for (i = 0; i < l->nr; i++)
		strvec_pushf(&sv, "%s=%s%s%s", disk_bus_name(l->v[i].bus),
			     l->v[i].format ? l->v[i].format : "",
			     l->v[i].format ? "=" : "", l->v[i].path);
	assert_list(&sv, want);
	strvec_clear(&sv);
}

static void assert_disk(const struct disk_spec *d, enum disk_bus bus,
			uint64_t size, const char *format)
{
	assert_int_equal(d->bus, bus);
	assert_true(d->size == size);
	if (format)
		assert_string_equal(d->format, format);
	else
		assert_null(d->format);
	assert_null(d->path);
}

static void test_init_defaults(void **state)
{
	static const char *const rshares[] = {
		"mirror:@MIRROR@", "in:@INDIR@", "out:rw:@DATADIR@", NULL
	};
	static const char *const keys[] = {
		"~/.ssh/id_ed25519.pub", "~/.ssh/id_rsa.pub", NULL
	};
	struct vm_conf *c = *state;
	size_t i;

	assert_string_equal(c->name, "vm");
	assert_string_equal(c->arch, "x86_64");
	assert_int_equal(c->cores, 2);
	assert_int_equal(c->sockets, 1);
	assert_true(c->memory == 2 * GiB);
	assert_int_equal(c->disks.nr, 1);
	assert_disk(&c->disks.v[0], BUS_AHCI, 30 * GiB, NULL);
	assert_true(c->uefi);
	assert_false(c->keep_cd);
	assert_true(c->netdev);
	assert_true(c->use_tmpdir);
	assert_int_equal(c->port, 5900);
	assert_string_equal(c->host, "127.0.0.1");
	assert_int_equal(c->accel, ACCEL_AUTO);
	assert_int_equal(c->timeout, 0);
	assert_string_equal(c->bootimage, "");
	assert_false(c->firstboot);
	assert_paths(&c->sshkeys, keys);
	assert_int_equal(c->images.nr, 0);
	assert_int_equal(c->forwards.nr, 0);
	assert_int_equal(c->shares.nr, 0);
	assert_string_equal(c->media, "");
	assert_string_equal(c->media_mirror, "");
	assert_string_equal(c->media_storage, "");
	assert_string_equal(c->rescue_profile, "");
	assert_string_equal(c->rescue.iso, "");
	assert_int_equal(c->rescue.cores, 2);
	assert_true(c->rescue.memory == GiB);
	assert_int_equal(c->rescue.forwards.nr, 0);
	assert_shares(&c->rescue.shares, rshares);
	assert_int_equal(c->rescue.boot, RESCUE_BOOT_KERNEL);
	assert_int_equal(c->rescue.boot_timeout, 120);
	assert_true(c->rescue.job_log_max == 16 * MiB);
	for (i = 0; i < sizeof(c->layer); i++)
		assert_int_equal(c->layer[i], LAYER_DEFAULT);
}

static void test_init_release_init(void **state)
{
	struct vm_conf c;

	(void)state;
	conf_init(&c);
	SET_OK(&c, "vm", "name", "other");
	SET_OK(&c, "vm", "shares", "a:/x");
	conf_release(&c);
	assert_null(c.name);
	conf_init(&c);
	assert_string_equal(c.name, "vm");
	assert_int_equal(c.shares.nr, 0);
	conf_release(&c);
}

static void test_set_strings_and_names(void **state)
{
	struct vm_conf *c = *state;

	SET_OK(c, "vm", "host", "0.0.0.0");
	assert_string_equal(c->host, "0.0.0.0");
	SET_OK(c, "vm", "host", "");
	assert_string_equal(c->host, "");
	SET_OK(c, "vm", "bootimage", "/iso/my install.iso");
	assert_string_equal(c->bootimage, "/iso/my install.iso");
	SET_OK(c, "vm", "media", "~/media");
	assert_string_equal(c->media, "~/media");
	SET_OK(c, "rescue", "iso", "/r/rescue.iso");
	assert_string_equal(c->rescue.iso, "/r/rescue.iso");

	SET_OK(c, "vm", "name", "web-1.example");
	assert_string_equal(c->name, "web-1.example");
	SET_BAD(c, "vm", "name", "-rf", "bad name '-rf'");
	SET_BAD(c, "vm", "name", "", "bad name ''");
	SET_BAD(c, "vm", "name", "a/b", "bad name");
	SET_BAD(c, "vm", "name", "..", "bad name");
	assert_string_equal(c->name, "web-1.example");

	SET_OK(c, "vm", "rescue", "fast");
	assert_string_equal(c->rescue_profile, "fast");
	SET_OK(c, "vm", "rescue", "");
	assert_string_equal(c->rescue_profile, "");
	SET_BAD(c, "vm", "rescue", "../x", "bad name '../x' (letters, digits, . _ -, or empty)");
	assert_string_equal(c->rescue_profile, "");
}

static void test_set_numbers(void **state)
{
	struct vm_conf *c = *state;

	SET_OK(c, "vm", "cores", "4");
	assert_int_equal(c->cores, 4);
	SET_OK(c, "vm", "cores", "1024");
	assert_int_equal(c->cores, 1024);
	SET_BAD(c, "vm", "cores", "0", "'0' is not a number from 1 to 1024");
	SET_BAD(c, "vm", "cores", "1025", "'1025' is not a number");
	SET_BAD(c, "vm", "cores", "four", "'four' is not a number");
	SET_BAD(c, "vm", "cores", "", "is not a number");
	SET_BAD(c, "vm", "cores", "-2", "is not a number");
	assert_int_equal(c->cores, 1024);
	SET_OK(c, "vm", "sockets", "64");
	assert_int_equal(c->sockets, 64);
	SET_BAD(c, "vm", "sockets", "65", "from 1 to 64");
	SET_OK(c, "rescue", "cores", "1");
	assert_int_equal(c->rescue.cores, 1);
	SET_BAD(c, "rescue", "cores", "0", "from 1 to 1024");
	assert_int_equal(c->rescue.cores, 1);
}

static void test_set_memory(void **state)
{
	struct vm_conf *c = *state;

	SET_OK(c, "vm", "memory", "4G");
	assert_true(c->memory == 4 * GiB);
	SET_OK(c, "vm", "memory", "512");	/* bare numbers are MiB */
	assert_true(c->memory == 512 * MiB);
	SET_OK(c, "vm", "memory", "1.5G");
	assert_true(c->memory == 1536 * MiB);
	SET_OK(c, "vm", "memory", "1024");
	assert_true(c->memory == GiB);
	SET_OK(c, "vm", "memory", "1T");
	assert_true(c->memory == 1ULL << 40);
	SET_OK(c, "vm", "memory", "16T");
	assert_true(c->memory == 16ULL << 40);
	SET_OK(c, "vm", "memory", "16M");
	SET_BAD(c, "vm", "memory", "15M", "bad memory size '15M'");
	SET_BAD(c, "vm", "memory", "17T", "bad memory size");
	SET_BAD(c, "vm", "memory", "lots", "at least 16M");
	SET_BAD(c, "vm", "memory", "junk", "bad memory size 'junk'");
	SET_BAD(c, "vm", "memory", "", "bad memory size");
	assert_true(c->memory == 16 * MiB);
	SET_OK(c, "rescue", "memory", "768M");
	assert_true(c->rescue.memory == 768 * MiB);
	SET_BAD(c, "rescue", "memory", "1K", "bad memory size");
	assert_true(c->rescue.memory == 768 * MiB);
}

static void collect(const char *section, const char *key, const char *value,
		    void *data)
{
	strvec_pushf(data, "%s.%s=%s", section, key, value);
}

/* The text conf_each gives for section.key; caller frees. */
static char *text_of(const struct vm_conf *c, const char *section,
		     const char *key)
{
	struct strvec sv = STRVEC_INIT;
	char *want = xasprintf("%s.%s=", section, key), *got = NULL;
	size_t i;

	conf_each(c, collect, &sv);
	for (i = 0; i < sv.nr && !got; i++)
		if (str_starts_with(sv.v[i], want))
			got = xstrdup(sv.v[i] + strlen(want));
	strvec_clear(&sv);
	free(want);
	if (!got)
		fail_msg("conf_each gave no %s.%s", section, key);
	return got;
}

/* Memory is text again only for jobs and guest.conf: exact, shortest. */
static void test_memory_text_round_trip(void **state)
{
	static const struct {
		const char *in, *out;
		uint64_t bytes;
	} mem[] = {
		{ "2G", "2G", 2 * GiB },
		{ "1024", "1G", GiB },
		{ "2048M", "2G", 2 * GiB },
		{ "1536M", "1536M", 1536 * MiB },
		{ "1.5G", "1536M", 1536 * MiB },
		{ "4G", "4G", 4 * GiB },
		{ "1T", "1T", 1ULL << 40 },
		{ "1000M", "1000M", 1000 * MiB },
		{ "512", "512M", 512 * MiB },
		{ "16777216K", "16G", 16 * GiB },
		{ "1.0001G", "1073849198B", 1073849198 },
	};
	struct vm_conf *c = *state;
	size_t i;

	for (i = 0; i < sizeof(mem) / sizeof(mem[0]); i++) {
		char *text;

		SET_OK(c, "vm", "memory", mem[i].in);
		assert_true(c->memory == mem[i].bytes);
		text = text_of(c, "vm", "memory");
		assert_string_equal(text, mem[i].out);
		/* What was written reads back to the same number. */
		SET_OK(c, "rescue", "memory", text);
		free(text);
		assert_true(c->rescue.memory == mem[i].bytes);
		text = text_of(c, "rescue", "memory");
		assert_string_equal(text, mem[i].out);
		free(text);
	}
}

static void test_set_bools(void **state)
{
	static const char *const keys[] = { "uefi", "keep_cd", "netdev",
					    "use_tmpdir", "firstboot" };
	struct vm_conf *c = *state;
	size_t i;

	SET_OK(c, "vm", "uefi", "no");
	assert_false(c->uefi);
	SET_OK(c, "vm", "uefi", "ON");
	assert_true(c->uefi);
	SET_OK(c, "vm", "keep_cd", "true");
	assert_true(c->keep_cd);
	SET_OK(c, "vm", "netdev", "0");
	assert_false(c->netdev);
	SET_OK(c, "vm", "use_tmpdir", "off");
	assert_false(c->use_tmpdir);
	SET_OK(c, "vm", "firstboot", "yes");
	assert_true(c->firstboot);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		SET_BAD(c, "vm", keys[i], "maybe", "'maybe' is not yes or no");
	SET_BAD(c, "vm", "uefi", "", "is not yes or no");
	assert_true(c->uefi);
	assert_true(c->firstboot);
}

static void test_set_port(void **state)
{
	struct vm_conf *c = *state;

	SET_OK(c, "vm", "port", "5901");
	assert_int_equal(c->port, 5901);
	SET_OK(c, "vm", "port", "65535");
	assert_int_equal(c->port, 65535);
	SET_OK(c, "vm", "port", "");
	assert_int_equal(c->port, 0);
	SET_BAD(c, "vm", "port", "0", "bad port '0'");
	SET_BAD(c, "vm", "port", "65536", "1 to 65535");
	SET_BAD(c, "vm", "port", "spice", "bad port");
	assert_int_equal(c->port, 0);
}

static void test_set_accel_and_boot(void **state)
{
	struct vm_conf *c = *state;

	SET_OK(c, "vm", "accel", "kvm");
	assert_int_equal(c->accel, ACCEL_KVM);
	SET_OK(c, "vm", "accel", "tcg");
	assert_int_equal(c->accel, ACCEL_TCG);
	SET_OK(c, "vm", "accel", "auto");
	assert_int_equal(c->accel, ACCEL_AUTO);
	SET_BAD(c, "vm", "accel", "xen", "'xen' is not auto, kvm or tcg");
	SET_BAD(c, "vm", "accel", "KVM", "is not auto, kvm or tcg");
	assert_int_equal(c->accel, ACCEL_AUTO);

	SET_OK(c, "rescue", "boot", "cdrom");
	assert_int_equal(c->rescue.boot, RESCUE_BOOT_CDROM);
	SET_OK(c, "rescue", "boot", "kernel");
	assert_int_equal(c->rescue.boot, RESCUE_BOOT_KERNEL);
	SET_BAD(c, "rescue", "boot", "pxe", "'pxe' is not kernel or cdrom");
	assert_int_equal(c->rescue.boot, RESCUE_BOOT_KERNEL);
}

static bool has(const struct strvec *sv, const char *s);

static void test_set_ready(void **state)
{
	static const char *const bad[] = { "tcp:0", "tcp:65536", "tcp:",
					   "tcp:80x", "http", "tcp", "SSH" };
	struct vm_conf *c = *state;
	struct strvec sv = STRVEC_INIT;
	size_t i;

	assert_int_equal(c->ready.mode, READY_AUTO);
	SET_OK(c, "vm", "ready", "tcp:8080");
	assert_int_equal(c->ready.mode, READY_TCP);
	assert_int_equal(c->ready.port, 8080);
	conf_each(c, collect, &sv);
	assert_true(has(&sv, "vm.ready=tcp:8080"));
	strvec_clear(&sv);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		SET_BAD(c, "vm", "ready", bad[i],
			"is not auto, ssh, agent or tcp:PORT (the guest's port");
	SET_BAD(c, "vm", "ready", "tcp:0", "'tcp:0' is not auto");
	assert_int_equal(c->ready.mode, READY_TCP);
	assert_int_equal(c->ready.port, 8080);
	SET_OK(c, "vm", "ready", "agent");
	assert_int_equal(c->ready.mode, READY_AGENT);
	assert_int_equal(c->ready.port, 0);
	SET_OK(c, "vm", "ready", "ssh");
	assert_int_equal(c->ready.mode, READY_SSH);
	conf_each(c, collect, &sv);
	assert_true(has(&sv, "vm.ready=ssh"));
	strvec_clear(&sv);
	SET_OK(c, "vm", "initialize_timeout", "2m");
	assert_int_equal(c->initialize_timeout, 120);
}

static void test_set_durations(void **state)
{
	struct vm_conf *c = *state;

	SET_OK(c, "vm", "timeout", "90");
	assert_int_equal(c->timeout, 90);
	SET_OK(c, "vm", "timeout", "45s");
	assert_int_equal(c->timeout, 45);
	SET_OK(c, "vm", "timeout", "5m");
	assert_int_equal(c->timeout, 300);
	SET_OK(c, "vm", "timeout", "2h");
	assert_int_equal(c->timeout, 7200);
	SET_OK(c, "vm", "timeout", "720h");
	assert_int_equal(c->timeout, 30 * 86400);
	SET_OK(c, "vm", "timeout", "0");
	assert_int_equal(c->timeout, 0);
	SET_BAD(c, "vm", "timeout", "721h", "bad duration '721h'");
	SET_BAD(c, "vm", "timeout", "h", "bad duration");
	SET_BAD(c, "vm", "timeout", "1d", "seconds, or with s, m, h");
	SET_BAD(c, "vm", "timeout", "-5", "bad duration");
	SET_BAD(c, "vm", "timeout", "", "bad duration");
	SET_BAD(c, "vm", "timeout", "1.5h", "bad duration");
	assert_int_equal(c->timeout, 0);
	SET_OK(c, "rescue", "boot_timeout", "10m");
	assert_int_equal(c->rescue.boot_timeout, 600);
	/* The rescue guest needs at least a second to start. */
	SET_BAD(c, "rescue", "boot_timeout", "0", "bad duration '0'");
	assert_int_equal(c->rescue.boot_timeout, 600);
	/* the cap on job.log: a size, always set, sane bounds */
	SET_OK(c, "rescue", "job_log_max", "64K");
	assert_true(c->rescue.job_log_max == 64 * 1024);
	SET_OK(c, "rescue", "job_log_max", "2");
	assert_true(c->rescue.job_log_max == 2 * MiB);
	SET_BAD(c, "rescue", "job_log_max", "0", "bad size '0'");
	SET_BAD(c, "rescue", "job_log_max", "", "bad size");
	SET_BAD(c, "rescue", "job_log_max", "100B", "from 4K to 1T");
	SET_BAD(c, "rescue", "job_log_max", "2T", "from 4K to 1T");
	SET_BAD(c, "rescue", "job_log_max", "lots", "bad size");
	assert_true(c->rescue.job_log_max == 2 * MiB);
}

static void test_set_disks_and_images(void **state)
{
	static const char *const imgs[] = { "VIRT=raw=/x.img", "CDROM=/a.iso",
					    NULL };
	struct vm_conf *c = *state;

	char *text, *many;

	SET_OK(c, "vm", "disks", "AHCI=30G,NVME=10G");
	assert_int_equal(c->disks.nr, 2);
	assert_disk(&c->disks.v[0], BUS_AHCI, 30 * GiB, NULL);
	assert_disk(&c->disks.v[1], BUS_NVME, 10 * GiB, NULL);
	text = text_of(c, "vm", "disks");
	assert_string_equal(text, "AHCI=30G,NVME=10G");
	free(text);
	SET_BAD(c, "vm", "disks", "FOO=1G", "'FOO=1G' is not TYPE=SIZE");
	SET_BAD(c, "vm", "disks", "AHCI=0", "bad disk size '0'");
	SET_BAD(c, "vm", "disks", "AHCI=1G,NVME=1G:bogus",
		"unknown disk format 'bogus'");
	assert_int_equal(c->disks.nr, 2);
	assert_disk(&c->disks.v[0], BUS_AHCI, 30 * GiB, NULL);
	assert_disk(&c->disks.v[1], BUS_NVME, 10 * GiB, NULL);

	/* Written back with upper-case buses, exact units, formats. */
	SET_OK(c, "vm", "disks", "scsi=1.5G:raw,Virt=2,AHCI=512M:qcow2");
	assert_int_equal(c->disks.nr, 3);
	assert_disk(&c->disks.v[0], BUS_SCSI, 1536ULL << 20, "raw");
	assert_disk(&c->disks.v[1], BUS_VIRT, 2 * GiB, NULL);
	assert_disk(&c->disks.v[2], BUS_AHCI, 512ULL << 20, "qcow2");
	text = text_of(c, "vm", "disks");
	assert_string_equal(text, "SCSI=1536M:raw,VIRT=2G,AHCI=512M:qcow2");
	free(text);

	/* 16 x "AHCI=1.5G" fits; 16 x "AHCI=1536M" would not read back. */
	many = xasprintf("%s", "AHCI=1.5G");
	while (strlen(many) < 16 * 10 - 1) {
		char *more = xasprintf("%s,AHCI=1.5G", many);

		free(many);
		many = more;
	}
	SET_BAD(c, "vm", "disks", many, "too long when written back");
	free(many);
	assert_int_equal(c->disks.nr, 3);

	/* no disks: a VM whose disks are its images (-D '' -i) */
	SET_OK(c, "vm", "disks", "");
	assert_int_equal(c->disks.nr, 0);
	text = text_of(c, "vm", "disks");
	assert_string_equal(text, "");
	free(text);

	SET_OK(c, "vm", "images", "VIRT=raw=/x.img");
	SET_OK(c, "vm", "images", "CDROM=/a.iso");
	assert_images(&c->images, imgs);
	SET_BAD(c, "vm", "images", "VIRT=bogus=/x",
		"unknown image format 'bogus'");
	SET_BAD(c, "vm", "images", "/x.img", "is not TYPE=[FMT=]PATH");
	assert_images(&c->images, imgs);
}

static void test_unknown_key_and_section(void **state)
{
	struct vm_conf *c = *state;

	set_expect(c, "vm", "bogus", "1", LAYER_CLI, -ENOENT,
		   "unknown key 'bogus' in [vm]");
	set_expect(c, "rescue", "name", "x", LAYER_CLI, -ENOENT,
		   "unknown key 'name' in [rescue]");
	set_expect(c, "network", "mode", "x", LAYER_CLI, -ENOENT,
		   "unknown section [network]");
	set_expect(c, "VM", "cores", "4", LAYER_CLI, -ENOENT,
		   "unknown section [VM]");
	set_expect(c, "rescue.fast", "bogus", "1", LAYER_CLI, -ENOENT,
		   "unknown key 'bogus' in [rescue.fast]");
	set_expect(c, "rescue.-x", "cores", "1", LAYER_CLI, -ENOENT,
		   "bad rescue profile name '-x'");
	set_expect(c, "rescue.", "cores", "1", LAYER_CLI, -ENOENT,
		   "bad rescue profile name ''");
	assert_int_equal(c->cores, 2);
	assert_int_equal(c->rescue.cores, 2);
}

static void test_list_append_replace_reset(void **state)
{
	static const char *const one[] = { "~/k1.pub", NULL };
	static const char *const two[] = { "~/k1.pub", "~/k2.pub", NULL };
	static const char *const three[] = { "~/k3.pub", NULL };
	static const char *const four[] = { "~/k4.pub", NULL };
	struct vm_conf *c = *state;

	assert_int_equal(conf_layer_of(c, "vm", "sshkeys"), LAYER_DEFAULT);
	/* A new layer replaces the defaults... */
	set_expect(c, "vm", "sshkeys", "~/k1.pub", LAYER_SYSTEM, 0, NULL);
	assert_int_equal(conf_layer_of(c, "vm", "sshkeys"), LAYER_SYSTEM);
	assert_paths(&c->sshkeys, one);
	/* ...repeated values within it append... */
	set_expect(c, "vm", "sshkeys", "~/k2.pub", LAYER_SYSTEM, 0, NULL);
	assert_paths(&c->sshkeys, two);
	/* ...a higher layer replaces again. */
	set_expect(c, "vm", "sshkeys", "~/k3.pub", LAYER_USER, 0, NULL);
	assert_paths(&c->sshkeys, three);
	/* An empty value resets, later values of the layer append. */
	set_expect(c, "vm", "sshkeys", "", LAYER_USER, 0, NULL);
	assert_int_equal(c->sshkeys.nr, 0);
	set_expect(c, "vm", "sshkeys", "~/k4.pub", LAYER_USER, 0, NULL);
	assert_paths(&c->sshkeys, four);
	/* A lower layer no longer changes it. */
	set_expect(c, "vm", "sshkeys", "~/k5.pub", LAYER_SYSTEM, 0, NULL);
	assert_paths(&c->sshkeys, four);
	assert_int_equal(conf_layer_of(c, "vm", "sshkeys"), LAYER_USER);
	assert_int_equal(conf_layer_of(c, "rescue", "cores"), LAYER_DEFAULT);
	assert_int_equal(conf_layer_of(c, "vm", "nokey"), -EINVAL);
}

static void test_list_reset_at_new_layer_with_empty(void **state)
{
	struct vm_conf *c = *state;

	assert_int_equal(c->rescue.shares.nr, 3);
	set_expect(c, "rescue", "shares", "", LAYER_USER, 0, NULL);
	assert_int_equal(c->rescue.shares.nr, 0);
	set_expect(c, "rescue", "shares", "x:/x", LAYER_GUEST, 0, NULL);
	assert_int_equal(c->rescue.shares.nr, 1);
	assert_string_equal(c->rescue.shares.v[0].id, "x");
	assert_string_equal(c->rescue.shares.v[0].dir, "/x");
	assert_false(c->rescue.shares.v[0].rw);
}

static void test_list_files_split_cli_does_not(void **state)
{
	static const char *const file[] = { "a:/x", "b:rw:/y z", NULL };
	static const char *const cli[] = { "c:/p q", NULL };
	struct vm_conf *c = *state;

	set_expect(c, "vm", "shares", "a:/x 'b:rw:/y z'", LAYER_SYSTEM, 0,
		   NULL);
	assert_shares(&c->shares, file);
	/* The command line gives one item, spaces and all. */
	set_expect(c, "vm", "shares", "c:/p q", LAYER_CLI, 0, NULL);
	assert_shares(&c->shares, cli);
	/* A quote left open is an error (no item splits off before it). */
	set_expect(c, "vm", "forwards", "'udp::2-:2", LAYER_GUEST, -EINVAL,
		   "unterminated quote in ''udp::2-:2'");
	assert_int_equal(c->forwards.nr, 0);
}

static void test_list_bad_item_changes_nothing(void **state)
{
	static const char *const sys[] = { "a:/a", "b:rw:/b", NULL };
	static const char *const user[] = { "d:/d", NULL };
	static const char *const cli[] = { "d:/d", "e:/e", NULL };
	struct vm_conf *c = *state;
	char *quotes;

	set_expect(c, "vm", "shares", "a:/a b:rw:/b", LAYER_SYSTEM, 0, NULL);
	assert_shares(&c->shares, sys);
	/* Within the layer: the good item before the bad one stays out. */
	set_expect(c, "vm", "shares", "c:/c nocolon", LAYER_SYSTEM, -EINVAL,
		   "'nocolon' is not ID:[rw:]DIR");
	assert_shares(&c->shares, sys);
	/* From a new layer: the older list is not emptied either... */
	set_expect(c, "vm", "shares", "d:/d -x:/x", LAYER_USER, -EINVAL,
		   "bad share id '-x'");
	assert_shares(&c->shares, sys);
	set_expect(c, "vm", "shares", "'d:/d", LAYER_USER, -EINVAL,
		   "unterminated quote");
	assert_shares(&c->shares, sys);
	/* ...and the new layer's first good value still replaces it. */
	set_expect(c, "vm", "shares", "d:/d", LAYER_USER, 0, NULL);
	assert_shares(&c->shares, user);
	set_expect(c, "vm", "shares", "d:/d", LAYER_CLI, 0, NULL);
	set_expect(c, "vm", "shares", "e:/e", LAYER_CLI, 0, NULL);
	set_expect(c, "vm", "shares", "f", LAYER_CLI, -EINVAL, "is not ID");
	assert_shares(&c->shares, cli);

	SET_OK(c, "vm", "forwards", "tcp::2222-:22");
	SET_BAD(c, "vm", "forwards", "tcp:5555", "bad forward");
	assert_int_equal(c->forwards.nr, 1);
	SET_OK(c, "vm", "images", "CDROM=/a.iso");
	SET_BAD(c, "vm", "images", "CDROM=", "names no image file");
	assert_int_equal(c->images.nr, 1);

	/* Every quote takes four characters back in guest.conf. */
	quotes = xasprintf("q:/%0*d", 60, 0);
	memset(quotes + 3, '\'', 60);
	SET_BAD(c, "vm", "shares", quotes, "too long when written back");
	free(quotes);
	assert_shares(&c->shares, cli);
}

static void test_lower_layer_never_overrides(void **state)
{
	static const char *const cli[] = { "data:/cli", NULL };
	struct vm_conf *c = *state;

	set_expect(c, "vm", "cores", "4", LAYER_CLI, 0, NULL);
	set_expect(c, "vm", "cores", "8", LAYER_SYSTEM, 0, NULL);
	assert_int_equal(c->cores, 4);
	set_expect(c, "vm", "cores", "8", LAYER_GUEST, 0, NULL);
	assert_int_equal(c->cores, 4);
	/* A bad value is an error even where it would not apply. */
	set_expect(c, "vm", "cores", "lots", LAYER_SYSTEM, -EINVAL,
		   "'lots' is not a number");
	assert_int_equal(c->cores, 4);
	set_expect(c, "vm", "memory", "8G", LAYER_CLI, 0, NULL);
	set_expect(c, "vm", "memory", "1M", LAYER_USER, -EINVAL,
		   "bad memory size");
	set_expect(c, "vm", "memory", "1G", LAYER_USER, 0, NULL);
	assert_true(c->memory == 8 * GiB);
	set_expect(c, "vm", "uefi", "no", LAYER_CLI, 0, NULL);
	set_expect(c, "vm", "uefi", "yes", LAYER_GUEST, 0, NULL);
	assert_false(c->uefi);

	set_expect(c, "vm", "shares", "data:/cli", LAYER_CLI, 0, NULL);
	set_expect(c, "vm", "shares", "other:/sys", LAYER_SYSTEM, 0, NULL);
	set_expect(c, "vm", "shares", "", LAYER_SYSTEM, 0, NULL);
	assert_shares(&c->shares, cli);
	set_expect(c, "vm", "shares", "no-colon", LAYER_SYSTEM, -EINVAL,
		   "'no-colon' is not ID:[rw:]DIR");
	assert_shares(&c->shares, cli);

	/* The same layer again does replace a scalar. */
	set_expect(c, "vm", "cores", "6", LAYER_CLI, 0, NULL);
	assert_int_equal(c->cores, 6);
	/* A higher layer than the last one, too. */
	set_expect(c, "vm", "sockets", "2", LAYER_SYSTEM, 0, NULL);
	set_expect(c, "vm", "sockets", "3", LAYER_USER, 0, NULL);
	assert_int_equal(c->sockets, 3);
}

static void test_forwards(void **state)
{
	static const char *const want[] = {
		"hostfwd=tcp::5555-:22",
		"hostfwd=udp::6000-:6000",
		"hostfwd=tcp:127.0.0.1:8080-:80",
		"guestfwd=tcp:10.0.2.100:80-tcp:127.0.0.1:8080",
		NULL
	};
	static const char *const bad[] = {
		"garbage", "tcp:5555", "http::80-:80", "hostfwd=garbage-x",
		"tcp::1-:2 x", "tcp::1-:2\tx", "", "-", "hostfwd=",
		/* ports are 1 to 65535, in plain decimal */
		"tcp::0-:22", "tcp::65536-:22", "tcp::2222-:0", "tcp::022-:22",
		"tcp::0x16-:22", "tcp::-:22", "tcp::2222-:", "tcp::2222-",
		"tcp::x-:22", "udp::1-:2:3", "tcp:1.2.3.4-:22",
		"tcp:[::1:2222-:22", "tcp:[::1]2222-:22", "guestfwd=tcp:x",
	};
	struct vm_conf *c = *state;
	size_t i;

	SET_OK(c, "vm", "forwards", "tcp::5555-:22");
	SET_OK(c, "vm", "forwards", "hostfwd=udp::6000-:6000");
	SET_OK(c, "vm", "forwards", "tcp:127.0.0.1:8080-:80");
	SET_OK(c, "vm", "forwards", "guestfwd=tcp:10.0.2.100:80-tcp:127.0.0.1:8080");
	assert_forwards(&c->forwards, want);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct strbuf err = STRBUF_INIT;
		int r;

		if (!*bad[i])
			continue;	/* empty resets the list */
		r = conf_set(c, "vm", "forwards", bad[i], LAYER_CLI, &err);
		if (r != -EINVAL)
			fail_msg("forward '%s' accepted", bad[i]);
		assert_contains(err.buf, "bad forward '");
		assert_contains(err.buf, "(use e.g. tcp::5555-:22)");
		strbuf_release(&err);
	}
	assert_forwards(&c->forwards, want);
	SET_OK(c, "rescue", "forwards", "tcp::2222-:22");
	assert_int_equal(c->rescue.forwards.nr, 1);
	assert_string_equal(c->rescue.forwards.v[0].rule,
			    "hostfwd=tcp::2222-:22");
	SET_OK(c, "vm", "forwards", "");
	assert_int_equal(c->forwards.nr, 0);
}

static void assert_hostfwd(const struct forward_spec *f, const char *rule,
			   enum fwd_proto proto, const char *host_addr,
			   unsigned host_port, const char *guest_addr,
			   unsigned guest_port)
{
	assert_string_equal(f->rule, rule);
	assert_false(f->guestfwd);
	assert_int_equal(f->proto, proto);
	assert_string_equal(f->host_addr, host_addr);
	assert_int_equal(f->host_port, host_port);
	assert_string_equal(f->guest_addr, guest_addr);
	assert_int_equal(f->guest_port, guest_port);
}

static void test_forward_parse(void **state)
{
	struct strbuf err = STRBUF_INIT;
	struct forward_spec f;

	(void)state;
	assert_int_equal(forward_parse("tcp::5555-:22", &f, &err), 0);
	assert_hostfwd(&f, "hostfwd=tcp::5555-:22", FWD_TCP, "", 5555, "", 22);
	forward_spec_release(&f);
	assert_null(f.rule);

	assert_int_equal(forward_parse("hostfwd=udp::6000-:6000", &f, &err), 0);
	assert_hostfwd(&f, "hostfwd=udp::6000-:6000", FWD_UDP, "", 6000, "",
		       6000);
	forward_spec_release(&f);

	assert_int_equal(forward_parse("tcp:127.0.0.1:8080-10.0.2.15:80", &f,
				       &err), 0);
	assert_hostfwd(&f, "hostfwd=tcp:127.0.0.1:8080-10.0.2.15:80", FWD_TCP,
		       "127.0.0.1", 8080, "10.0.2.15", 80);
	forward_spec_release(&f);

	assert_int_equal(forward_parse("tcp::1-:65535", &f, &err), 0);
	assert_hostfwd(&f, "hostfwd=tcp::1-:65535", FWD_TCP, "", 1, "", 65535);
	forward_spec_release(&f);

	/* IPv6 in brackets; the rule keeps them, the parts do not. */
	assert_int_equal(forward_parse("tcp:[::1]:2222-[fec0::15]:22", &f,
				       &err), 0);
	assert_hostfwd(&f, "hostfwd=tcp:[::1]:2222-[fec0::15]:22", FWD_TCP,
		       "::1", 2222, "fec0::15", 22);
	forward_spec_release(&f);

	/* guestfwd keeps its text alone. */
	assert_int_equal(forward_parse("guestfwd=tcp:10.0.2.100:80-"
				       "tcp:127.0.0.1:8080", &f, &err), 0);
	assert_string_equal(f.rule,
			    "guestfwd=tcp:10.0.2.100:80-tcp:127.0.0.1:8080");
	assert_true(f.guestfwd);
	assert_null(f.host_addr);
	assert_null(f.guest_addr);
	assert_int_equal(f.host_port, 0);
	assert_int_equal(f.guest_port, 0);
	forward_spec_release(&f);
	assert_string_equal(err.buf, "");

	assert_int_equal(forward_parse("tcp::2222-:0", &f, &err), -EINVAL);
	assert_string_equal(err.buf,
			    "bad forward 'tcp::2222-:0' (use e.g. tcp::5555-:22)");
	assert_null(f.rule);
	assert_null(f.host_addr);
	assert_null(f.guest_addr);
	strbuf_release(&err);
}

static void test_forward_host_port(void **state)
{
	struct vm_conf *c = *state;

	assert_int_equal(conf_forward_host_port(c, 22), 0);
	SET_OK(c, "vm", "forwards", "udp::5000-:22");
	SET_OK(c, "vm", "forwards",
	       "guestfwd=tcp:10.0.2.100:22-tcp:127.0.0.1:22");
	assert_int_equal(conf_forward_host_port(c, 22), 0);
	SET_OK(c, "vm", "forwards", "tcp::8080-:80");
	SET_OK(c, "vm", "forwards", "tcp:127.0.0.1:2222-:22");
	SET_OK(c, "vm", "forwards", "tcp::3333-:22");
	assert_int_equal(conf_forward_host_port(c, 22), 2222);
	assert_int_equal(conf_forward_host_port(c, 80), 8080);
	assert_int_equal(conf_forward_host_port(c, 443), 0);
	/* The rescue's forwards are not the VM's. */
	SET_OK(c, "rescue", "forwards", "tcp::4444-:443");
	assert_int_equal(conf_forward_host_port(c, 443), 0);
	SET_OK(c, "vm", "forwards", "");
	assert_int_equal(conf_forward_host_port(c, 22), 0);
}

static void test_share_parse(void **state)
{
	struct strbuf err = STRBUF_INIT;
	struct share_spec s;
	char id31[40], id32[40];

	(void)state;
	assert_int_equal(share_parse("data:/srv/data", &s, &err), 0);
	assert_string_equal(s.id, "data");
	assert_string_equal(s.dir, "/srv/data");
	assert_false(s.rw);
	share_spec_release(&s);
	assert_null(s.id);

	assert_int_equal(share_parse("out:rw:@DATADIR@", &s, &err), 0);
	assert_string_equal(s.id, "out");
	assert_string_equal(s.dir, "@DATADIR@");
	assert_true(s.rw);
	share_spec_release(&s);

	assert_int_equal(share_parse("in:ro:rel/dir", &s, &err), 0);
	assert_string_equal(s.dir, "rel/dir");
	assert_false(s.rw);
	share_spec_release(&s);

	/* Only the first colon ends the id. */
	assert_int_equal(share_parse("x:/a:b c", &s, &err), 0);
	assert_string_equal(s.id, "x");
	assert_string_equal(s.dir, "/a:b c");
	share_spec_release(&s);
	assert_string_equal(err.buf, "");

	assert_int_equal(share_parse("nocolon", &s, &err), -EINVAL);
	assert_contains(err.buf, "'nocolon' is not ID:[rw:]DIR");
	assert_null(s.id);
	strbuf_reset(&err);
	assert_int_equal(share_parse(":/srv", &s, &err), -EINVAL);
	assert_contains(err.buf, "is not ID:[rw:]DIR");
	strbuf_reset(&err);
	assert_int_equal(share_parse("bad id:/srv", &s, &err), -EINVAL);
	assert_contains(err.buf, "bad share id 'bad id'");
	assert_null(s.id);
	strbuf_reset(&err);
	assert_int_equal(share_parse("-x:/srv", &s, &err), -EINVAL);
	assert_contains(err.buf, "bad share id '-x'");
	strbuf_reset(&err);
	assert_int_equal(share_parse("x:rw:", &s, &err), -EINVAL);
	assert_contains(err.buf, "share 'x' names no directory");
	assert_null(s.id);
	strbuf_reset(&err);
	assert_int_equal(share_parse("x:", &s, &err), -EINVAL);
	assert_contains(err.buf, "names no directory");
	strbuf_reset(&err);

	memset(id31, 'i', 31);
	id31[31] = '\0';
	memset(id32, 'i', 32);
	id32[32] = '\0';
	{
		char *ok = xasprintf("%s:/d", id31), *no = xasprintf("%s:/d",
								     id32);

		assert_int_equal(share_parse(ok, &s, &err), 0);
		share_spec_release(&s);
		assert_int_equal(share_parse(no, &s, &err), -EINVAL);
		assert_contains(err.buf, "at most 31");
		free(ok);
		free(no);
	}
	strbuf_release(&err);
}

static void test_disks_parse(void **state)
{
	struct strbuf err = STRBUF_INIT;
	struct disk_spec *d = NULL;
	int n;

	(void)state;
	n = disks_parse("AHCI=30G,NVME=10G", &d, &err);
	assert_int_equal(n, 2);
	assert_non_null(d);
	assert_int_equal(d[0].bus, BUS_AHCI);
	assert_true(d[0].size == 30 * GiB);
	assert_null(d[0].format);
	assert_null(d[0].path);
	assert_int_equal(d[1].bus, BUS_NVME);
	assert_true(d[1].size == 10 * GiB);
	disk_specs_free(d, n);

	assert_int_equal(disks_parse("", &d, &err), 0);
	assert_null(d);

	n = disks_parse("scsi=512M,Virt=2,AHCI=1.5G", &d, &err);
	assert_int_equal(n, 3);
	assert_int_equal(d[0].bus, BUS_SCSI);
	assert_true(d[0].size == 512ULL << 20);
	assert_int_equal(d[1].bus, BUS_VIRT);
	assert_true(d[1].size == 2 * GiB);	/* bare numbers are GiB */
	assert_true(d[2].size == 3 * GiB / 2);
	disk_specs_free(d, n);
	assert_string_equal(err.buf, "");
}

static void test_disks_parse_rejects(void **state)
{
	static const struct {
		const char *spec, *msg;
	} bad[] = {
		{ "FOO=1G", "'FOO=1G' is not TYPE=SIZE" },
		{ "AHCI=", "bad disk size ''" },
		{ "AHCI=0", "bad disk size '0'" },
		{ "AHCI=512K", "at least 1M" },
		{ "AHCI=big", "bad disk size 'big'" },
		{ "AHCI", "'AHCI' is not TYPE=SIZE" },
		{ "=30G", "is not TYPE=SIZE" },
		{ "CDROM=1G", "'CDROM=1G' is not TYPE=SIZE" },
		{ "AHCI=30G,,NVME=1G", "'' is not TYPE=SIZE" },
		{ "AHCI=30G,NVME=1X", "bad disk size '1X'" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct strbuf err = STRBUF_INIT;
		struct disk_spec *d = (struct disk_spec *)(uintptr_t)1;

		if (disks_parse(bad[i].spec, &d, &err) != -EINVAL)
			fail_msg("disks '%s' accepted", bad[i].spec);
		assert_null(d);
		assert_contains(err.buf, bad[i].msg);
		strbuf_release(&err);
	}
}

static char *n_disks(int n)
{
	struct strbuf sb = STRBUF_INIT;
	int i;

	for (i = 0; i < n; i++)
		strbuf_addf(&sb, "%sAHCI=1G", i ? "," : "");
	return strbuf_detach(&sb);
}

static void test_disks_parse_sixteen(void **state)
{
	struct strbuf err = STRBUF_INIT;
	struct disk_spec *d = NULL;
	char *spec = n_disks(16);
	int n;

	(void)state;
	n = disks_parse(spec, &d, &err);
	assert_int_equal(n, 16);
	assert_true(d[15].size == GiB);
	disk_specs_free(d, n);
	free(spec);
	strbuf_release(&err);
}

/* Exit codes of the isolated checks below. */
enum { CHILD_OK, CHILD_WRONG = 3, CHILD_LEAK = 4 };

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_LSAN 1
#endif
#endif
#ifdef HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#define LEAKED() __lsan_do_recoverable_leak_check()
#else
#define LEAKED() 0	/* only the SANITIZE=1 build can tell */
#endif

/*
 * Run fn in a child, so that a crash or an AddressSanitizer report fails
 * one test and not the whole program.  Fails the test unless it exits 0.
 */
static void in_child(int (*fn)(void), const char *what)
{
	int status = 0;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status))
		fail_msg("%s: killed by signal %d", what, WTERMSIG(status));
	if (WEXITSTATUS(status) == CHILD_WRONG)
		fail_msg("%s: wrong result", what);
	if (WEXITSTATUS(status) == CHILD_LEAK)
		fail_msg("%s: memory leaked (see LeakSanitizer above)", what);
	if (WEXITSTATUS(status))
		fail_msg("%s: memory error (exit %d, see AddressSanitizer above)",
			 what, WEXITSTATUS(status));
}

static int seventeen_disks(void)
{
	struct strbuf err = STRBUF_INIT;
	struct disk_spec *d = NULL;
	char *spec = n_disks(17);
	int n = disks_parse(spec, &d, &err);
	bool ok = n == -EINVAL && !d &&
		  strstr(err.buf, "too many disks (at most 16)");

	free(spec);
	strbuf_release(&err);
	return ok ? CHILD_OK : CHILD_WRONG;
}

/*
 * 17 disks: disks_parse fails with "too many disks" and then frees n + 1
 * = 18 entries of a 17-entry array (heap-buffer-overflow under ASan).
 */
static void test_disks_parse_seventeen(void **state)
{
	(void)state;
	in_child(seventeen_disks, "disks_parse with 17 disks");
}

static int unterminated_list(void)
{
	struct strbuf err = STRBUF_INIT;
	struct vm_conf c;
	int r;

	conf_init(&c);
	r = conf_set(&c, "vm", "forwards", "tcp::1-:1 'udp::2-:2",
		     LAYER_GUEST, &err);
	if (r != -EINVAL || !strstr(err.buf, "unterminated quote") ||
	    c.forwards.nr) {
		conf_release(&c);
		strbuf_release(&err);
		return CHILD_WRONG;
	}
	conf_release(&c);
	strbuf_release(&err);
	return LEAKED() ? CHILD_LEAK : CHILD_OK;
}

/*
 * A list line with an unterminated quote: set_value returns -EINVAL
 * without clearing the items str_split_args already split off.
 */
static void test_list_unterminated_quote_frees(void **state)
{
	(void)state;
	in_child(unterminated_list, "conf_set with an unterminated quote");
}

static void test_image_parse(void **state)
{
	struct strbuf err = STRBUF_INIT;
	struct disk_spec d;

	(void)state;
	assert_int_equal(image_parse("VIRT=raw=/x.img", &d, &err), 0);
	assert_int_equal(d.bus, BUS_VIRT);
	assert_string_equal(d.format, "raw");
	assert_string_equal(d.path, "/x.img");
	free(d.format);
	free(d.path);

	assert_int_equal(image_parse("CDROM=/a.iso", &d, &err), 0);
	assert_int_equal(d.bus, BUS_CDROM);
	assert_null(d.format);
	assert_string_equal(d.path, "/a.iso");
	free(d.path);

	assert_int_equal(image_parse("nvme=qcow2=rel/dir/p.qcow2", &d, &err), 0);
	assert_int_equal(d.bus, BUS_NVME);
	assert_string_equal(d.format, "qcow2");
	assert_string_equal(d.path, "rel/dir/p.qcow2");
	free(d.format);
	free(d.path);

	/* An explicit format lets the path hold '='. */
	assert_int_equal(image_parse("SCSI=vmdk=/a=b.vmdk", &d, &err), 0);
	assert_string_equal(d.format, "vmdk");
	assert_string_equal(d.path, "/a=b.vmdk");
	free(d.format);
	free(d.path);
	assert_string_equal(err.buf, "");

	assert_int_equal(image_parse("VIRT=bogus=/x.img", &d, &err), -EINVAL);
	assert_contains(err.buf, "unknown image format 'bogus'");
	assert_null(d.format);
	assert_null(d.path);
	strbuf_reset(&err);
	assert_int_equal(image_parse("FOO=/x.img", &d, &err), -EINVAL);
	assert_contains(err.buf, "'FOO=/x.img' is not TYPE=[FMT=]PATH");
	strbuf_reset(&err);
	assert_int_equal(image_parse("/x.img", &d, &err), -EINVAL);
	assert_contains(err.buf, "is not TYPE=[FMT=]PATH");
	strbuf_reset(&err);
	assert_int_equal(image_parse("AHCI=", &d, &err), -EINVAL);
	assert_contains(err.buf, "'AHCI=' names no image file");
	strbuf_reset(&err);
	assert_int_equal(image_parse("AHCI=raw=", &d, &err), -EINVAL);
	assert_contains(err.buf, "names no image file");
	assert_null(d.format);
	assert_null(d.path);
	strbuf_release(&err);
}

static void test_disk_bus_name(void **state)
{
	(void)state;
	assert_string_equal(disk_bus_name(BUS_AHCI), "AHCI");
	assert_string_equal(disk_bus_name(BUS_NVME), "NVME");
	assert_string_equal(disk_bus_name(BUS_SCSI), "SCSI");
	assert_string_equal(disk_bus_name(BUS_VIRT), "VIRT");
	assert_string_equal(disk_bus_name(BUS_CDROM), "CDROM");
}

/* conf_load_file expecting failure with exactly "PATH:LINE: msg". */
static void load_fails(struct vm_conf *c, const char *name, const char *text,
		       int line, const char *msg)
{
	struct strbuf err = STRBUF_INIT;
	char *path = write_file(name, text);
	char *want = xasprintf("%s:%d: %s", path, line, msg);

	assert_int_equal(conf_load_file(c, path, LAYER_USER, false, &err),
			 -EINVAL);
	assert_string_equal(err.buf, want);
	free(want);
	free(path);
	strbuf_release(&err);
}

static void test_load_valid_file(void **state)
{
	static const char *const fwd[] = { "hostfwd=tcp::2222-:22",
					   "hostfwd=tcp::8080-:80", NULL };
	static const char *const shares[] = { "data:/srv/data",
					      "docs:rw:/srv/my docs",
					      "more:/m", NULL };
	struct vm_conf *c = *state;
	struct strbuf err = STRBUF_INIT;
	char *path = write_file("valid.conf",
		"# settings for tests\n"
		"[vm]\n"
		"name = web1\n"
		"cores=4\n"
		"memory = 4G\n"
		"uefi = no\n"
		"port =\n"
		"forwards = tcp::2222-:22 tcp::8080-:80\n"
		"shares = data:/srv/data 'docs:rw:/srv/my docs'\n"
		"shares = more:/m   # a comment after the items\n"
		"; an ini comment\n"
		"\n"
		"[rescue]\n"
		"cores = 1\n"
		"boot = cdrom\n"
		"boot_timeout = 5m\n"
		"shares =\n");

	assert_int_equal(conf_load_file(c, path, LAYER_USER, false, &err), 0);
	assert_string_equal(err.buf, "");
	assert_string_equal(c->name, "web1");
	assert_int_equal(c->cores, 4);
	assert_true(c->memory == 4 * GiB);
	assert_false(c->uefi);
	assert_int_equal(c->port, 0);
	assert_forwards(&c->forwards, fwd);
	assert_shares(&c->shares, shares);
	assert_int_equal(c->rescue.cores, 1);
	assert_int_equal(c->rescue.boot, RESCUE_BOOT_CDROM);
	assert_int_equal(c->rescue.boot_timeout, 300);
	assert_int_equal(c->rescue.shares.nr, 0);
	/* Untouched keys keep their defaults. */
	assert_int_equal(c->sockets, 1);
	assert_int_equal(c->disks.nr, 1);
	assert_disk(&c->disks.v[0], BUS_AHCI, 30 * GiB, NULL);
	assert_true(c->rescue.memory == GiB);
	free(path);
	strbuf_release(&err);
}

/* Every typed field as a file gives it. */
static void test_load_typed_values(void **state)
{
	static const char *const keys[] = { "~/a.pub", "/k/b c.pub", NULL };
	struct vm_conf *c = *state;
	struct strbuf err = STRBUF_INIT;
	char *path = write_file("typed.conf",
		"[vm]\n"
		"memory = 1.5G\n"
		"disks = nvme=20G:raw,AHCI=512M\n"
		"images = CDROM=tools.iso 'VIRT=raw=/i/my disk.img'\n"
		"forwards = tcp:127.0.0.1:2222-:22 "
		"guestfwd=tcp:10.0.2.100:80-tcp:127.0.0.1:8080\n"
		"shares = data:/srv/data 'docs:rw:/srv/my docs'\n"
		"sshkeys = ~/a.pub '/k/b c.pub'\n"
		"[rescue]\n"
		"memory = 768\n"
		"forwards = udp::5353-10.0.2.15:53\n"
		"shares = out:rw:@DATADIR@\n");

	assert_int_equal(conf_load_file(c, path, LAYER_USER, false, &err), 0);
	assert_string_equal(err.buf, "");
	assert_true(c->memory == 1536 * MiB);
	assert_int_equal(c->disks.nr, 2);
	assert_disk(&c->disks.v[0], BUS_NVME, 20 * GiB, "raw");
	assert_disk(&c->disks.v[1], BUS_AHCI, 512 * MiB, NULL);
	assert_int_equal(c->images.nr, 2);
	assert_int_equal(c->images.v[0].bus, BUS_CDROM);
	assert_null(c->images.v[0].format);
	assert_string_equal(c->images.v[0].path, "tools.iso");
	assert_int_equal(c->images.v[1].bus, BUS_VIRT);
	assert_string_equal(c->images.v[1].format, "raw");
	assert_string_equal(c->images.v[1].path, "/i/my disk.img");
	assert_int_equal(c->forwards.nr, 2);
	assert_hostfwd(&c->forwards.v[0], "hostfwd=tcp:127.0.0.1:2222-:22",
		       FWD_TCP, "127.0.0.1", 2222, "", 22);
	assert_true(c->forwards.v[1].guestfwd);
	assert_string_equal(c->forwards.v[1].rule,
			    "guestfwd=tcp:10.0.2.100:80-tcp:127.0.0.1:8080");
	assert_int_equal(c->shares.nr, 2);
	assert_string_equal(c->shares.v[0].id, "data");
	assert_string_equal(c->shares.v[0].dir, "/srv/data");
	assert_false(c->shares.v[0].rw);
	assert_string_equal(c->shares.v[1].id, "docs");
	assert_string_equal(c->shares.v[1].dir, "/srv/my docs");
	assert_true(c->shares.v[1].rw);
	assert_paths(&c->sshkeys, keys);
	assert_true(c->rescue.memory == 768 * MiB);
	assert_int_equal(c->rescue.forwards.nr, 1);
	assert_hostfwd(&c->rescue.forwards.v[0],
		       "hostfwd=udp::5353-10.0.2.15:53", FWD_UDP, "", 5353,
		       "10.0.2.15", 53);
	assert_int_equal(c->rescue.shares.nr, 1);
	assert_string_equal(c->rescue.shares.v[0].id, "out");
	assert_string_equal(c->rescue.shares.v[0].dir, "@DATADIR@");
	assert_true(c->rescue.shares.v[0].rw);
	free(path);
	strbuf_release(&err);
}

static void test_load_file_layers(void **state)
{
	struct vm_conf *c = *state;
	struct strbuf err = STRBUF_INIT;
	char *sys = write_file("sys.conf", "[vm]\ncores = 8\nmemory = 8G\n");
	char *user = write_file("user.conf", "[vm]\ncores = 3\n");

	set_expect(c, "vm", "memory", "1G", LAYER_CLI, 0, NULL);
	assert_int_equal(conf_load_file(c, user, LAYER_USER, false, &err), 0);
	assert_int_equal(conf_load_file(c, sys, LAYER_SYSTEM, false, &err), 0);
	assert_string_equal(err.buf, "");
	assert_int_equal(c->cores, 3);		/* user beats system */
	assert_true(c->memory == GiB);	/* cli beats both */
	free(sys);
	free(user);
	strbuf_release(&err);
}

static void test_load_unknown_key_line(void **state)
{
	load_fails(*state, "unknown.conf",
		   "[vm]\ncores = 4\n\n# comment\nbogus = 1\nname = ok\n", 5,
		   "unknown key 'bogus' in [vm]");
}

static void test_load_bad_value_line(void **state)
{
	struct vm_conf *c = *state;

	load_fails(c, "badvalue.conf", "[vm]\nname = x\n[rescue]\nboot = pxe\n",
		   4, "boot: 'pxe' is not kernel or cdrom");
	load_fails(c, "badmem.conf", "[vm]\nmemory = lots\n", 2,
		   "memory: bad memory size 'lots' (use e.g. 512M or 4G, at least 16M)");
}

static void test_load_first_error_wins(void **state)
{
	load_fails(*state, "twoerrors.conf",
		   "[vm]\ncores = 0\nbogus = 1\n", 2,
		   "cores: '0' is not a number from 1 to 1024");
}

static void test_load_key_outside_section(void **state)
{
	load_fails(*state, "nosection.conf", "cores = 4\n[vm]\nname = a\n", 1,
		   "key 'cores' outside a section (use [vm])");
}

static void test_load_unknown_section(void **state)
{
	load_fails(*state, "section.conf",
		   "[vm]\nname = a\n\n[network]\nmode = x\n", 5,
		   "unknown section [network]");
}

static void test_load_syntax_error(void **state)
{
	load_fails(*state, "syntax.conf", "[vm]\nname = a\nthis is no key\n",
		   3, "syntax error");
}

static void test_load_missing_file(void **state)
{
	struct vm_conf *c = *state;
	struct strbuf err = STRBUF_INIT;
	char *path = xasprintf("%s/does-not-exist.conf", tmpdir);

	assert_int_equal(conf_load_file(c, path, LAYER_SYSTEM, true, &err), 0);
	assert_string_equal(err.buf, "");
	assert_int_equal(conf_load_file(c, path, LAYER_SYSTEM, false, &err),
			 -ENOENT);
	assert_contains(err.buf, path);
	assert_contains(err.buf, "No such file or directory");
	free(path);
	strbuf_release(&err);
}

/* A settings file that never ends, blocks or is not text: one line, fast. */
static void test_load_not_a_settings_file(void **state)
{
	struct vm_conf *c = *state;
	struct strbuf err = STRBUF_INIT;
	char *fifo = xasprintf("%s/fifo.conf", tmpdir);
	char *big = xasprintf("%s/big.conf", tmpdir);
	char *bin = xasprintf("%s/bin.conf", tmpdir);
	FILE *f;

	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(conf_load_file(c, fifo, LAYER_GUEST, true, &err),
			 -EINVAL);
	assert_contains(err.buf, "not a regular file");
	strbuf_reset(&err);
	assert_int_equal(conf_load_file(c, "/dev/zero", LAYER_GUEST, true,
					&err), -EINVAL);
	assert_contains(err.buf, "/dev/zero: not a regular file");
	strbuf_reset(&err);
	assert_int_equal(conf_load_file(c, tmpdir, LAYER_GUEST, true, &err),
			 -EISDIR);
	assert_contains(err.buf, "is a directory");
	strbuf_reset(&err);
	f = fopen(big, "w");
	assert_non_null(f);
	assert_int_equal(ftruncate(fileno(f), 2 << 20), 0);
	fclose(f);
	assert_int_equal(conf_load_file(c, big, LAYER_GUEST, true, &err),
			 -EFBIG);
	assert_contains(err.buf, "larger than 1024 KiB");
	strbuf_reset(&err);
	f = fopen(bin, "w");
	assert_non_null(f);
	fwrite("[vm]\ncores = 2\n\0\1\2", 1, 18, f);
	fclose(f);
	assert_int_equal(conf_load_file(c, bin, LAYER_GUEST, true, &err),
			 -EINVAL);
	assert_contains(err.buf, "binary data");
	unlink(fifo);
	unlink(big);
	unlink(bin);
	free(fifo);
	free(big);
	free(bin);
	strbuf_release(&err);
}

static void test_rescue_profile_selected(void **state)
{
	static const char *const fwd[] = { "hostfwd=tcp::2200-:22", NULL };
	struct vm_conf *c = *state;
	struct strbuf err = STRBUF_INIT;
	char *path = write_file("profile.conf",
		"[vm]\n"
		"rescue = fast\n"
		"[rescue]\n"
		"cores = 1\n"
		"[rescue.fast]\n"
		"cores = 8\n"
		"memory = 4G\n"
		"forwards = tcp::2200-:22\n"
		"[rescue.slow]\n"
		"cores = 3\n"
		"memory = 512M\n");

	assert_int_equal(conf_load_file(c, path, LAYER_USER, false, &err), 0);
	assert_string_equal(err.buf, "");
	assert_string_equal(c->rescue_profile, "fast");
	assert_int_equal(c->rescue.cores, 8);
	assert_true(c->rescue.memory == 4 * GiB);
	assert_forwards(&c->rescue.forwards, fwd);
	free(path);
	strbuf_release(&err);
}

static void test_rescue_profile_not_selected(void **state)
{
	struct vm_conf *c = *state;
	struct strbuf err = STRBUF_INIT;
	char *path = write_file("noprofile.conf",
		"[rescue]\n"
		"cores = 1\n"
		"[rescue.fast]\n"
		"cores = 8\n"
		"shares =\n");

	assert_int_equal(conf_load_file(c, path, LAYER_USER, false, &err), 0);
	assert_string_equal(err.buf, "");
	assert_int_equal(c->rescue.cores, 1);
	assert_int_equal(c->rescue.shares.nr, 3);
	free(path);
	strbuf_release(&err);
}

static void test_rescue_profile_from_cli(void **state)
{
	struct vm_conf *c = *state;
	struct strbuf err = STRBUF_INIT;
	char *path = write_file("cliprofile.conf",
		"[rescue.big]\nmemory = 8G\n[rescue.small]\nmemory = 256M\n");

	set_expect(c, "vm", "rescue", "small", LAYER_CLI, 0, NULL);
	assert_int_equal(conf_load_file(c, path, LAYER_SYSTEM, false, &err), 0);
	assert_true(c->rescue.memory == 256 * MiB);
	free(path);
	strbuf_release(&err);
}

static void test_rescue_profile_checked_when_unused(void **state)
{
	struct vm_conf *c = *state;

	load_fails(c, "profbad.conf",
		   "[vm]\nrescue = fast\n[rescue.slow]\ncores = many\n", 4,
		   "cores: 'many' is not a number from 1 to 1024");
	load_fails(c, "profkey.conf", "[rescue.slow]\ncolour = red\n", 2,
		   "unknown key 'colour' in [rescue.slow]");
	load_fails(c, "profname.conf", "[rescue.-bad]\ncores = 1\n", 2,
		   "bad rescue profile name '-bad'");
	assert_int_equal(c->rescue.cores, 2);
}

/*
 * Write c as guest.conf and load it into a fresh conf at LAYER_GUEST.
 * On failure everything is released (so that a failing test leaks
 * nothing under ASan), the reason printed and the error returned.
 */
static int round_trip(const struct vm_conf *c, const char *name,
		      struct vm_conf *out, char **text)
{
	struct strbuf err = STRBUF_INIT;
	char *path = xasprintf("%s/%s", tmpdir, name);
	int r;

	*text = NULL;
	r = conf_write_guest(c, path);
	if (r) {
		print_error("conf_write_guest %s: %s\n", path, strerror(-r));
		free(path);
		return r;
	}
	*text = read_text(path);
	conf_init(out);
	r = conf_load_file(out, path, LAYER_GUEST, false, &err);
	if (r) {
		print_error("cannot load what conf_write_guest wrote: %s\n",
			    err.buf);
		conf_release(out);
		free(*text);
		*text = NULL;
	}
	free(path);
	strbuf_release(&err);
	return r;
}

static void test_write_guest_round_trip(void **state)
{
	static const char *const shares[] = {
		"data:/srv/my data", "it:rw:/srv/it's here", "plain:/srv/p",
		NULL
	};
	static const char *const fwd[] = { "hostfwd=tcp::2222-:22", NULL };
	struct vm_conf *c = *state, g;
	char *text, *rescue;

	SET_OK(c, "vm", "name", "web1");
	SET_OK(c, "vm", "memory", "4G");
	SET_OK(c, "vm", "uefi", "no");
	SET_OK(c, "vm", "disks", "AHCI=30G,NVME=10G");
	SET_OK(c, "vm", "bootimage", "/iso/my install.iso");
	SET_OK(c, "vm", "port", "");
	SET_OK(c, "vm", "forwards", "tcp::2222-:22");
	SET_OK(c, "vm", "shares", "data:/srv/my data");
	SET_OK(c, "vm", "shares", "it:rw:/srv/it's here");
	SET_OK(c, "vm", "shares", "plain:/srv/p");
	SET_OK(c, "rescue", "cores", "4");
	set_expect(c, "vm", "sockets", "2", LAYER_USER, 0, NULL);

	assert_int_equal(round_trip(c, "guest.conf", &g, &text), 0);

	/* Identity keys always, CLI keys too, defaults and user keys not. */
	assert_contains(text, "\n[vm]\nname = web1\narch = x86_64\n");
	assert_contains(text, "\nmemory = 4G\n");
	assert_contains(text, "\ndisks = AHCI=30G,NVME=10G\n");
	assert_contains(text, "\nuefi = no\n");
	assert_contains(text, "\nfirstboot = no\n");
	assert_contains(text, "\nshares = 'data:/srv/my data'\n");
	assert_contains(text, "\nshares = plain:/srv/p\n");
	assert_contains(text, "\nforwards = hostfwd=tcp::2222-:22\n");
	rescue = strstr(text, "\n[rescue]\n");
	assert_non_null(rescue);
	assert_string_equal(rescue, "\n[rescue]\ncores = 4\n");
	*rescue = '\0';
	assert_lacks(text, "cores");
	assert_lacks(text, "sockets");
	assert_lacks(text, "host =");
	assert_lacks(text, "sshkeys");
	assert_lacks(text, "accel");
	assert_lacks(text, "timeout");

	assert_string_equal(g.name, "web1");
	assert_string_equal(g.arch, "x86_64");
	assert_true(g.memory == 4 * GiB);
	assert_false(g.uefi);
	assert_int_equal(g.disks.nr, 2);
	assert_disk(&g.disks.v[0], BUS_AHCI, 30 * GiB, NULL);
	assert_disk(&g.disks.v[1], BUS_NVME, 10 * GiB, NULL);
	assert_string_equal(g.bootimage, "/iso/my install.iso");
	assert_int_equal(g.port, 0);
	assert_shares(&g.shares, shares);
	assert_forwards(&g.forwards, fwd);
	assert_int_equal(g.rescue.cores, 4);
	assert_int_equal(g.cores, 2);
	assert_int_equal(g.sockets, 1);
	assert_int_equal(g.sshkeys.nr, 2);
	conf_release(&g);
	free(text);
}

static void assert_same_disks(const struct disk_list *a,
			      const struct disk_list *b)
{
	size_t i;

	assert_int_equal(a->nr, b->nr);
	for (i = 0; i < a->nr; i++) {
		assert_int_equal(a->v[i].bus, b->v[i].bus);
		assert_true(a->v[i].size == b->v[i].size);
		if (a->v[i].format)
			assert_string_equal(a->v[i].format, b->v[i].format);
		else
			assert_null(b->v[i].format);
		if (a->v[i].path)
			assert_string_equal(a->v[i].path, b->v[i].path);
		else
			assert_null(b->v[i].path);
	}
}

static void assert_same_shares(const struct share_list *a,
			       const struct share_list *b)
{
	size_t i;

	assert_int_equal(a->nr, b->nr);
	for (i = 0; i < a->nr; i++) {
		assert_string_equal(a->v[i].id, b->v[i].id);
		assert_string_equal(a->v[i].dir, b->v[i].dir);
		assert_int_equal(a->v[i].rw, b->v[i].rw);
	}
}

static void assert_same_forwards(const struct forward_list *a,
				 const struct forward_list *b)
{
	size_t i;

	assert_int_equal(a->nr, b->nr);
	for (i = 0; i < a->nr; i++) {
		const struct forward_spec *f = &a->v[i];

		if (f->guestfwd) {
			assert_true(b->v[i].guestfwd);
			assert_string_equal(f->rule, b->v[i].rule);
			continue;
		}
		assert_hostfwd(&b->v[i], f->rule, f->proto, f->host_addr,
			       f->host_port, f->guest_addr, f->guest_port);
	}
}

/* Written to guest.conf and loaded again, every typed value is the same. */
static void test_write_guest_typed_round_trip(void **state)
{
	struct vm_conf *c = *state, g;
	char *text;
	size_t i;

	SET_OK(c, "vm", "memory", "1.5G");
	SET_OK(c, "vm", "disks", "nvme=20G:raw,Virt=1.25G,AHCI=1000M");
	SET_OK(c, "vm", "images", "cdrom=tools.iso");
	SET_OK(c, "vm", "images", "VIRT=vmdk=/i/a=b c.vmdk");
	SET_OK(c, "vm", "forwards", "tcp::2222-:22");
	SET_OK(c, "vm", "forwards", "hostfwd=udp:[::1]:5353-10.0.2.15:53");
	SET_OK(c, "vm", "forwards",
	       "guestfwd=tcp:10.0.2.100:80-tcp:127.0.0.1:8080");
	SET_OK(c, "vm", "shares", "in:ro:/srv/in");
	SET_OK(c, "vm", "shares", "odd:ro:rw:/srv/named rw");
	SET_OK(c, "vm", "shares", "it:rw:/srv/it's here");
	SET_OK(c, "vm", "sshkeys", "~/.ssh/k 1.pub");
	SET_OK(c, "rescue", "memory", "1T");
	SET_OK(c, "rescue", "forwards", "tcp::2200-:22");
	SET_OK(c, "rescue", "shares", "x:rw:@HOSTDIR@/x");

	assert_int_equal(round_trip(c, "guest-typed.conf", &g, &text), 0);
	assert_contains(text, "\nmemory = 1536M\n");
	assert_contains(text, "\ndisks = NVME=20G:raw,VIRT=1280M,AHCI=1000M\n");
	assert_contains(text, "\nimages = CDROM=tools.iso\n");
	assert_contains(text, "\nshares = in:/srv/in\n");
	assert_contains(text, "\nshares = 'odd:ro:rw:/srv/named rw'\n");
	assert_contains(text, "\nmemory = 1T\n");

	assert_true(g.memory == c->memory);
	assert_true(g.rescue.memory == c->rescue.memory);
	assert_same_disks(&c->disks, &g.disks);
	assert_same_disks(&c->images, &g.images);
	assert_same_forwards(&c->forwards, &g.forwards);
	assert_same_forwards(&c->rescue.forwards, &g.rescue.forwards);
	assert_same_shares(&c->shares, &g.shares);
	assert_same_shares(&c->rescue.shares, &g.rescue.shares);
	assert_int_equal(g.sshkeys.nr, c->sshkeys.nr);
	for (i = 0; i < c->sshkeys.nr; i++)
		assert_string_equal(g.sshkeys.v[i], c->sshkeys.v[i]);
	assert_false(g.shares.v[1].rw);
	assert_string_equal(g.shares.v[1].dir, "rw:/srv/named rw");
	conf_release(&g);
	free(text);
}

static void test_write_guest_defaults_only(void **state)
{
	struct vm_conf *c = *state, g;
	char *text;

	assert_int_equal(round_trip(c, "guest-default.conf", &g, &text), 0);
	assert_string_equal(text,
		"# Written by vm @create; settings of this VM.\n"
		"# See vm(1) and conf/vm.conf for every key.\n"
		"\n[vm]\n"
		"name = vm\n"
		"arch = x86_64\n"
		"disks = AHCI=30G\n"
		"uefi = yes\n"
		"bootimage = \n"
		"bootimage_sha256 = \n"
		"firstboot = no\n");
	assert_string_equal(g.name, "vm");
	assert_true(g.uefi);
	assert_string_equal(g.bootimage, "");
	conf_release(&g);
	free(text);
}

static void test_write_guest_empty_list(void **state)
{
	struct vm_conf *c = *state, g;
	char *text;

	set_expect(c, "rescue", "shares", "", LAYER_GUEST, 0, NULL);
	assert_int_equal(round_trip(c, "guest-empty.conf", &g, &text), 0);
	assert_contains(text, "\n[rescue]\nshares =\n");
	assert_int_equal(g.rescue.shares.nr, 0);
	conf_release(&g);
	free(text);
}

/*
 * guest.conf lines are read by inih, whose Debian build cuts lines at
 * 200 bytes: a longer value (a deep ISO path) comes back cut, and the
 * rest of the line is read as a line of its own.
 */
/*
 * Debian's inih cuts lines at 199 characters: a value too long to read
 * back is refused when it is set, and the longest allowed one survives
 * the round trip through guest.conf.
 */
static void test_write_guest_long_value(void **state)
{
	struct vm_conf *c = *state, g;
	struct strbuf err = STRBUF_INIT;
	char path[251], *share, *text;
	bool same = false;
	int r;

	memset(path, 'p', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(conf_set(c, "vm", "bootimage", path, LAYER_CLI, &err),
			 -EINVAL);
	assert_non_null(strstr(err.buf, "too long"));
	strbuf_release(&err);

	path[170] = '\0';
	share = xasprintf("l:%.*s", 168, path);
	SET_OK(c, "vm", "bootimage", path);
	SET_OK(c, "vm", "shares", share);
	r = round_trip(c, "guest-long.conf", &g, &text);
	if (!r) {
		same = !strcmp(g.bootimage, path) && g.shares.nr == 1 &&
		       !strcmp(g.shares.v[0].id, "l") &&
		       !strcmp(g.shares.v[0].dir, share + 2);
		conf_release(&g);
		free(text);
	}
	free(share);
	assert_int_equal(r, 0);
	assert_true(same);
}

/*
 * inih strips " ;..." as an inline comment even inside quotes, so such a
 * value is refused when set rather than written into an unreadable file.
 */
static void test_write_guest_semicolon_in_item(void **state)
{
	struct vm_conf *c = *state, g;
	struct strbuf err = STRBUF_INIT;
	bool same = false;
	char *text;
	int r;

	assert_int_equal(conf_set(c, "vm", "shares", "music:/srv/rock ;roll",
				  LAYER_CLI, &err), -EINVAL);
	assert_non_null(strstr(err.buf, "starts a comment"));
	strbuf_release(&err);
	SET_OK(c, "vm", "shares", "music:/srv/rock;roll");
	r = round_trip(c, "guest-semicolon.conf", &g, &text);
	if (!r) {
		same = g.shares.nr == 1 &&
		       !strcmp(g.shares.v[0].id, "music") &&
		       !strcmp(g.shares.v[0].dir, "/srv/rock;roll");
		conf_release(&g);
		free(text);
	}
	assert_int_equal(r, 0);
	assert_true(same);
}

static void test_write_guest_error(void **state)
{
	struct vm_conf *c = *state;
	char *path = xasprintf("%s/no/such/dir/guest.conf", tmpdir);

	assert_int_equal(conf_write_guest(c, path), -ENOENT);
	assert_false(fs_exists(path));
	free(path);
}

static bool has(const struct strvec *sv, const char *s)
{
	size_t i;

	for (i = 0; i < sv->nr; i++)
		if (!strcmp(sv->v[i], s))
			return true;
	return false;
}

static void test_conf_each(void **state)
{
	static const char *const want[] = {
		"vm.name=vm", "vm.cores=2", "vm.memory=2G", "vm.uefi=yes",
		"vm.port=5900", "vm.accel=auto", "vm.timeout=0",
		"vm.sshkeys='~/.ssh/id_ed25519.pub' '~/.ssh/id_rsa.pub'",
		"vm.forwards=", "vm.rescue=", "rescue.boot=kernel",
		"rescue.boot_timeout=120", "rescue.job_log_max=16M",
		"rescue.shares=mirror:@MIRROR@ in:@INDIR@ out:rw:@DATADIR@",
		"vm.shares='ab:/x y' cd:/z", "vm.keep_cd=no",
		"vm.compress_level=6", "vm.full_every=8", "vm.max_chain=256",
		"vm.shutdown_timeout=60",
		"vm.control_group=", "vm.ssh_user=root", "vm.download_max=0",
		"vm.download_cache_max=20G",
		"vm.download_timeout=21600", "vm.guest_agent=auto",
		"vm.cloud_init=auto", "vm.ready=auto", "vm.initialize_timeout=0",
		"vm.registry_ca=", "vm.registry_insecure=",
		"serve.listen=127.0.0.1:9180", "serve.dirs=", "serve.query_from=",
		"serve.tls_cert=", "serve.tls_key=", "serve.client_ca=",
		"serve.control_from=", "serve.tokens=",
	};
	struct vm_conf *c = *state;
	struct strvec sv = STRVEC_INIT;
	size_t i;

	SET_OK(c, "vm", "shares", "ab:/x y");
	SET_OK(c, "vm", "shares", "cd:/z");
	conf_each(c, collect, &sv);
	assert_int_equal(sv.nr, 59);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!has(&sv, want[i]))
			fail_msg("conf_each gave no \"%s\"", want[i]);
	strvec_clear(&sv);
}

/* The values f gives section.key, joined by "|". */
static char *vals(const struct conf_file *f, const char *sect, const char *key)
{
	struct strbuf sb = STRBUF_INIT;
	size_t i;

	for (i = 0; i < f->nr; i++)
		if (!strcmp(f->v[i].section, sect) && !strcmp(f->v[i].key, key))
			strbuf_addf(&sb, "%s%s", sb.len ? "|" : "", f->v[i].value);
	return strbuf_detach(&sb);
}

static void assert_vals(const struct conf_file *f, const char *sect,
			const char *key, const char *want)
{
	char *v = vals(f, sect, key);

	if (strcmp(v, want))
		fail_msg("%s.%s: \"%s\", want \"%s\"", sect, key, v, want);
	free(v);
}

/*
 * A snapshot from elsewhere keeps the guest's settings it has and this
 * host's of everything that reaches the host, in every section; paths
 * under HOSTDIR, and images by URL with a digest, are the guest's.
 */
static void test_keep_host_settings(void **state)
{
	struct conf_file snap = CONF_FILE_INIT, host = CONF_FILE_INIT;
	struct conf_file out = CONF_FILE_INIT;
	struct strvec dropped = STRVEC_INIT;
	char *joined;

	(void)state;
	conf_file_add(&host, "vm", "forwards", "tcp::2222-:22");
	conf_file_add(&host, "vm", "cores", "1");
	conf_file_add(&snap, "vm", "cores", "3");
	conf_file_add(&snap, "vm", "shares", "home:/home/owner");
	conf_file_add(&snap, "vm", "forwards", "tcp::5555-:22");
	conf_file_add(&snap, "vm", "control_group", "users");
	conf_file_add(&snap, "vm", "base", "/etc/shadow");
	conf_file_add(&snap, "vm", "base_format", "raw");
	conf_file_add(&snap, "vm", "images", "VIRT=raw=/h/vm/disk.raw");
	conf_file_add(&snap, "vm", "arch", "x86_64/../../tmp/q");
	conf_file_add(&snap, "vm", "sshkeys", "~/.ssh/id_ed25519.pub");
	conf_file_add(&snap, "rescue.big", "shares", "out:rw:/home/u");
	conf_file_add(&snap, "rescue.big", "memory", "4G");
	conf_file_add(&snap, "rescue", "memory", "2G");
	conf_file_keep_host(&snap, &host, "/h/vm", &out, &dropped);
	joined = strvec_join(&dropped, ",", false);
	assert_string_equal(joined, "shares,forwards,control_group,base,arch,sshkeys,rescue.big.shares");
	free(joined);
	assert_vals(&out, "vm", "cores", "3");
	assert_vals(&out, "vm", "forwards", "tcp::2222-:22");
	assert_vals(&out, "vm", "shares", "");
	assert_vals(&out, "vm", "control_group", "");
	assert_vals(&out, "vm", "base", "");
	assert_vals(&out, "vm", "base_format", "");	/* it goes with base */
	assert_vals(&out, "vm", "arch", "");
	assert_vals(&out, "vm", "images", "VIRT=raw=/h/vm/disk.raw");
	assert_vals(&out, "rescue.big", "shares", "");
	assert_vals(&out, "rescue.big", "memory", "4G");
	assert_vals(&out, "rescue", "memory", "2G");
	conf_file_release(&snap);
	conf_file_release(&out);
	strvec_clear(&dropped);

	/* outside by ../, by file://, a URL with no digest: the host's */
	snap = (struct conf_file)CONF_FILE_INIT;
	out = (struct conf_file)CONF_FILE_INIT;
	conf_file_add(&snap, "vm", "images", "VIRT=raw=/h/vm/../secret.raw");
	conf_file_add(&snap, "vm", "base", "https://example.org/base.qcow2");
	conf_file_keep_host(&snap, &host, "/h/vm", &out, &dropped);
	joined = strvec_join(&dropped, ",", false);
	assert_string_equal(joined, "images");
	free(joined);
	assert_vals(&out, "vm", "base", "https://example.org/base.qcow2");
	conf_file_release(&snap);
	conf_file_release(&out);
	strvec_clear(&dropped);
	snap = (struct conf_file)CONF_FILE_INIT;
	out = (struct conf_file)CONF_FILE_INIT;
	conf_file_add(&snap, "vm", "images", "VIRT=raw=file:///etc/shadow");
	conf_file_add(&snap, "rescue", "iso", "/iso/x.iso");
	conf_file_keep_host(&snap, &host, "/h/vm", &out, &dropped);
	joined = strvec_join(&dropped, ",", false);
	assert_string_equal(joined, "images,rescue.iso");
	free(joined);
	conf_file_release(&snap);
	conf_file_release(&out);
	strvec_clear(&dropped);
	snap = (struct conf_file)CONF_FILE_INIT;
	out = (struct conf_file)CONF_FILE_INIT;
	conf_file_add(&snap, "vm", "images",
		      "VIRT=raw=http://127.0.0.1:8/x.raw VIRT=raw=https://a/b#sha256="
		      "0000000000000000000000000000000000000000000000000000000000000000");
	conf_file_keep_host(&snap, &host, "/h/vm", &out, &dropped);
	assert_int_equal(dropped.nr, 1);
	conf_file_release(&snap);
	conf_file_release(&out);
	strvec_clear(&dropped);

	/* the host's own values: nothing to say, and they stay */
	snap = (struct conf_file)CONF_FILE_INIT;
	out = (struct conf_file)CONF_FILE_INIT;
	conf_file_add(&snap, "vm", "forwards", "tcp::2222-:22");
	conf_file_add(&snap, "vm", "images", "VIRT=raw=https://a/b#sha256="
		      "0000000000000000000000000000000000000000000000000000000000000000");
	conf_file_keep_host(&snap, &host, "/h/vm", &out, &dropped);
	assert_int_equal(dropped.nr, 0);
	assert_vals(&out, "vm", "forwards", "tcp::2222-:22");
	conf_file_release(&snap);
	conf_file_release(&out);
	conf_file_release(&host);
	strvec_clear(&dropped);
}

/*
 * vm.conf(5) and conf/vm.conf name every key of the table, in its
 * section, and vm.conf(5) names no other (run from the top directory,
 * as make check does).
 */
static void test_every_key_documented(void **state)
{
	struct vm_conf *c = *state;
	struct strbuf man = STRBUF_INIT, ex = STRBUF_INIT;
	struct strvec sv = STRVEC_INIT;
	char *sect = NULL;
	const char *p;
	size_t i;

	assert_int_equal(fs_read_file("vm.conf.5", 1 << 20, &man), 0);
	assert_int_equal(fs_read_file("conf/vm.conf", 1 << 20, &ex), 0);
	conf_each(c, collect, &sv);
	assert_true(sv.nr > 40);
	for (i = 0; i < sv.nr; i++) {
		char *key = xstrdup(strchr(sv.v[i], '.') + 1);
		char *head, *entry, *line, *in;

		*strchr(key, '=') = '\0';
		head = xasprintf(".SH SECTION [%.*s]\n",
				 (int)(strchr(sv.v[i], '.') - sv.v[i]), sv.v[i]);
		entry = xasprintf("\n.TP\n.B %s\n", key);
		line = xasprintf("\n;%s =", key);
		in = strstr(man.buf, head);
		if (!in || !strstr(in, entry) ||
		    (strstr(in + 1, ".SH ") &&
		     strstr(in, entry) > strstr(in + 1, ".SH ")))
			fail_msg("vm.conf.5 has no %s under %s", key, head);
		if (!strstr(ex.buf, line))
			fail_msg("conf/vm.conf has no ;%s =", key);
		free(key);
		free(head);
		free(entry);
		free(line);
	}
	/* and each key vm.conf(5) describes in a section is one */
	for (p = man.buf; (p = strstr(p, "\n.")); p++) {
		char name[64];

		if (sscanf(p, "\n.SH SECTION [%63[a-z]]", name) == 1) {
			free(sect);
			sect = xstrdup(name);
		} else if (!strncmp(p, "\n.SH ", 5)) {
			free(sect);
			sect = NULL;
		} else if (sect && !strncmp(p, "\n.TP\n.B ", 8) &&
			   sscanf(p + 8, "%63[a-z0-9_]", name) == 1 &&
			   conf_layer_of(c, sect, name) == -EINVAL) {
			fail_msg("vm.conf.5 describes %s.%s, which is no key", sect,
				 name);
		}
	}
	free(sect);
	strvec_clear(&sv);
	strbuf_release(&man);
	strbuf_release(&ex);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, conf_setup, conf_teardown)
	const struct CMUnitTest tests[] = {
		T(test_init_defaults),
		T(test_every_key_documented),
		cmocka_unit_test(test_init_release_init),
		T(test_set_strings_and_names),
		T(test_set_numbers),
		T(test_set_memory),
		T(test_memory_text_round_trip),
		T(test_set_bools),
		T(test_set_port),
		T(test_set_accel_and_boot),
		T(test_set_ready),
		T(test_set_durations),
		T(test_set_disks_and_images),
		T(test_keep_host_settings),
		T(test_unknown_key_and_section),
		T(test_list_append_replace_reset),
		T(test_list_reset_at_new_layer_with_empty),
		T(test_list_files_split_cli_does_not),
		T(test_list_bad_item_changes_nothing),
		T(test_lower_layer_never_overrides),
		T(test_forwards),
		cmocka_unit_test(test_forward_parse),
		T(test_forward_host_port),
		cmocka_unit_test(test_share_parse),
		cmocka_unit_test(test_disks_parse),
		cmocka_unit_test(test_disks_parse_rejects),
		cmocka_unit_test(test_disks_parse_sixteen),
		cmocka_unit_test(test_disks_parse_seventeen),
		cmocka_unit_test(test_list_unterminated_quote_frees),
		cmocka_unit_test(test_image_parse),
		cmocka_unit_test(test_disk_bus_name),
		T(test_load_valid_file),
		T(test_load_typed_values),
		T(test_load_file_layers),
		T(test_load_unknown_key_line),
		T(test_load_bad_value_line),
		T(test_load_first_error_wins),
		T(test_load_key_outside_section),
		T(test_load_unknown_section),
		T(test_load_syntax_error),
		T(test_load_not_a_settings_file),
		T(test_load_missing_file),
		T(test_rescue_profile_selected),
		T(test_rescue_profile_not_selected),
		T(test_rescue_profile_from_cli),
		T(test_rescue_profile_checked_when_unused),
		T(test_write_guest_round_trip),
		T(test_write_guest_typed_round_trip),
		T(test_write_guest_defaults_only),
		T(test_write_guest_empty_list),
		T(test_write_guest_long_value),
		T(test_write_guest_semicolon_in_item),
		T(test_write_guest_error),
		T(test_conf_each),
	};
#undef T

	return cmocka_run_group_tests(tests, scratch_group_setup,
				      scratch_group_teardown);
}
