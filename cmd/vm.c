/*
 * vm: drive QEMU virtual machines from one line of chained verbs.
 *
 *   vm [options] [--] [@]verb [args...] [@verb [args...]]...
 */
#include "vm.h"
#include "net/download.h"
#include "net/ociref.h"

#include "host/backup.h"
#include "qemu/runstate.h"
#include "vm/launch.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef VM_VERSION
#define VM_VERSION "0.1"
#endif
#ifndef VM_DATADIR
#define VM_DATADIR "/usr/local/share/vm"
#endif

static const char *const create_opts[] = { "base=", "inplace", "sha256=",
					   NULL };
static const char *const run_opts[] = { "inplace", "restore-last", "sha256=",
					NULL };
static const char *const stop_opts[] = { "save", NULL };
static const char *const backup_opts[] = { "full", NULL };
static const char *const restore_opts[] = { "inplace", "trust-snapshot",
					    NULL };

static const struct verb verbs[] = {
	{ "create", cmd_create, 1, 2, VERB_LOCK | VERB_MKDIR | VERB_DISKS,
	  "NAME [ISO]",
	  "make a new VM here: settings, empty disks, UEFI variables",
	  create_opts,
	  "NAME\tthe VM's name: letters, digits, '.', '_', '-'\n"
	  "ISO\tthe installer it boots first: a file or an http(s) URL\n",
	  "vm -c 4 -m 4G -D VIRT=20G @create web1 debian-12.iso" },
	{ "run", cmd_run, 0, 1, VERB_LOCK | VERB_DEFAULT | VERB_DISKS, "[ISO]",
	  "boot the VM in the foreground (the first boot starts from its ISO)",
	  run_opts,
	  "ISO\tboot this ISO instead of the one @create was given\n",
	  "vm -f tcp::2222-:22 @run" },
	{ "start", cmd_start, 0, 1, VERB_LOCK | VERB_DISKS, "[ISO]",
	  "boot the VM in the background; return once it is up", run_opts,
	  "ISO\tboot this ISO instead of the one @create was given\n",
	  "vm @start @ssh uptime" },
	{ "stop", cmd_stop, 0, 1, 0, "[SECS]",
	  "ACPI power-down, after SECS (60) QMP quit, then kill; --save: keep RAM",
	  stop_opts,
	  "SECS\thow long the guest has to power off before QEMU is told to quit\n",
	  "vm @stop --save" },
	{ "kill", cmd_kill, 0, 0, 0, "", "end the VM's QEMU at once", NULL,
	  "", "vm @kill" },
	{ "status", cmd_status, 0, 0, VERB_ANSWER, "",
	  "state, pid, uptime, sockets, last job, snapshots; exit 3 when stopped",
	  NULL, "", "vm --json @status" },
	{ "ssh", cmd_ssh, 0, -1, VERB_RAWARGS | VERB_NOJSON, "[CMD...]",
	  "ssh to the guest through its port-22 forward (exit status: CMD's)",
	  NULL,
	  "CMD\ta command to run in the guest (none: an interactive login)\n",
	  "vm @ssh uname -a" },
	{ "console", cmd_console, 0, 0, VERB_NOJSON, "",
	  "attach to the serial console (Ctrl-] detaches); shared by many",
	  NULL, "", "vm @console" },
	{ "monitor", cmd_monitor, 1, -1, VERB_RAWARGS, "CMD...",
	  "run an HMP command (--json: a QMP command) and print the answer",
	  NULL, "CMD\tan HMP command, or with --json a QMP one\n",
	  "vm @monitor info status" },
	{ "job", cmd_job, 1, 1, VERB_LOCK | VERB_DISKS, "NAME",
	  "run NAME.job in a rescue guest with the VM's disks (.pre/.post on the host)",
	  NULL,
	  "NAME\tthe job: NAME.job here, or in vm's jobs directory\n",
	  "vm @job add-ssh-keys" },
	{ "backup", cmd_backup, 0, 2, VERB_LOCK | VERB_DISKS | VERB_LIVE, "[NAME [DESCRIPTION]]",
	  "snapshot the VM, running or not, into backups/NAME.tar.gz and move LAST",
	  backup_opts,
	  "NAME\tthe snapshot's name (the next free S0, S1, ... when none)\n"
	  "DESCRIPTION\tone line kept with it, shown by @snapshots\n",
	  "vm @backup --full base \"before the upgrade\"" },
	{ "restore", cmd_restore, 0, 1, VERB_LOCK | VERB_DISKS, "[NAME]",
	  "replace the working files with a snapshot (LAST, NAME, a URL or a registry's image), verified first",
	  restore_opts,
	  "NAME\ta snapshot in backups/, LAST (the default), an http(s) URL, or REGISTRY/REPOSITORY[:TAG] (pulled first)\n",
	  "vm @restore S2 @run" },
	{ "snapshots", cmd_snapshots, 0, 0, 0, "",
	  "list the snapshots with time, size, description; LAST marked",
	  NULL, "", "vm @snapshots" },
	{ "forget", cmd_forget, 1, 1, VERB_LOCK, "NAME",
	  "delete a snapshot (not LAST); its children get what they need of it",
	  NULL, "NAME\tthe snapshot to delete\n", "vm @forget S1" },
	{ "pull", cmd_pull, 1, 1, VERB_LOCK | VERB_MKDIR | VERB_DISKS, "REF",
	  "bring an image @push made into backups/; no VM here: make it from the image",
	  NULL,
	  "REF\tthe image: REGISTRY/REPOSITORY[:TAG] or ...@sha256:DIGEST\n",
	  "vm -d build @pull registry.example.com:5000/ci/golden:v1 @job test" },
	{ "push", cmd_push, 1, 2, 0, "REF [NAME]",
	  "publish LAST (or NAME) with its chain to a container registry; only what it lacks goes",
	  NULL,
	  "REF\tthe image: REGISTRY/REPOSITORY[:TAG] (TAG latest when none)\n"
	  "NAME\tthe snapshot to push (LAST when none)\n",
	  "vm @push registry.example.com:5000/ci/golden:v1" },
	{ "verify", cmd_verify, 0, 1, 0, "[NAME]",
	  "check snapshots (or NAME) end to end: archives, digests, parents",
	  NULL, "NAME\tone snapshot (all of them when none)\n",
	  "vm @verify" },
	{ "last", cmd_last, 1, 1, VERB_LOCK, "NAME",
	  "point LAST at snapshot NAME", NULL,
	  "NAME\tthe snapshot LAST is to name\n", "vm @last S1" },
	{ "inspect", cmd_inspect, 0, 1, VERB_LOCK | VERB_DISKS, "[PATH]",
	  "show the OSes and filesystems on the disks, or print file PATH (libguestfs, read-only)",
	  NULL,
	  "PATH\tan absolute path in the guest's system, printed as it is\n",
	  "vm @inspect /etc/os-release" },
	{ "destroy", cmd_destroy, 0, 0, VERB_LOCK | VERB_DISKS, "",
	  "remove the working files (disks, logs); keep settings and snapshots",
	  NULL, "", "vm @destroy" },
	/* @inspect's libguestfs half, in a process group of its own */
	{ "inspect-worker", cmd_inspect_worker, 3, -1,
	  VERB_HIDDEN | VERB_NOVM, "ACCEL json|text PATH|- FMT=DISK...", "",
	  NULL, "", NULL },
};
#define NVERBS (sizeof(verbs) / sizeof(verbs[0]))

