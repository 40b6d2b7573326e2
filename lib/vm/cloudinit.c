#include "vm/cloudinit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fsutil.h"
#include "util/proc.h"
#include "util/sha256.h"

#define SEED "cidata.iso"
#define USER_DATA_MAX (1u << 20)	/* NoCloud's own files are small */
#define KEY_FILE_MAX (64u << 10)
#define XORRISO_TIMEOUT_MS (60 * 1000)

bool cloudinit_wanted(const struct vm *vm)
{
	return vm->conf.cloud_init == AGENT_YES ||
	       (vm->conf.cloud_init == AGENT_AUTO && *vm->conf.base);
}

bool cloudinit_can(void)
{
	char *x = fs_which("xorriso");
	bool there = x != NULL;

	free(x);
	return there;
}

/* The VM's name as a host name: letters, digits and '-', at most 63. */
static void host_name(const char *name, char out[64])
{
	size_t i, n = 0;

	for (i = 0; name[i] && n < 63; i++) {
		char ch = name[i];

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9'))
			out[n++] = ch;
		else if (n && out[n - 1] != '-')
			out[n++] = '-';
	}
	while (n && out[n - 1] == '-')
		n--;
	if (!n)
		memcpy(out, "vm", (n = 2));
	out[n] = '\0';
}

/* s as a YAML single-quoted scalar ('' for '). */
static void yaml_quoted(struct strbuf *sb, const char *s, size_t len)
{
	size_t i;

	strbuf_addch(sb, '\'');
	for (i = 0; i < len; i++) {
		if (s[i] == '\'')
			strbuf_addch(sb, '\'');
		strbuf_addch(sb, s[i]);
	}
	strbuf_addch(sb, '\'');
}

/* A line of an authorized_keys file: a field names a key type. */
static bool public_key(const char *p, size_t len)
{
	static const char *const types[] = { "ssh-", "ecdsa-", "sk-" };
	size_t i, k;

	for (i = 0; i < len; i++) {
		if (i && p[i - 1] != ' ' && p[i - 1] != '\t')
			continue;
		for (k = 0; k < sizeof(types) / sizeof(types[0]); k++)
			if (len - i > strlen(types[k]) &&
			    !strncmp(p + i, types[k], strlen(types[k])))
				return true;
	}
	return false;
}

/* Each public key in the files sshkeys names, as a YAML list item. */
static void key_items(const struct vm *vm, const char *indent,
		      struct strbuf *sb)
{
	struct strvec keys = STRVEC_INIT;
	size_t i;

	vm_key_files(vm, &keys);
	for (i = 0; i < keys.nr; i++) {
		struct strbuf text = STRBUF_INIT;
		const char *p, *end;

		/* a private key named by mistake never reaches the guest */
		if (fs_read_file(keys.v[i], KEY_FILE_MAX, &text) ||
		    !text.buf || strstr(text.buf, "PRIVATE KEY")) {
			strbuf_release(&text);
			continue;
		}
		for (p = text.buf; *p; p = *end ? end + 1 : end) {
			size_t len;

			end = strchr(p, '\n');
			if (!end)
				end = p + strlen(p);
			len = (size_t)(end - p);
			while (len && (p[len - 1] == '\r' || p[len - 1] == ' '))
				len--;
			if (!len || *p == '#' || !public_key(p, len))
				continue;
			strbuf_addf(sb, "%s- ", indent);
			yaml_quoted(sb, p, len);
			strbuf_addch(sb, '\n');
		}
		strbuf_release(&text);
	}
	strvec_clear(&keys);
}

/* The #cloud-config vm writes when HOSTDIR has no user-data. */
static void user_data(const struct vm *vm, const char *host,
		      struct strbuf *sb)
{
	const char *user = vm->conf.ssh_user;

