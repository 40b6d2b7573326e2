#include "vm/base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/download.h"
#include "util/fsutil.h"
#include "qemu/image.h"
#include "util/proc.h"

#define STAMP "base.ok"
#define QEMU_IMG_TIMEOUT_MS (60 * 1000)

const char *base_of(const struct vm_conf *c)
{
	/*
	 * A base in /etc/vm.conf or the user's file is for @create; a VM
	 * made before it, or without it, has none.
	 */
	return conf_layer_of(c, "vm", "base") >= LAYER_GUEST ? c->base : "";
}

int base_from_cli(struct vm_conf *c, const struct conf_file *guest,
		  struct strbuf *err)
{
	const char *recorded;
	char *want, *frag = NULL;
	int r;

	if (conf_layer_of(c, "vm", "base") != LAYER_CLI || !guest)
		return 0;	/* not made yet: --base is @create's */
	recorded = conf_file_value(guest, "vm", "base");
	if (!recorded)
		recorded = "";
	if (download_is_url(c->base))
		download_split(c->base, &want, &frag);
	else
		want = fs_abspath(c->base);
	free(frag);
	if (!*recorded) {
		strbuf_addf(err, "option --base: %s was made without a base; --base is for @create",
			    c->name);
		r = -EINVAL;
	} else if (strcmp(want, recorded)) {
		strbuf_addf(err, "option --base: %s lays over %s, not %s; --base is for @create",
			    c->name, recorded, c->base);
		r = -EINVAL;
	} else {
		r = conf_set(c, "vm", "base", recorded, LAYER_CLI, err);
	}
	free(want);
	return r;
}

int base_find(const struct base_env *env, const char *spec, const char *local,
	      const char *sha, struct base_found *out, struct strbuf *err)
{
	struct image_info info;
	struct strbuf e = STRBUF_INIT;
	char *frag = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	out->local = xstrdup(local);
	if (download_is_url(spec))
		download_split(spec, &out->record, &frag);
	else
		out->record = xstrdup(local);
	free(frag);
	if (env->dry_run && download_is_url(local)) {
		/* not downloaded in a dry run */
		out->format = xstrdup("FORMAT");
		return 0;
	}
	/* probed once, here, on the user's own file; recorded from then on */
	r = image_info(local, NULL, &info, &e);
	if (r) {
		strbuf_addf(err, "%s: %s", local, e.buf);
		goto fail;
	}
	if (info.backing || info.data_file) {
		strbuf_addf(err, "%s is itself an overlay on %s; give that one, or flatten it first (qemu-img convert -O qcow2)",
			    local, info.backing ? info.backing : info.data_file);
		image_info_release(&info);
		r = -EINVAL;
		goto fail;
	}
	/* a format whose file names others (vmdk's extents, ...) could
	 * hand the guest any file of ours: only the two that cannot */
	if (!info.format || (strcmp(info.format, "qcow2") &&
			     strcmp(info.format, "raw"))) {
		strbuf_addf(err, "%s is %s, not qcow2 or raw (convert it: qemu-img convert -O qcow2)",
			    local, info.format ? info.format : "of no format");
		image_info_release(&info);
		r = -EINVAL;
		goto fail;
	}
	out->format = info.format;
	out->size = info.virtual_size;
	info.format = NULL;
	image_info_release(&info);
	if (sha) {
		snprintf(out->sha256, sizeof(out->sha256), "%s", sha);
	} else if (!env->dry_run) {
		r = download_file_sha256(local, out->sha256);
		if (r) {
			strbuf_addf(err, "%s: %s", local, strerror(-r));
			goto fail;
		}
	}
	strbuf_release(&e);
	return 0;
fail:
	strbuf_release(&e);
	base_found_release(out);
	return r;
}

void base_found_release(struct base_found *b)
{
	free(b->record);
	free(b->local);
	free(b->format);
	memset(b, 0, sizeof(*b));
}

/*
 * A URL base is the cache's copy as it is, without asking the server: a
 * newer file there is not what disk 0 lays over.  It is fetched, pinned
 * to its digest, only when the cache does not have it.
 */
static int base_local(const struct base_env *env, const struct vm_conf *c,
		      char **local, struct strbuf *err)
{
	struct strbuf note = STRBUF_INIT;
	struct dl_opts o;
	int r;

	if (!download_is_url(c->base)) {
		*local = xstrdup(c->base);
		return 0;
	}
	memset(&o, 0, sizeof(o));
	o.cache_dir = env->cache_dir;
	o.no_network = true;
	/* disk 0 lays over it: the cache keeps it while the VM names it */
	o.pin_dir = env->dry_run ? NULL : env->hostdir;
	o.cache_max = c->download_cache_max;
	r = download_fetch(c->base, &o, local, &note, err);
	if (r || env->dry_run || !download_is_url(*local))
		goto out;
	free(*local);
	o.no_network = false;
	o.offline_ok = true;
	o.sha256 = *c->base_sha256 ? c->base_sha256 : NULL;
	o.max_bytes = c->download_max;
	o.timeout_s = c->download_timeout;
	r = download_fetch(c->base, &o, local, &note, err);
out:
	strbuf_release(&note);
	return r;
}