enum {
	OPT_NO_KEEP_CD = 256, OPT_NO_UEFI, OPT_NO_NETDEV, OPT_USE_TMPDIR,
	OPT_INPLACE, OPT_NO_TMPDIR, OPT_ACCEL, OPT_DRY_RUN, OPT_JSON, OPT_SHA256,
	OPT_BOOT_TIMEOUT, OPT_BASE, OPT_FULL, OPT_TRUST_SNAPSHOT,
	OPT_RESTORE_LAST,
	/* from here: options that only go after a verb that takes them */
	OPT_VERB_ONLY = 512, OPT_SAVE = OPT_VERB_ONLY,
};

struct opt_desc {
	int val;
	const char *name;
	const char *arg;	/* NULL: no argument */
	const char *key;	/* setting it sets, or NULL */
	const char *fixed;	/* value for a flag */
	const char *help;
};

static const struct opt_desc opts[] = {
	{ 'D', "disks", "TYPE=SIZE,..", "vm.disks", NULL,
	  "disks @create makes; TYPE is AHCI, NVME, SCSI or VIRT; '' for none (AHCI=30G)" },
	{ 'H', "host", "ADDR", "vm.host", NULL,
	  "address the SPICE display listens on (127.0.0.1)" },
	{ 'S', "sockets", "N", "vm.sockets", NULL, "CPU sockets (1)" },
	{ 'a', "arch", "ARCH", "vm.arch", NULL,
	  "guest architecture, runs qemu-system-ARCH (x86_64)" },
	{ OPT_BASE, "base", "IMAGE", "vm.base", NULL,
	  "@create: disk 0 is a qcow2 overlay on IMAGE (path or URL), never written" },
	{ 'c', "cores", "N", "vm.cores", NULL, "CPU cores per socket (2)" },
	{ 'd', "hostdir", "DIR", NULL, NULL,
	  "the VM's directory (the current one)" },
	{ 'f', "forward", "RULE", "vm.forwards", NULL,
	  "network forward, e.g. tcp::5555-:22; repeat for more, empty resets" },
	{ 'i', "image", "TYPE=[FMT=]PATH", "vm.images", NULL,
	  "attach an existing image, booted first (TYPE also CDROM); repeatable" },
	{ 'k', "keep-cd", NULL, "vm.keep_cd", "yes",
	  "keep the ISO attached after the first boot" },
	{ OPT_NO_KEEP_CD, "no-keep-cd", NULL, "vm.keep_cd", "no",
	  "detach the ISO after the first boot (default)" },
	{ 'm', "memory", "SIZE", "vm.memory", NULL, "guest memory (2G)" },
	{ 'n', "no-colors", NULL, NULL, NULL,
	  "no colours (also with NO_COLOR or when not a terminal)" },
	{ 'p', "port", "PORT", "vm.port", NULL,
	  "SPICE port (5900); empty: no SPICE, headless" },
	{ 'q', "quiet", NULL, NULL, NULL, "print only errors" },
	{ 'r', "rescue", "NAME", "vm.rescue", NULL,
	  "use the rescue profile [rescue.NAME]" },
	{ 's', "share", "ID:[rw:]DIR", "vm.shares", NULL,
	  "9p share, read-only unless rw:; repeatable, empty resets" },
	{ 't', "timeout", "SECS", "vm.timeout", NULL,
	  "stop a job (or @run) after SECS; also 5m, 1h (none)" },
	{ 'u', "uefi", NULL, "vm.uefi", "yes", "boot with UEFI (default)" },
	{ OPT_NO_UEFI, "no-uefi", NULL, "vm.uefi", "no",
	  "boot with BIOS (Legacy/CSM)" },
	{ OPT_NO_NETDEV, "no-netdev", NULL, "vm.netdev", "no",
	  "no network card" },
	{ OPT_USE_TMPDIR, "use-tmpdir", NULL, "vm.use_tmpdir", "yes",
	  "working files in a private directory under $TMPDIR (default)" },
	{ OPT_INPLACE, "inplace", NULL, "vm.use_tmpdir", "no",
	  "working files in the VM's directory itself" },
	{ OPT_NO_TMPDIR, "no-tmpdir", NULL, "vm.use_tmpdir", "no",
	  "same as --inplace" },
	{ OPT_ACCEL, "accel", "auto|kvm|tcg", "vm.accel", NULL,
	  "accelerator; auto probes KVM and falls back to TCG (auto)" },
	{ OPT_BOOT_TIMEOUT, "boot-timeout", "SECS", "rescue.boot_timeout",
	  NULL, "how long a job's rescue, or @start's guest, may take to be up (120)" },
	{ OPT_FULL, "full", NULL, "vm.full_every", "1",
	  "@backup: a full snapshot, not one on LAST (same as full_every = 1)" },
	{ OPT_DRY_RUN, "dry-run", NULL, NULL, NULL,
	  "print the commands, run and change nothing" },
	{ OPT_RESTORE_LAST, "restore-last", NULL, NULL, NULL,
	  "@run, @start: restore LAST when the working files a VM keeps in place are gone" },
	{ OPT_SAVE, "save", NULL, NULL, NULL,
	  "@stop: save the guest's RAM into WORKDIR; @run or @start resumes it" },
	{ OPT_TRUST_SNAPSHOT, "trust-snapshot", NULL, NULL, NULL,
	  "@restore: apply a snapshot's settings that reach the host even when you did not make it here" },
	{ OPT_SHA256, "sha256", "HEX", "vm.bootimage_sha256", NULL,
	  "SHA-256 the ISO given by URL must have (or URL#sha256=HEX)" },
	{ OPT_JSON, "json", NULL, NULL, NULL,
	  "one JSON line per step on stdout (verb, args, status, result)" },
	{ 'v', "version", NULL, NULL, NULL, "print the version and exit" },
	{ 'h', "help", NULL, NULL, NULL, "print this help and exit" },
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static const struct opt_desc *find_opt(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < NOPTS; i++)
		if (strlen(opts[i].name) == len &&
		    !strncmp(opts[i].name, name, len))
			return &opts[i];
	return NULL;
}