	strbuf_addstr(sb, "#cloud-config\n"
			  "# made by vm for this boot (HOSTDIR/user-data replaces it)\n");
	strbuf_addstr(sb, "hostname: ");
	yaml_quoted(sb, host, strlen(host));
	/* the name resolves in the guest (sudo says so otherwise) */
	strbuf_addstr(sb, "\nmanage_etc_hosts: true\nssh_pwauth: false\n");
	if (!strcmp(user, "root")) {
		strbuf_addstr(sb, "disable_root: false\nssh_authorized_keys:\n");
		key_items(vm, "  ", sb);
		return;
	}
	strbuf_addstr(sb, "users:\n  - default\n  - name: ");
	yaml_quoted(sb, user, strlen(user));
	strbuf_addstr(sb, "\n    sudo: 'ALL=(ALL) NOPASSWD:ALL'\n"
			  "    shell: /bin/sh\n"
			  "    lock_passwd: true\n"
			  "    ssh_authorized_keys:\n");
	key_items(vm, "      ", sb);
}

static int write_in(const char *dir, const char *name, const struct strbuf *sb,
		    struct strbuf *err)
{
	char *p = xasprintf("%s/%s", dir, name);
	int r = fs_write_atomic(p, sb->buf ? sb->buf : "", sb->len, 0600);

	if (r)
		strbuf_addf(err, "%s: %s", p, strerror(-r));
	free(p);
	return r;
}

int cloudinit_files(const struct vm *vm, const char *dir, struct strbuf *err)
{
	struct strbuf ud = STRBUF_INIT, md = STRBUF_INIT;
	char host[64], hex[65], *own = vm_host_path(vm, "user-data");
	int r = 0;

	host_name(vm->conf.name, host);
	if (fs_exists(own)) {
		r = fs_read_file(own, USER_DATA_MAX, &ud);
		if (r)
			strbuf_addf(err, "%s: %s", own, fs_read_strerror(r));
	} else {
		user_data(vm, host, &ud);
	}
	if (!r && mkdir(dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		strbuf_addf(err, "%s: %s", dir, strerror(-r));
	}
	/* a new instance for cloud-init only when the seed says new things */
	strbuf_addf(&md, "%s\n%s", host, ud.buf ? ud.buf : "");
	if (!r)
		r = sha256_hex_of(md.buf, md.len, hex);
	if (!r) {
		strbuf_reset(&md);
		strbuf_addf(&md, "instance-id: iid-%.16s\nlocal-hostname: ",
			    hex);
		yaml_quoted(&md, host, strlen(host));
		strbuf_addch(&md, '\n');
		r = write_in(dir, "meta-data", &md, err);
	}
	if (!r)
		r = write_in(dir, "user-data", &ud, err);
	strbuf_release(&ud);
	strbuf_release(&md);
	free(own);
	return r;
}

int cloudinit_seed(const struct vm *vm, char **path, struct strbuf *err)
{
	struct strvec av = STRVEC_INIT;
	struct proc_opts o = PROC_OPTS_INIT;
	char *dir, *tmp;
	int r;

	*path = vm_work_path(vm, SEED);
	if (vm->dry_run)
		return 0;
	dir = vm_work_path(vm, ".cidata");
	tmp = vm_work_path(vm, "." SEED ".tmp");
	fs_rm_rf(dir);
	unlink(tmp);
	r = cloudinit_files(vm, dir, err);
	if (!r) {
		strvec_pushl(&av, "xorriso", "-as", "mkisofs", "-quiet", "-o",
			     tmp, "-V", "cidata", "-J", "-r", dir, NULL);
		/* its banner and notes are not ours to print */
		o.stdin_fd = o.stdout_fd = o.stderr_fd = -1;
		r = proc_run(av.v, &o, XORRISO_TIMEOUT_MS);
		if (r) {
			strbuf_addf(err, "cannot make the cloud-init seed (xorriso %s)",
				    r < 0 ? strerror(-r) : "failed");
			r = r < 0 ? r : -EIO;
		}
	}
	if (!r && rename(tmp, *path) < 0) {
		r = -errno;
		strbuf_addf(err, "%s: %s", *path, strerror(-r));
	}
	if (r) {
		unlink(tmp);
		free(*path);
		*path = NULL;
	}
	fs_rm_rf(dir);
	strvec_clear(&av);
	free(dir);
	free(tmp);
	return r;
}