/* The base's file is the one recorded; its digest only when it changed. */
static int check_base(const struct vm_conf *c, const char *local,
		      const char *stamp, struct strbuf *err)
{
	struct strbuf seen = STRBUF_INIT, id = STRBUF_INIT;
	struct stat st;
	char hex[65], key[FS_STAT_KEY];
	int r;

	if (!*c->base_sha256 || !*c->base_format) {
		strbuf_addf(err, "guest.conf names base %s but not its base_format and base_sha256 (vm @create records them)",
			    c->base);
		return -EINVAL;
	}
	if (stat(local, &st) < 0) {
		r = -errno;
		strbuf_addf(err, "base %s of disk 0: %s", local, strerror(-r));
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		strbuf_addf(err, "base %s of disk 0 is not a regular file",
			    local);
		return -EINVAL;
	}
	fs_stat_key(&st, key);
	strbuf_addf(&id, "%s %s %s\n", c->base_sha256, local, key);
	if (stamp && !fs_read_file(stamp, 4096, &seen) &&
	    !strcmp(seen.buf, id.buf)) {
		r = 0;
		goto out;
	}
	r = download_file_sha256(local, hex);
	if (r) {
		strbuf_addf(err, "base %s of disk 0: %s", local, strerror(-r));
		goto out;
	}
	if (strcasecmp(hex, c->base_sha256)) {
		strbuf_addf(err, "base %s has changed since the VM was made (SHA-256 %.16s..., guest.conf says %.16s...): disk 0 holds only the changes on top of it; put the original back",
			    local, hex, c->base_sha256);
		r = -ESTALE;
		goto out;
	}
	if (stamp)
		fs_write_atomic(stamp, id.buf, id.len, 0600);
out:
	strbuf_release(&seen);
	strbuf_release(&id);
	return r;
}

/* Point disk's header at this machine's copy of its (checked) base. */
static int rebase(const char *disk, const char *base, const char *format,
		  struct strbuf *err)
{
	struct strvec av = STRVEC_INIT;
	struct proc_opts o = PROC_OPTS_INIT;
	int r;

	strvec_pushl(&av, "qemu-img", "rebase", "-q", "-u", "-f", "qcow2",
		     "-b", base, "-F", format, "--", disk, NULL);
	o.stdin_fd = -1;
	r = proc_run(av.v, &o, QEMU_IMG_TIMEOUT_MS);
	strvec_clear(&av);
	if (r)
		strbuf_addf(err, "%s: cannot point it at its base %s (qemu-img rebase %s)",
			    disk, base, r < 0 ? strerror(-r) : "failed");
	return r ? -EIO : 0;
}