/* "@stop [--save] [SECS]": the verb, its options and its arguments. */
static void verb_head(const struct verb *v, struct strbuf *sb)
{
	size_t k;

	strbuf_addf(sb, "@%s", v->name);
	for (k = 0; v->opts && v->opts[k]; k++) {
		size_t len = strcspn(v->opts[k], "=");
		const struct opt_desc *o = find_opt(v->opts[k], len);

		strbuf_addf(sb, " [--%.*s%s%s]", (int)len, v->opts[k],
			    o && o->arg ? "=" : "", o && o->arg ? o->arg : "");
	}
	if (*v->usage)
		strbuf_addf(sb, " %s", v->usage);
}

/* An option's help without the "@verb: " it has among vm's options. */
static const char *own_help(const char *help)
{
	const char *colon = strstr(help, ": ");

	return help[0] == '@' && colon ? colon + 2 : help;
}

/* vm help VERB, vm @VERB --help: what it does, takes and an example. */
static void verb_help(const struct verb *v, FILE *f)
{
	struct strbuf head = STRBUF_INIT;
	const char *a;
	size_t k;

	verb_head(v, &head);
	fprintf(f, "Usage: vm [options] %s\n%c%s.\n", head.buf,
		toupper((unsigned char)v->help[0]), v->help + 1);
	if (*v->args)
		fprintf(f, "\nArguments:\n");
	for (a = v->args; *a;) {
		size_t nl = strcspn(a, "\n"), tab = strcspn(a, "\t");

		/* "NAME\tits meaning"; a line without a tab is all name */
		if (tab > nl)
			tab = nl;
		fprintf(f, "  %-14.*s %.*s\n", (int)tab, a,
			(int)(nl - tab - (tab < nl)), a + tab + (tab < nl));
		a += nl + (a[nl] == '\n');
	}
	fprintf(f, "\nOptions:\n");
	for (k = 0; v->opts && v->opts[k]; k++) {
		size_t len = strcspn(v->opts[k], "=");
		const struct opt_desc *o = find_opt(v->opts[k], len);
		char name[64];

		if (!o)
			continue;
		snprintf(name, sizeof(name), "--%s%s%s", o->name,
			 o->arg ? "=" : "", o->arg ? o->arg : "");
		fprintf(f, "  %-26s %s\n", name, own_help(o->help));
	}
	fprintf(f, "  %-26s %s\n", "-h, --help", "print this help and exit");
	if (v->example)
		fprintf(f, "\nExample:\n  %s\n", v->example);
	fprintf(f, "\nThe options of vm itself (vm -h) go before the first verb.\n");
	strbuf_release(&head);
}

