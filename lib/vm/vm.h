/* One VM: its directories, lock, settings and QEMU plan. */
#ifndef VM_VM_H
#define VM_VM_H

#include <stdbool.h>
#include <sys/types.h>

#include "vm/base.h"
#include "conf/conf.h"
#include "qemu/qemu.h"
#include "util/str.h"

/*
 * One VM, as lib/ knows it: its directories, its lock and its merged
 * settings.  What one invocation of vm does with it (output modes, the
 * chain, what this run made) is the command line's, in cmd/.
 */
struct vm {
	struct vm_conf conf;
	char *hostdir;		/* absolute; settings, jobs, backups/ */
	char *workdir;		/* absolute; disks, logs; NULL: none yet */
	bool inplace;		/* workdir == hostdir */
	int lock_fd;
	bool dry_run;		/* plan and say; change nothing */
	bool trust_snapshot;	/* apply a snapshot's settings, sealed or
				 * not (--trust-snapshot) */
	bool restore_last;	/* @run may put LAST back in place of
				 * working files kept in place and gone */
	const char *accel;	/* resolved "kvm"/"tcg", NULL: not yet */
	long host_cpus;		/* online CPUs, learnt with accel; 0: not */
	char *datadir;		/* installed jobs/ and rescue/ */
	char *cache_dir;	/* $XDG_CACHE_HOME/vm */
	const struct strvec *cli;	/* the command-line settings layer */
	/* the system and user settings files, as read once */
	struct conf_file files[2];
	bool host_files_read;
	/* each guest.conf read in this run, known by its inode and mtime */
	struct vm_guest_file **guests;
	size_t nguests;
};

enum { VM_FILE_SYSTEM, VM_FILE_USER, VM_FILES };

void vm_init(struct vm *vm);

/*
 * DATADIR, the directory of jobs/ and rescue/: env (VM_DATADIR) when
 * set; else the build tree vm runs from (its jobs/ and rescue/ beside
 * the binary); else BINDIR/../share/vm of an installed binary, wherever
 * it was installed; else the compiled-in fallback.  Caller frees.
 */
char *vm_find_datadir(const char *env, const char *fallback);

/* True when datadir is a source tree (it has a Makefile), not installed. */
bool vm_datadir_is_tree(const char *datadir);
void vm_release(struct vm *vm);

/*
 * HOSTDIR from -d or the current directory, as its real path (so every
 * name of one VM takes the same lock); for a WORKDIR (it has a .host
 * link and no guest.conf), the HOSTDIR that link names.
 */
int vm_resolve_hostdir(const char *opt, char **hostdir);

/*
 * Take the VM's lock (flock on HOSTDIR/.lock).  -EBUSY when another vm
 * holds it; the fd is kept in vm until release.
 */
int vm_lock(struct vm *vm);

/*
 * Find the existing WORKDIR: HOSTDIR itself in place, else where the
 * HOSTDIR/.work link points when that directory links back.  Sets
 * vm->workdir or leaves it NULL (no link, or its target is gone).  A
 * target that exists but does not name us back is -EXDEV with err set:
 * never a reason to make a new WORKDIR over the old.  Creates nothing.
 */
int vm_find_workdir(struct vm *vm, struct strbuf *err);

/*
 * Create a fresh private WORKDIR (mkdtemp under $TMPDIR, mode 0700) with
 * the .work and .host links, replacing a dangling .work link.
 */
int vm_make_workdir(struct vm *vm);

/*
 * A VM made of images alone (no disks of its own) keeps its disks
 * outside WORKDIR: a WORKDIR that @destroy removed is made anew, with
 * fresh UEFI variables, for the verbs that boot or read it.  1 when one
 * was made, 0 when there is one or the VM is not such a VM (or a dry
 * run), -errno with err.
 */
int vm_workdir_for_images(struct vm *vm, struct strbuf *err);

/* What a UEFI VM needs and this host lacks. */
#define VM_NO_OVMF "UEFI firmware not found (install the ovmf package, or use --no-uefi)"

/*
 * A fresh copy of OVMF's variables template as WORKDIR/efivars.bin
 * (*path, caller frees).  0, or -errno with err ("copy UEFI variables
 * to PATH: ...").
 */
int vm_copy_efivars(const struct vm *vm, char **path, struct strbuf *err);