/* A file QEMU would not open as qcow2 names nothing it would follow. */
static bool is_qcow2(const char *disk)
{
	static const char magic[4] = { 'Q', 'F', 'I', (char)0xfb };
	char got[4];
	int fd = open(disk, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	bool yes;

	if (fd < 0)
		return true;	/* qemu-img says why */
	yes = read(fd, got, sizeof(got)) == (ssize_t)sizeof(got) &&
	      !memcmp(got, magic, sizeof(got));
	close(fd);
	return yes;
}

/* 1 with *info for a qcow2 file, 0 for another, or -errno with err. */
static int qcow2_info(const char *path, struct image_info *info,
		      struct strbuf *err)
{
	struct strbuf e = STRBUF_INIT;
	int r;

	if (!is_qcow2(path))
		return 0;
	r = image_info(path, "qcow2", info, &e);
	if (r)
		strbuf_addf(err, "%s: %s", path, e.buf);
	strbuf_release(&e);
	return r ? r : 1;
}

static int check_header(const struct vm_conf *c, const char *disk, size_t i,
			const char *base, struct strbuf *err)
{
	struct image_info info;
	int r;

	r = qcow2_info(disk, &info, err);
	if (r < 0)
		return r;
	if (!r) {
		if (i == 0 && base) {
			strbuf_addf(err, "%s is not an overlay, but guest.conf lays it over %s",
				    disk, c->base);
			return -EINVAL;
		}
		return 0;
	}
	r = -EINVAL;
	if (info.data_file)
		strbuf_addf(err, "%s keeps its data in another file (%s); vm does not use such disks",
			    disk, info.data_file);
	else if (info.backing && (i || !base))
		strbuf_addf(err, "%s names a backing file (%s) guest.conf does not; vm does not open it",
			    disk, info.backing);
	else if (!info.backing && i == 0 && base)
		strbuf_addf(err, "%s is not an overlay, but guest.conf lays it over %s",
			    disk, c->base);
	else if (info.backing && strcmp(info.backing, base) &&
		 !download_is_url(c->base))
		strbuf_addf(err, "%s lays over %s, but guest.conf says %s (--base is for @create only)",
			    disk, info.backing, base);
	else if (info.backing && strcmp(info.backing, base))
		r = rebase(disk, base, c->base_format, err);
	else
		r = 0;
	image_info_release(&info);
	return r;
}

int base_check_image(const char *path, struct strbuf *err)
{
	struct image_info info;
	int r = qcow2_info(path, &info, err);

	if (r <= 0)
		return r;
	r = 0;
	if (info.backing || info.data_file) {
		strbuf_addf(err, "%s keeps data in another file (%s); a snapshot holds only self-contained images (flatten it: qemu-img convert -O qcow2)",
			    path, info.backing ? info.backing : info.data_file);
		r = -EINVAL;
	}
	image_info_release(&info);
	return r;
}

int base_check_disks(const struct base_env *env, const struct vm_conf *c,
		     const char *diskdir, char **base, struct strbuf *err)
{
	char *local = NULL, *stamp = NULL;
	size_t i;
	int r = 0;

	*base = NULL;
	if (*base_of(c) && !c->disks.nr) {
		strbuf_addf(err, "guest.conf names base %s but no disk to lay over it",
			    c->base);
		return -EINVAL;
	}
	if (*base_of(c)) {
		r = base_local(env, c, &local, err);
		if (r)
			return r;
		if (env->dry_run) {
			*base = local;
			return 0;
		}
		if (env->workdir && !strcmp(diskdir, env->workdir))
			stamp = xasprintf("%s/%s", diskdir, STAMP);
		r = check_base(c, local, stamp, err);
		free(stamp);
	}
	for (i = 0; !r && !env->dry_run && i < c->disks.nr; i++) {
		const char *f = c->disks.v[i].format;
		char *disk;

		if (f && strcmp(f, "qcow2"))
			continue;
		disk = xasprintf("%s/disk-%zu.img", diskdir, i);
		/* a missing disk is for the caller to report as missing */
		r = fs_exists(disk) ? check_header(c, disk, i, local, err) : 0;
		free(disk);
	}
	if (r)
		free(local);
	else
		*base = local;
	return r;
}

/* GPT partition type GUIDs as they lie on the disk (mixed-endian) */
static const unsigned char gpt_esp[16] = {
	0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11,
	0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b };
static const unsigned char gpt_bios[16] = {	/* "Hah!IdontNeedEFI" */
	0x48, 0x61, 0x68, 0x21, 0x49, 0x64, 0x6f, 0x6e,
	0x74, 0x4e, 0x65, 0x65, 0x64, 0x45, 0x46, 0x49 };

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* The first 34 sectors: MBR, GPT header, 128 entries of 128 bytes. */
#define HEAD_SECTORS 34

/* What the table in head (HEAD_SECTORS sectors) says. */
static enum base_fw table_firmware(const unsigned char *head)
{
	const unsigned char *h = head + 512;
	bool esp = false, bios = false, any = false;
	uint32_t i, n, esz;

	if (!memcmp(h, "EFI PART", 8)) {
		n = le32(h + 80);
		esz = le32(h + 84);
		/* entries from LBA 2, as every tool writes them */
		if (le32(h + 72) != 2 || le32(h + 76) || esz < 128 ||
		    (uint64_t)n * esz > (HEAD_SECTORS - 2) * 512u)
			return BASE_FW_ANY;
		for (i = 0; i < n; i++) {
			const unsigned char *e = head + 1024 + (size_t)i * esz;

			esp |= !memcmp(e, gpt_esp, 16);
			bios |= !memcmp(e, gpt_bios, 16);
		}
		return esp && !bios ? BASE_FW_UEFI :
		       !esp ? BASE_FW_BIOS : BASE_FW_ANY;
	}
	if (head[510] != 0x55 || head[511] != 0xaa)
		return BASE_FW_ANY;
	for (i = 0; i < 4; i++) {
		unsigned char type = head[446 + i * 16 + 4];

		/* a GPT we could not read (4Kn sectors, a bad header) */
		if (type == 0xee)
			return BASE_FW_ANY;
		esp |= type == 0xef;
		any |= type != 0;
	}
	/* no partition (a FAT "superfloppy"): nothing to tell by */
	return esp || !any ? BASE_FW_ANY : BASE_FW_BIOS;
}

enum base_fw base_firmware(const char *local, const char *format)
{
	struct strvec av = STRVEC_INIT;
	struct proc_opts o = PROC_OPTS_INIT;
	struct strbuf head = STRBUF_INIT;
	enum base_fw fw = BASE_FW_ANY;
	char *dir, *out;

	if (fs_mkdtemp("vm-fw", &dir))
		return fw;
	out = xasprintf("%s/head.raw", dir);
	strvec_pushl(&av, "qemu-img", "dd", "-f", format, "-O", "raw",
		     "bs=512", NULL);
	strvec_pushf(&av, "count=%d", HEAD_SECTORS);
	strvec_pushf(&av, "if=%s", local);
	strvec_pushf(&av, "of=%s", out);
	o.stdin_fd = -1;
	if (!proc_run(av.v, &o, QEMU_IMG_TIMEOUT_MS) &&
	    !fs_read_file(out, HEAD_SECTORS * 512, &head) &&
	    head.len == HEAD_SECTORS * 512)
		fw = table_firmware((const unsigned char *)head.buf);
	strbuf_release(&head);
	strvec_clear(&av);
	fs_rm_rf(dir);
	free(out);
	free(dir);
	return fw;
}