static void usage(FILE *f)
{
	size_t i;

	fprintf(f,
		"Usage: vm [options] [--] [@]verb [args...] [@verb [args...]]...\n"
		"Drive one QEMU virtual machine per directory; verbs run left to right\n"
		"and the chain stops at the first failure.  'vm' alone is '@run'.\n"
		"\nVerbs (vm help VERB, or vm @VERB --help, says more):\n");
	for (i = 0; i < NVERBS; i++) {
		struct strbuf head = STRBUF_INIT;

		if (verbs[i].flags & VERB_HIDDEN)
			continue;
		verb_head(&verbs[i], &head);
		if (head.len > 30)
			fprintf(f, "  %s\n  %-30s %s\n", head.buf, "",
				verbs[i].help);
		else
			fprintf(f, "  %-30s %s\n", head.buf, verbs[i].help);
		strbuf_release(&head);
	}
	fprintf(f, "\nOptions:\n");
	for (i = 0; i < NOPTS; i++) {
		char head[64];

		if ((opts[i].val >= OPT_VERB_ONLY))
			continue;
		if (opts[i].val < 256)
			snprintf(head, sizeof(head), "-%c, --%s%s%s",
				 opts[i].val, opts[i].name,
				 opts[i].arg ? "=" : "",
				 opts[i].arg ? opts[i].arg : "");
		else
			snprintf(head, sizeof(head), "    --%s%s%s",
				 opts[i].name, opts[i].arg ? "=" : "",
				 opts[i].arg ? opts[i].arg : "");
		fprintf(f, "  %-28s %s\n", head, opts[i].help);
	}
	fprintf(f,
		"\nvm images [NAME] lists the images @create NAME IMAGE knows by name.\n"
		"vm serve [--listen=ADDR:PORT]... [DIR...] serves the VMs under DIR over\n"
		"HTTP: their state, console and Prometheus metrics (vm serve --help).\n"
		"\nSettings: /etc/vm.conf < $XDG_CONFIG_HOME/vm.conf < a job's NAME.rescue\n"
		"< HOSTDIR/guest.conf < options.  ISOs and images may be URLs.\n"
		"A verb's options (--full, --save, ...) may follow it; --base, --full,\n"
		"--inplace, --restore-last, --sha256 and --trust-snapshot may also come\n"
		"before the first verb, and then hold for the whole chain.\n"
		"Exit status: 0 ok, 1 failure, 2 usage, 3 @status: not running,\n"
		"a job's own status, 128+N on signal N.\n"
		"Examples:\n"
		"  vm -c 8 -m 4G @create WS10 /iso/image.iso @job prepare @run @backup\n"
		"  vm --no-uefi --timeout=30 @restore S2 @job add-ssh-keys\n"
		"See vm(1), README.md and docs/.\n");
}

static char *find_cache_dir(void)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

	if (xdg && *xdg)
		return xasprintf("%s/vm", xdg);
	return xasprintf("%s/.cache/vm", home && *home ? home : "/tmp");
}

static void print_step(const struct chain_step *s)
{
	struct strbuf sb = STRBUF_INIT;
	int i;

	strbuf_addf(&sb, "Executing command: %s(", s->verb->name);
	for (i = 0; i < s->argc; i++) {
		const char *p;

		strbuf_addstr(&sb, i ? ", '" : "'");
		for (p = s->argv[i]; *p; p++) {
			if (*p == '\'' || *p == '\\')
				strbuf_addch(&sb, '\\');
			strbuf_addch(&sb, *p);
		}
		strbuf_addch(&sb, '\'');
	}
	strbuf_addstr(&sb, ")...");
	log_step("%s", sb.buf);
	strbuf_release(&sb);
}

/*
 * A verb that needs the disks, or the lock, meets a running VM: say so
 * in one line with the way out.  True when it was running.
 */
static bool refuse_running(struct vm_ctx *ctx)
{
	struct strbuf err = STRBUF_INIT;
	struct runstate rs;
	bool up = runstate_running(ctx->vm.hostdir, &rs, &err) == 1;

	if (up) {
		log_error("%s is running (pid %ld%s): stop it first with vm @stop (or @kill)",
			  ctx->vm.conf.name, (long)rs.pid,
			  rs.background ? ", started by @start" : "");
		runstate_release(&rs);
	}
	strbuf_release(&err);
	return up;
}

/*
 * "vm snapshot" boots an ISO named snapshot only if there is one: a bare
 * first word that is no file, no URL and no verb is a typo.
 */
static bool bare_word_typo(int argc, char **argv,
			   const struct chain_step *steps, struct strbuf *err)
{
	const char *w = argc > 0 ? argv[0] : NULL;

	if (!w || steps[0].argc == 0 || steps[0].argv[0] != w ||
	    strchr(w, '/') || strstr(w, "://") || fs_exists(w) ||
	    fs_is_symlink(w))
		return false;
	strbuf_addf(err, "'%s' is neither a file nor a command", w);
	chain_suggest(verbs, NVERBS, w, err);
	return true;
}

/* The first directory of path that does not exist (path is absolute). */
static char *top_missing(const char *path)
{
	char *top = xstrdup(path), *up = xstrdup(path), *slash;

	while ((slash = strrchr(up, '/')) && slash != up) {
		*slash = '\0';
		if (fs_exists(up))
			break;
		free(top);
		top = xstrdup(up);
	}
	free(up);
	return top;
}

/*
 * A failed @create leaves no trace: what this run made for HOSTDIR goes,
 * unless a VM (its guest.conf) came of it.
 */
static void unmake_hostdir(struct vm_ctx *ctx)
{
	char *conf;

	if (!ctx->made_dir)
		return;
	conf = vm_host_path(&ctx->vm, "guest.conf");
	if (!fs_exists(conf) && !fs_is_symlink(conf))
		fs_rm_rf(ctx->made_dir);
	free(conf);
}

/*
 * A directory with no VM in it: no guest.conf, no snapshots, no working
 * files.  Only @create makes one there, and @restore of a snapshot by
 * URL; anything else is told so (exit 2, 4 for @status, as systemctl
 * has for no such unit) before anything is written, the lock included.
 */
static int no_vm_here(const struct vm_ctx *ctx,
		      const struct chain_step *first)
{
	static const char *const marks[] = { "guest.conf", "backups",
					     ".work", "disk-0.img", NULL };
	size_t i;

	if (first->verb->flags & VERB_MKDIR)
		return 0;
	if (!strcmp(first->verb->name, "restore") && first->argc > 0 &&
	    (download_is_url(first->argv[0]) ||
	     oci_ref_is_remote(first->argv[0])))
		return 0;
	for (i = 0; marks[i]; i++) {
		char *p = xasprintf("%s/%s", ctx->vm.hostdir, marks[i]);
		bool there = fs_exists(p) || fs_is_symlink(p);

		free(p);
		if (there)
			return 0;
	}
	log_error("no VM in %s (make one with vm @create NAME)",
		  ctx->vm.hostdir);
	return !strcmp(first->verb->name, "status") ? 4 : 2;
}