/*
 * A new private (0700) directory $TMPDIR/vm-XXXXXXXX.tmp, or with
 * --inplace HOSTDIR/.restore-XXXXXXXX.tmp, for work a SIGKILL may leave
 * behind (a restore, a fold, a WORKDIR not yet adopted): marked
 * (VM_MARK) with the HOSTDIR it is for.  It is made as NAME.PID.part.tmp (VM_PART) and
 * renamed once marked.  Caller frees *path.
 */
#define VM_MARK ".restoring"
#define VM_PART ".part.tmp"
int vm_new_marked_dir(const struct vm *vm, char **path);

/*
 * What killed runs left beside mine (a directory marked for this VM, one
 * named NAME.doomed.tmp, VM_DOOMED, or NAME.PID.part.tmp whose PID has
 * ended): removed, but never mine nor the WORKDIR.  The caller holds the VM's lock, so no other run of it is
 * using them.
 */
#define VM_DOOMED ".doomed.tmp"
/*
 * HOSTDIR/.destroyed: @destroy removed the working files a VM keeps in
 * place, so the next @run may put LAST back (they did not vanish).
 */
#define VM_DESTROYED ".destroyed"
void vm_sweep_private(const struct vm *vm, const char *mine);

/*
 * Make dir the VM's WORKDIR: its .host link, then HOSTDIR/.work moved to
 * it atomically.  The old WORKDIR is not removed here.
 */
int vm_adopt_workdir(struct vm *vm, const char *dir);

/*
 * The control_group setting as a gid: (gid_t)-1 when none is set,
 * -ENOENT with err when the group does not exist.
 */
int vm_control_gid(const struct vm *vm, gid_t *gid, struct strbuf *err);

/*
 * Open a socket of the VM's to its control_group: the socket 0660 and
 * WORKDIR 0710, both of that group.  Nothing to do without the setting.
 */
int vm_share_socket(const struct vm *vm, const char *sock, gid_t gid);

/* Path of a file in WORKDIR / HOSTDIR; caller frees. */
char *vm_work_path(const struct vm *vm, const char *name);
char *vm_host_path(const struct vm *vm, const char *name);

/* The files sshkeys names that are there, ~ expanded, into out. */
void vm_key_files(const struct vm *vm, struct strvec *out);

/*
 * A saved state (@stop --save) is bound to the disks it was saved with:
 * vm_saved_bind records each one's size and modification time (WORKDIR's
 * disk-N.img and efivars.bin, local images) in WORKDIR/saved-state.disks
 * once QEMU has ended; vm_saved_check tells whether they are still so:
 * 0 (or no record: a state saved before records were kept), -ESTALE
 * with err naming the first file that changed.  vm_saved_drop removes
 * the state and its record: 1 when there was one.
 */
int vm_saved_bind(struct vm *vm);
int vm_saved_check(struct vm *vm, struct strbuf *err);
int vm_saved_drop(struct vm *vm);

/* Number of disk-N.img files in WORKDIR (0 with no WORKDIR). */
int vm_count_disks(const struct vm *vm);

/*
 * Load every settings layer into vm->conf: defaults, the system file
 * ($VM_SYSTEM_CONFIG or /etc/vm.conf), the user file
 * ($XDG_CONFIG_HOME/vm.conf), HOSTDIR/guest.conf, then the command-line
 * settings in cli (triples: option, "section.key", value).  The system
 * and user files are read once per vm, whatever is loaded again.
 */
int vm_load_conf(struct vm *vm, const struct strvec *cli, struct strbuf *err);

/*
 * The settings a VM whose guest.conf is in confdir has: vm's own
 * (vm_load_conf), or a snapshot's extracted guest.conf; the command
 * line's only with with_cli.  job_file: a job's NAME.rescue (only
 * [rescue]) merged among them, for that job alone, or NULL.  guest.conf
 * is taken as it is now (a step before may have written it), but a file
 * read before and unchanged since (same inode, size and mtime, whatever
 * its name now) is not read again; the system and user files are read
 * once per vm.  c (initialised) gets the result.
 */
int vm_settings_for(struct vm *vm, const char *confdir, bool with_cli,
		    const char *job_file, struct vm_conf *c, struct strbuf *err);