/* Whether the VM runs (its vm then holds the lock). */
static bool vm_is_running(struct vm_ctx *ctx)
{
	struct strbuf err = STRBUF_INIT;
	struct runstate rs;
	bool up = runstate_running(ctx->vm.hostdir, &rs, &err) == 1;

	if (up)
		runstate_release(&rs);
	strbuf_release(&err);
	return up;
}

void say_recovered(const struct vm_ctx *ctx, int n)
{
	if (n > 0)
		log_warn("%s: committed into its disks the %d overlay(s) an interrupted live backup left",
			 ctx->vm.conf.name, n);
}

/* With the lock: what a killed live @backup left committed
 * (vm_backup_recover); 0, or 1 (said) when that failed. */
static int recover_live(struct vm_ctx *ctx)
{
	struct strbuf err = STRBUF_INIT;
	int n = vm_backup_recover(&ctx->vm, &err);

	if (n < 0)
		log_error("%s", err.buf);
	say_recovered(ctx, n);
	strbuf_release(&err);
	return n < 0;
}

/* HOSTDIR made or found, settings loaded, the lock taken: exit code. */
static int open_vm(struct vm_ctx *ctx, const char *hostdir_opt,
		   const struct strvec *cli, const struct chain_step *steps,
		   int nsteps)
{
	struct strbuf err = STRBUF_INIT;
	bool need_lock = false, live = true;
	int i, ret = 1;

	vm_resolve_hostdir(hostdir_opt, &ctx->vm.hostdir);
	if (!fs_is_dir(ctx->vm.hostdir)) {
		if (!(steps[0].verb->flags & VERB_MKDIR) || ctx->vm.dry_run) {
			log_error("VM directory %s does not exist", ctx->vm.hostdir);
			goto out;
		}
		int r;

		ctx->made_dir = top_missing(ctx->vm.hostdir);
		r = fs_mkdir_p(ctx->vm.hostdir, 0755);
		if (r) {
			log_error("cannot make VM directory %s: %s", ctx->vm.hostdir,
				  strerror(-r));
			goto out;
		}
	}
	if (vm_load_conf(&ctx->vm, cli, &err)) {
		log_error("%s", err.buf);
		ret = err.len && strstr(err.buf, "option ") == err.buf ? 2 : 1;
		goto out;
	}
	/* (after the options, whose errors come first) */
	ret = no_vm_here(ctx, &steps[0]);
	if (ret)
		goto out;
	ret = 1;
	for (i = 0; i < nsteps; i++)
		if (steps[i].verb->flags & VERB_LOCK) {
			need_lock = true;
			if (!(steps[i].verb->flags & VERB_LIVE))
				live = false;
		}
	if (need_lock && !ctx->vm.dry_run) {
		int r = vm_lock(&ctx->vm);

		/*
		 * Whoever holds the lock owns a directory two @create made at
		 * once: without it, remove nothing.
		 */
		if (r) {
			free(ctx->made_dir);
			ctx->made_dir = NULL;
		}
		if (r == -EBUSY && live && vm_is_running(ctx)) {
			/* its vm holds the lock: each step asks it */
			r = 0;
		} else if (r == -EBUSY) {
			if (!refuse_running(ctx))
				log_error("VM in %s is busy: another vm is using it",
					  ctx->vm.hostdir);
			goto out;
		} else if (r) {
			log_error("cannot lock %s/.lock: %s", ctx->vm.hostdir,
				  strerror(-r));
			goto out;
		}
		/* a VM that runs holds its lock: a record left now is stale */
		if (ctx->vm.lock_fd >= 0)
			runstate_stale(ctx->vm.hostdir, true);
	}
	if (vm_find_workdir(&ctx->vm, &err)) {
		log_error("%s", err.buf);
		goto out;
	}
	if (ctx->vm.lock_fd >= 0 && ctx->vm.workdir && recover_live(ctx))
		goto out;
	ret = 0;
out:
	strbuf_release(&err);
	return ret;
}

void vm_ctx_init(struct vm_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	vm_init(&ctx->vm);
	ctx->opt_words = (struct strvec)STRVEC_INIT;
}

void vm_ctx_release(struct vm_ctx *ctx)
{
	vm_release(&ctx->vm);
	free(ctx->made_dir);
	strvec_clear(&ctx->opt_words);
}

void say_dry(struct vm_ctx *ctx, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	if (ctx->result)
		report_push_str(ctx->result, "dry_run", sb.buf);
	else
		printf("%s\n", sb.buf);
	strbuf_release(&sb);
}

void say_restored(struct vm_ctx *ctx, const char *name, long long t0,
		  uint64_t size)
{
	long long ms = proc_now_ms() - t0;
	char sz[32];

	report_set_str(ctx->result, "workdir", ctx->vm.workdir);
	report_set(ctx->result, "seconds",
		   json_object_new_double((double)ms / 1000));
	/* the archives' size (a chain's are one), as the bar counts */
	log_size(sz, sizeof(sz), size);
	log_info("restored %s from snapshot %s (%s read) in %lld.%01lld s (working files in %s)",
		 ctx->vm.conf.name, name, sz, ms / 1000, ms % 1000 / 100,
		 ctx->vm.workdir);
}

int start_qemu(struct vm_ctx *ctx, const struct strvec *argv,
	       const char *prefix, const int keep[2], pid_t *pid, char **errlog,
	       const char *doing, struct strbuf *err)
{
	char *dry;
	int r;

	r = launch_start(&ctx->vm, argv, prefix, keep, pid, errlog, &dry,
			 err);
	if (dry) {
		say_dry(ctx, "%s", dry);
		free(dry);
		return 1;
	}
	if (r)
		log_error("cannot %s %s: %s", doing, ctx->vm.conf.name,
			  err->buf);
	return r;
}