/*
 * The host's settings alone (defaults, the system and the user file: no
 * guest.conf, no command line), as `vm serve` takes them: into c
 * (initialised).
 */
int vm_host_settings(struct vm *vm, struct vm_conf *c, struct strbuf *err);

/*
 * confdir's guest.conf alone (no other layer), typed, read as
 * vm_settings_for reads it: into g (initialised).  -ENOENT (err
 * untouched) when there is none.
 */
int vm_guest_settings(struct vm *vm, const char *confdir, struct vm_conf *g,
		      struct strbuf *err);

/* What the base image checks (base.h) need of vm. */
struct base_env vm_base_env(const struct vm *vm);

/*
 * Change one [vm] key in HOSTDIR/guest.conf alone (not the merged
 * settings, so this run's options are not saved by accident).
 */
int vm_guest_conf_set(struct vm *vm, const char *key, const char *value,
		      struct strbuf *err);

/*
 * Load the settings again, after guest.conf was replaced (a restore):
 * guest.conf is read if it is a file not read before, the system and
 * user files are not.
 */
int vm_reload_conf(struct vm *vm, struct strbuf *err);

/* A local `images` path as an absolute one (relative: to HOSTDIR). */
char *vm_image_file(const struct vm *vm, const char *spec);

/*
 * Where an `images` entry's file is: an absolute path, one relative to
 * HOSTDIR, or a URL's copy in the download cache (fetched if need be).
 * Fails, saying why in err, when the file cannot be read.
 */
int vm_image_path(const struct vm *vm, const char *spec, char **abs,
		  struct strbuf *err);

/*
 * The download options the VM's settings give: its cache, download_max,
 * download_cache_max, download_timeout; nothing fetched in a dry run; a
 * cached copy serves when the server cannot be reached.
 */
struct dl_opts;
void vm_download_opts(const struct vm *vm, struct dl_opts *o);

/*
 * An ISO or image given as a path or a URL ("URL#sha256=HEX" too): a
 * path is returned as it is (absolute); a URL is fetched into the cache
 * (see download_fetch).  want_sha: digest it must have, or NULL.
 * *path is the caller's; *sha256 (may be NULL) gets the digest asked for.
 */
int vm_fetch(const struct vm *vm, const char *spec, const char *want_sha,
	     void (*progress)(void *, uint64_t, uint64_t), void *pdata,
	     char **path, char **sha256, struct strbuf *note,
	     struct strbuf *err);

enum plan_mode { PLAN_RUN, PLAN_RESCUE };

/* A QEMU plan with the storage its strings live in. */
struct vm_plan {
	struct qemu_plan q;
	struct disk_spec *disks;
	int ndisks;
	struct share_spec *shares;
	int nshares;
	struct strvec extra;
	struct strvec forwards;
	struct strvec owned;	/* strings the plan points into */
	char *defaults_file;	/* vm.defaults used, or NULL */
	const char *console_sock;	/* PLAN_RUN: the console vm serves */
	const char *console_log;	/* PLAN_RUN: the log vm keeps */
	const char *control_sock;	/* PLAN_RUN: control vm serves */
	int spice_claim;	/* > 0: the lock that claims q.spice_port */
	unsigned ssh_port;	/* host port to the guest's 22, or 0 */
	bool ssh_auto;		/* that forward is vm's own (launch_prepare) */
	int ssh_claim;		/* > 0: the lock that claims ssh_port */
};

/*
 * Resolve the settings into a QEMU plan: disks in WORKDIR on their
 * buses, extra images, shares with @HOSTDIR@ @MIRROR@ @MEDIA@ @INDIR@
 * @DATADIR@ expanded (a share whose macro is empty is left out; a missing
 * directory is an error), vm.defaults.  Needs vm->accel and a WORKDIR.
 * cdrom: ISO to attach, or NULL.  base: the local file of the base
 * image disk 0 lays over, as base_check_disks found and checked it
 * before (the plan reads and writes no image), or NULL when the VM has
 * none.
 */
int vm_plan_build(struct vm *vm, enum plan_mode mode, const char *cdrom,
		  const char *base, struct vm_plan *plan, struct strbuf *err);
void vm_plan_release(struct vm_plan *plan);

/* Expand the share macros in s; *empty set when a macro had no value. */
char *vm_expand_macros(const struct vm *vm, const char *s, bool *empty);

#endif