/*
 * --json: one line per step on fd (the real stdout; vm's own stdout is
 * stderr by then), {"verb", "args", "status", "result"[, "error"]}.
 */
static int print_result(int fd, const struct chain_step *s, int status,
			struct json_object *result)
{
	int r = report_write_step(fd, s->verb->name, s->argv, s->argc,
				  status, s->verb->flags & VERB_ANSWER, result);

	if (r)
		log_error("cannot write the result of @%s to stdout: %s",
			  s->verb->name, strerror(-r));
	return r;
}

/*
 * With --json only the results go to stdout: keep the real one for them
 * and point fd 1 at stderr, so nothing else (our messages, dry-run lines,
 * QEMU, scripts, job logs) can land among them.  The fd, or -1.
 */
static int json_stdout(void)
{
	int fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);

	if (fd < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
		log_error("--json: cannot set up stdout: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* What the options before the first verb say. */
struct options {
	struct strvec cli;	/* settings: triples for vm_settings_load */
	const char *hostdir;	/* -d, or NULL */
	bool no_colors;
};

/*
 * An option that holds for the run, given before the first verb or after
 * a verb that takes it: a setting for vm_settings_load, or a flag.
 */
static void set_option(const struct opt_desc *o, const char *arg,
		       struct vm_ctx *ctx, struct options *op)
{
	switch (o->val) {
	case OPT_TRUST_SNAPSHOT:
		ctx->vm.trust_snapshot = true;
		return;
	case OPT_RESTORE_LAST:
		ctx->vm.restore_last = true;
		return;
	default:
		break;
	}
	if (!o->key)
		return;
	if (o->val < 256)
		strvec_pushf(&op->cli, "-%c/--%s", o->val, o->name);
	else
		strvec_pushf(&op->cli, "--%s", o->name);
	strvec_push(&op->cli, o->key);
	strvec_push(&op->cli, o->fixed ? o->fixed : arg);
}

/* "@stop", or "@run, @start": the verbs that take option name. */
static void verbs_taking(const char *name, struct strbuf *sb)
{
	size_t i, k, len = strlen(name);

	for (i = 0; i < NVERBS; i++)
		for (k = 0; verbs[i].opts && verbs[i].opts[k]; k++)
			if (strcspn(verbs[i].opts[k], "=") == len &&
			    !strncmp(verbs[i].opts[k], name, len))
				strbuf_addf(sb, "%s@%s", sb->len ? ", " : "",
					    verbs[i].name);
}

/* --save before the verbs: it goes after its verb. */
static int verb_only(const struct opt_desc *o)
{
	struct strbuf sb = STRBUF_INIT;

	verbs_taking(o->name, &sb);
	log_init(false);
	log_error("option --%s goes after %s (vm %s --%s)", o->name, sb.buf,
		  sb.buf, o->name);
	strbuf_release(&sb);
	return 2;
}

/* The long option closest to word ("--memroy"), or NULL. */
static const char *near_option(const char *word)
{
	static struct str_near n;
	char *w;
	size_t i;

	n = (struct str_near)STR_NEAR_INIT;
	while (*word == '-')
		word++;
	w = xasprintf("%.*s", (int)strcspn(word, "="), word);
	for (i = 0; i < NOPTS; i++)
		str_near_try(&n, w, opts[i].name, strlen(opts[i].name));
	word = str_near_pick(&n, w);
	free(w);
	return word;
}

/* One option's complaint, as a usage error. */
static int bad_option(const struct opt_desc *o, const char *shortopts,
		      char **argv)
{
	log_init(false);
	if (!o) {
		const char *near = near_option(argv[optind - 1]);
		size_t k;

		/* a long option at the end with no value: getopt says its val */
		for (k = 0; optopt >= 256 && k < NOPTS; k++)
			if (opts[k].val == optopt && opts[k].arg) {
				log_error("option --%s needs a value (see vm -h)",
					  opts[k].name);
				return 2;
			}
		if (optopt && optopt < 256 && optopt != '?')
			log_error("option -%c %s (see vm -h)", optopt,
				  strchr(shortopts, optopt) ? "needs a value" :
							      "is unknown");
		else if (near)
			log_error("bad option '%s' (did you mean --%s?)",
				  argv[optind - 1], near);
		else
			log_error("bad option '%s' (see vm -h)",
				  argv[optind - 1]);
	} else if (o->val < 256) {
		log_error("option -%c/--%s needs a value, not '%s' (write --%s=%s if that is the value)",
			  o->val, o->name, optarg, o->name, optarg);
	} else {
		log_error("option --%s needs a value, not '%s' (write --%s=%s if that is the value)",
			  o->name, optarg, o->name, optarg);
	}
	return 2;
}

/* getopt_long's tables from opts[]. */
static void option_tables(struct option *longopts, struct strbuf *shortopts)
{
	size_t k;

	strbuf_addch(shortopts, '+');
	for (k = 0; k < NOPTS; k++) {
		longopts[k].name = opts[k].name;
		longopts[k].has_arg = opts[k].arg ? required_argument :
						    no_argument;
		longopts[k].flag = NULL;
		longopts[k].val = opts[k].val;
		if (opts[k].val < 256) {
			strbuf_addch(shortopts, opts[k].val);
			if (opts[k].arg)
				strbuf_addch(shortopts, ':');
		}
	}
	memset(&longopts[NOPTS], 0, sizeof(longopts[NOPTS]));
}

/*
 * The options before the first verb.  Returns -1 to go on, or what vm
 * exits with now (0 after -h or -v, 2 for a bad option).
 */
static int parse_options(int argc, char **argv, struct vm_ctx *ctx,
			 struct options *op)
{
	struct option longopts[NOPTS + 1];
	struct strbuf shortopts = STRBUF_INIT;
	bool *json_words = xcalloc((size_t)argc + 1, sizeof(*json_words));
	int c, i, ret = -1;
	size_t k;

	option_tables(longopts, &shortopts);
	opterr = 0;
	while (ret < 0 && (c = getopt_long(argc, argv, shortopts.buf,
					   longopts, NULL)) != -1) {
		const struct opt_desc *o = NULL;

		for (k = 0; k < NOPTS; k++)
			if (opts[k].val == c)
				o = &opts[k];
		if (c == '?' || c == ':' || !o) {
			ret = bad_option(NULL, shortopts.buf, argv);
			break;
		}
		/*
		 * "vm --cores @run" is a missing value, not cores = @run: a
		 * separate word that looks like a verb or an option is
		 * refused; --cores=@x (or -c@x) still says it is meant.
		 */
		if (o->arg && optarg == argv[optind - 1] &&
		    (optarg[0] == '@' || (optarg[0] == '-' && optarg[1]))) {
			ret = bad_option(o, shortopts.buf, argv);
			break;
		}
		switch (c) {
		case 'h':
			usage(stdout);
			ret = 0;
			continue;
		case 'v':
			printf("vm %s\n", VM_VERSION);
			ret = 0;
			continue;
		case 'd':
			op->hostdir = optarg;
			continue;
		case 'n':
			op->no_colors = true;
			continue;
		case 'q':
			ctx->quiet = true;
			continue;
		case OPT_DRY_RUN:
			ctx->vm.dry_run = true;
			continue;
		case OPT_JSON:
			ctx->json = true;
			json_words[optind - 1] = true;
			continue;
		default:
			break;
		}
		if ((o->val >= OPT_VERB_ONLY)) {
			ret = verb_only(o);
			break;
		}
		set_option(o, optarg, ctx, op);
	}
	/* the options again for @start's @run, which reports nothing */
	for (i = 1; ret < 0 && i < optind; i++)
		if (!json_words[i])
			strvec_push(&ctx->opt_words, argv[i]);
	free(json_words);
	strbuf_release(&shortopts);
	return ret;
}

/*
 * An option after verb v that v does not take: one of vm's own (it goes
 * before the first verb), another verb's, or a typo.
 */
static void bad_verb_opt(const struct verb *v, const char *word,
			 struct strbuf *err)
{
	const struct opt_desc *o = NULL;
	struct strbuf others = STRBUF_INIT;
	const char *near;
	size_t i;

	if (word[1] == '-') {
		o = find_opt(word + 2, strcspn(word + 2, "="));
	} else {
		/* -m, or -c4 (a value joined to its short option) */
		for (i = 0; i < NOPTS && !o; i++)
			if (opts[i].val == (unsigned char)word[1] &&
			    (word[2] == '\0' || opts[i].arg))
				o = &opts[i];
	}
	if (o)
		verbs_taking(o->name, &others);
	if (others.len) {
		strbuf_addf(err, "@%s has no option --%s (%s has)", v->name,
			    o->name, others.buf);
	} else if (o) {
		strbuf_addf(err, "%s is an option of vm, not of @%s: put it before the first verb (vm %s ... @%s)",
			    word, v->name, word, v->name);
	} else {
		strbuf_addf(err, "@%s has no option '%s'", v->name, word);
		near = chain_opt_suggest(v, word);
		if (near)
			strbuf_addf(err, " (did you mean --%s?)", near);
		else if ((near = near_option(word)))
			strbuf_addf(err, " (did you mean --%s? it goes before the first verb)",
				    near);
	}
	strbuf_release(&others);
}

/*
 * The options given after the verbs, as if given before them (all but
 * the verb's own flags, such as --save, which the verb reads), and for
 * @start's @run too.
 */
static void verb_options(struct vm_ctx *ctx, struct options *op,
			 const struct chain_step *steps, int nsteps)
{
	int i, k;

	for (i = 0; i < nsteps; i++)
		for (k = 0; k < steps[i].nopts; k++) {
			const struct chain_opt *co = &steps[i].opts[k];
			const struct opt_desc *o =
				find_opt(co->name, strlen(co->name));

			if (!o || (o->val >= OPT_VERB_ONLY))
				continue;
			set_option(o, co->value, ctx, op);
			if (co->value)
				strvec_pushf(&ctx->opt_words, "--%s=%s",
					     co->name, co->value);
			else
				strvec_pushf(&ctx->opt_words, "--%s", co->name);
		}
}

/*
 * "vm help [VERB]": vm's help or a verb's, exit 0; or -1 when the words
 * are not that.
 */
static int help_words(int argc, char **argv)
{
	const struct verb *v;
	struct strbuf err = STRBUF_INIT;

	if (argc < 1 || strcmp(argv[0], "help"))
		return -1;
	if (argc == 1) {
		usage(stdout);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "serve")) {
		char *av[] = { argv[1], (char *)(uintptr_t)"--help", NULL };

		return cmd_serve(2, av);
	}
	v = argc == 2 ? chain_find(verbs, NVERBS, argv[1]) : NULL;
	if (v && !(v->flags & VERB_HIDDEN)) {
		verb_help(v, stdout);
		return 0;
	}
	if (argc > 2) {
		log_error("vm help takes one verb, got %d words", argc - 1);
	} else {
		strbuf_addf(&err, "no verb '%s'", argv[1]);
		chain_suggest(verbs, NVERBS, argv[1], &err);
		log_error("%s (vm -h lists them)", err.buf);
	}
	strbuf_release(&err);
	return 2;
}

/*
 * "vm images [NAME]": the catalogue (cmd/images.c); or -1 when the
 * words are not that.
 */
static int images_words(struct vm_ctx *ctx, int argc, char **argv)
{
	int fd = -1, r;

	if (argc < 1 || strcmp(argv[0], "images"))
		return -1;
	if (argc > 2) {
		log_error("vm images takes at most one image name, got %d words",
			  argc - 1);
		return 2;
	}
	if (ctx->json) {
		fd = json_stdout();
		if (fd < 0)
			return 1;
	}
	ctx->vm.datadir = vm_find_datadir(getenv("VM_DATADIR"), VM_DATADIR);
	r = cmd_images(ctx, argc, argv, fd);
	if (fd >= 0)
		close(fd);
	return r;
}

/* The whole chain checked before anything runs: 0, or 2 (usage). */
static int check_chain(const struct vm_ctx *ctx, int argc, char **argv,
		       struct chain_step **steps, int *nsteps)
{
	struct strbuf err = STRBUF_INIT;
	int i, ret = 0;

	*nsteps = chain_parse_opts(verbs, NVERBS, argc, argv, bad_verb_opt,
				   steps, &err);
	if (*nsteps < 0 || bare_word_typo(argc, argv, *steps, &err)) {
		log_error("%s", err.buf);
		ret = 2;
	}
	for (i = 0; !ret && ctx->json && i < *nsteps; i++)
		if ((*steps)[i].verb->flags & VERB_NOJSON) {
			log_error("@%s has nothing to report in JSON: its output is the guest's own (drop --json)",
				  (*steps)[i].verb->name);
			ret = 2;
		}
	strbuf_release(&err);
	return ret;
}

/* Run the verbs left to right, stopping at the first failure. */
static int run_chain(struct vm_ctx *ctx, const struct chain_step *steps,
		     int nsteps, bool banners, int json_fd)
{
	int i, ret = 0;

	ctx->nsteps = nsteps;
	for (i = 0; i < nsteps; i++) {
		const struct verb *v = steps[i].verb;

		ctx->step = i + 1;
		ctx->cur = &steps[i];
		if (banners)
			print_step(&steps[i]);
		log_clear_error();
		if (ctx->json)
			ctx->result = json_object_new_object();
		if ((v->flags & VERB_DISKS) && !(v->flags & VERB_LIVE) &&
		    refuse_running(ctx))
			ret = 1;
		else
			ret = v->fn(ctx, steps[i].argc, steps[i].argv);
		if (proc_interrupted())
			ret = 128 + proc_interrupted();
		/* a result that cannot be told is a failure */
		if (json_fd >= 0) {
			fflush(stdout);
			if (print_result(json_fd, &steps[i], ret, ctx->result) &&
			    !ret)
				ret = 1;
		}
		json_object_put(ctx->result);
		ctx->result = NULL;
		if (ret == 3 && (v->flags & VERB_ANSWER))
			break;
		/* a hidden verb's caller says what went wrong, in its words */
		if (ret && (v->flags & VERB_HIDDEN))
			break;
		if (ret) {
			if (nsteps > 1)
				log_error("@%s failed (step %d of %d)", v->name,
					  i + 1, nsteps);
			else
				log_error("@%s failed", v->name);
			break;
		}
	}
	return ret;
}

int main(int argc, char **argv)
{
	struct options op = { STRVEC_INIT, NULL, false };
	struct chain_step *steps = NULL;
	struct vm_ctx ctx;
	bool need_vm = false;
	int nsteps = 0, i, ret, json_fd = -1;

	/* vm serve: a server of its own, with options of its own */
	if (argc > 1 && !strcmp(argv[1], "serve")) {
		log_init(false);
		return cmd_serve(argc - 1, argv + 1);
	}
	vm_ctx_init(&ctx);
	ret = parse_options(argc, argv, &ctx, &op);
	if (ret >= 0)
		goto out;
	log_init(op.no_colors);
	/* Machine-readable output must be all that is on stdout. */
	log_set_quiet(ctx.quiet);
	log_set_banners(!ctx.quiet && !ctx.json);
	ctx.color = log_color();
	ret = help_words(argc - optind, argv + optind);
	if (ret < 0)
		ret = images_words(&ctx, argc - optind, argv + optind);
	if (ret >= 0)
		goto out;
	ret = check_chain(&ctx, argc - optind, argv + optind, &steps, &nsteps);
	if (ret)
		goto out;
	/* @VERB --help: that verb's help, and nothing else is done */
	for (i = 0; i < nsteps; i++)
		if (steps[i].help) {
			if (steps[i].verb->flags & VERB_HIDDEN) {
				log_error("unknown command '@%s'",
					  steps[i].verb->name);
				ret = 2;
			} else {
				verb_help(steps[i].verb, stdout);
			}
			goto out;
		}
	verb_options(&ctx, &op, steps, nsteps);
	if (ctx.json) {
		json_fd = json_stdout();
		if (json_fd < 0) {
			ret = 1;
			goto out;
		}
	}
	proc_signals_init();
	ctx.vm.datadir = vm_find_datadir(getenv("VM_DATADIR"), VM_DATADIR);
	ctx.vm.cache_dir = find_cache_dir();
	for (i = 0; i < nsteps; i++)
		if (!(steps[i].verb->flags & VERB_NOVM))
			need_vm = true;
	if (need_vm) {
		ret = open_vm(&ctx, op.hostdir, &op.cli, steps, nsteps);
		if (ret) {
			unmake_hostdir(&ctx);
			/* 2: the command line is wrong, as for chain_parse */
			if (json_fd >= 0 && ret != 2)
				print_result(json_fd, &steps[0], ret, NULL);
			goto out;
		}
	}
	ret = run_chain(&ctx, steps, nsteps, need_vm, json_fd);
	if (ret)
		unmake_hostdir(&ctx);
out:
	if (json_fd >= 0)
		close(json_fd);
	free(steps);
	strvec_clear(&op.cli);
	vm_ctx_release(&ctx);
	return ret;
}
