/* Settings: defaults, INI files (inih), command-line overrides. */
#ifndef VM_CONF_H
#define VM_CONF_H

#include <stdbool.h>
#include <stdint.h>

#include "util/str.h"

/* Where a value came from; a higher layer overrides a lower one. */
enum conf_layer {
	LAYER_DEFAULT = 0,
	LAYER_SYSTEM,	/* /etc/vm.conf */
	LAYER_USER,	/* $XDG_CONFIG_HOME/vm.conf */
	LAYER_JOB,	/* a job's NAME.rescue, while the job runs */
	LAYER_GUEST,	/* HOSTDIR/guest.conf */
	LAYER_CLI,	/* command line */
	LAYER_MAX
};

enum disk_bus { BUS_AHCI, BUS_NVME, BUS_SCSI, BUS_VIRT, BUS_CDROM };

struct disk_spec {
	enum disk_bus bus;
	uint64_t size;		/* bytes, for disks @create makes */
	char *format;		/* NULL: qcow2 (raw for CDROM) */
	char *path;		/* NULL: WORKDIR/disk-N.img */
	bool scratch;		/* writes go to a throw-away overlay */
	/*
	 * Not from the configuration: the planner's base image under a
	 * qcow2 disk, given to QEMU whatever the disk's header names.
	 */
	char *backing;
	char *backing_format;
};

/* A share ID:[rw:]DIR (DIR may hold macros such as @HOSTDIR@). */
struct share_spec {
	char *id;
	char *dir;
	bool rw;
	/*
	 * Not from the configuration: set by the planner for a rw share
	 * whose directory has no user xattrs (mapped-file instead of
	 * mapped-xattr, see qemu_argv_build).
	 */
	bool mapped_file;
};

enum fwd_proto { FWD_TCP, FWD_UDP };

/*
 * A user-networking rule for -netdev and, for a hostfwd rule, its parts.
 * A guestfwd rule keeps only its text.
 */
struct forward_spec {
	char *rule;		/* "hostfwd=tcp::5555-:22", "guestfwd=..." */
	bool guestfwd;		/* the parts below are unset */
	enum fwd_proto proto;
	char *host_addr;	/* "" for every address; IPv6 without [] */
	unsigned host_port;	/* 1-65535 */
	char *guest_addr;	/* "" for the guest's own */
	unsigned guest_port;	/* 1-65535 */
};

/*
 * The settings that hold several items keep them as { T *v; size_t nr; }
 * (conf.c relies on that shape).
 */
struct disk_list {
	struct disk_spec *v;
	size_t nr;
};

struct share_list {
	struct share_spec *v;
	size_t nr;
};

struct forward_list {
	struct forward_spec *v;
	size_t nr;
};

struct path_list {
	char **v;
	size_t nr;
};

enum accel_mode { ACCEL_AUTO, ACCEL_KVM, ACCEL_TCG };
/* guest_agent: freeze the guest's file systems for a live backup */
enum agent_mode { AGENT_AUTO, AGENT_YES, AGENT_NO };
enum rescue_boot { RESCUE_BOOT_KERNEL, RESCUE_BOOT_CDROM };

/*
 * ready: what says the guest is up (to @start, and to systemd for
 * vm@.service).  auto: QEMU answers, then sshd on a forward to 22 when
 * vm knows one to be there; ssh: sshd greets on the forward to 22;
 * tcp: a service accepts on the forward to the guest's port; agent:
 * the guest agent answers.
 */
enum ready_mode { READY_AUTO, READY_SSH, READY_TCP, READY_AGENT };
struct ready_conf {
	enum ready_mode mode;
	unsigned port;		/* READY_TCP: the guest's port */
};

/* One [rescue] profile. */
struct rescue_conf {
	char *iso;
	unsigned cores;
	uint64_t memory;	/* bytes */
	struct forward_list forwards;
	struct share_list shares;
	enum rescue_boot boot;
	unsigned boot_timeout;	/* seconds until STARTED */
	uint64_t job_log_max;	/* bytes of job.log shown and kept */
};

/* [serve]: what `vm serve` listens on and serves (host files only). */
struct serve_conf {
	struct path_list listen;	/* ADDR:PORT, [ADDR6]:PORT */
	struct path_list dirs;		/* each holds VM directories */
	struct path_list query_from;	/* addresses, ADDR/BITS; none: all */
	char *tls_cert;			/* "" or PEM: serve HTTPS */
	char *tls_key;			/* its key (PEM) */
	char *client_ca;		/* "" or PEM: clients need a
					 * certificate it signed */
	struct path_list control_from;	/* who may control; none: no one */
	char *tokens;			/* "" or a file of NAME SHA256-HEX */
};

struct vm_conf {
	char *name;
	char *arch;
	unsigned cores;
	unsigned sockets;
	uint64_t memory;	/* bytes, 16M to 16T */
	struct disk_list disks;	/* WORKDIR/disk-N.img: bus, size, fmt */
	struct disk_list images;	/* extra images: bus, format, path */
	struct forward_list forwards;
	struct share_list shares;
	bool uefi;
	bool keep_cd;
	bool netdev;
	bool use_tmpdir;
	unsigned port;		/* SPICE port; 0: no SPICE */
	char *host;		/* SPICE address */
	enum accel_mode accel;
	enum agent_mode guest_agent;
	struct ready_conf ready;
	unsigned initialize_timeout;	/* seconds up to ready; 0: as
					 * rescue.boot_timeout */
	enum agent_mode cloud_init;	/* a NoCloud seed: auto is with a base */
	unsigned timeout;	/* seconds, 0: none */
	char *bootimage;	/* ISO given to @create: a path or a URL */
	char *bootimage_sha256;	/* its SHA-256 when it came by URL */
	char *base;		/* "" or the image disk 0 lays over (path, URL) */
	char *base_format;	/* its format, as @create found it */
	char *base_sha256;	/* its SHA-256 at @create */
	bool firstboot;
	struct path_list sshkeys;	/* as given: ~ not expanded */
	char *media;
	char *media_mirror;
	char *media_storage;
	char *rescue_profile;	/* "" or NAME of [rescue.NAME] */
	unsigned compress_level;	/* gzip level of snapshots, 1-9 */
	unsigned full_every;	/* a chain holds at most this many; 0: no cap */
	unsigned max_chain;	/* the longest chain @restore URL follows */
	unsigned shutdown_timeout;	/* @stop: seconds of ACPI power-down */
	char *control_group;	/* "" or a group that may control the VM */
	char *ssh_user;		/* @ssh logs in as this user */
	uint64_t download_max;	/* bytes; 0: what the cache can spare */
	uint64_t download_cache_max;	/* the cache's size; 0: no limit */
	unsigned download_timeout;	/* seconds for a whole download */
	char *registry_ca;	/* "" or a CA file for registries' TLS */
	struct path_list registry_insecure;	/* registries over HTTP */
	struct rescue_conf rescue;
	struct serve_conf serve;

	/* Layer each key was last set from, indexed like the key table. */
	unsigned char layer[64];
	/* Layer whose list keys are being filled (for reset-on-new-layer). */
	unsigned char list_layer[64];
};

/* Fill c with the built-in defaults.  Owns its strings until release. */
void conf_init(struct vm_conf *c);
void conf_release(struct vm_conf *c);

/*
 * Set section/key to value from the given layer.  Lists append; an empty
 * value empties the list; the first value from a new layer replaces the
 * older layer's list.  A value that fails changes nothing, and a value
 * is refused when guest.conf could not read it back as written.
 * Returns 0, -ENOENT (unknown section or key) or -EINVAL (bad value);
 * err receives the reason without the key name.
 */
int conf_set(struct vm_conf *c, const char *section, const char *key,
	     const char *value, enum conf_layer layer, struct strbuf *err);

/*
 * A settings file read once: its entries in order, each already checked
 * as conf_set checks it (errors say "file:line: message").  Merging the
 * layers again (a rescue profile, a job's NAME.rescue) applies these
 * entries; the file is not read again.
 */
struct conf_entry {
	char *section, *key, *value;
};

struct conf_file {
	char *path;
	enum conf_layer layer;
	struct conf_entry *v;
	size_t nr, alloc;
};

#define CONF_FILE_INIT { NULL, LAYER_DEFAULT, NULL, 0, 0 }

/*
 * Read path as a settings file of layer (only: the one section it may
 * hold, or NULL).  A missing file is an empty one when optional.
 * Returns 0, -ENOENT (missing, not optional), -EINVAL or -errno with err.
 */
int conf_file_read(struct conf_file *f, const char *path,
		   enum conf_layer layer, const char *only, bool optional,
		   struct strbuf *err);

/* Apply f's entries to c at f's layer (conf_set).  0 or -errno with err. */
int conf_file_apply(const struct conf_file *f, struct vm_conf *c,
		    struct strbuf *err);

/* The last value f gives section.key, or NULL. */
const char *conf_file_value(const struct conf_file *f, const char *section,
			    const char *key);

/*
 * Add section.key = value after f's entries (for a key of one value, it
 * is the one conf_file_value and conf_file_apply see from now on).
 */
void conf_file_add(struct conf_file *f, const char *section,
		   const char *key, const char *value);

void conf_file_release(struct conf_file *f);

/*
 * How many settings files this process has read (parsed): each is read
 * once however often the layers are merged (test_vm counts).
 */
unsigned conf_files_read(void);

/*
 * Load an INI file at the given layer.  A missing file is not an error
 * when optional.  Returns 0, -ENOENT (missing, not optional) or -EINVAL;
 * err receives "file:line: message".
 */
int conf_load_file(struct vm_conf *c, const char *path, enum conf_layer layer,
		   bool optional, struct strbuf *err);

/*
 * Write the settings a VM keeps in guest.conf: its identity (name,
 * arch, disks, uefi, bootimage, firstboot) plus every key that was set at
 * LAYER_GUEST or above, except the ones about a single run (accel,
 * timeout, rescue profile, boot_timeout) when they came from options.
 * Written to path.tmp, fsynced, renamed.
 */
int conf_write_guest(const struct vm_conf *c, const char *path);

/*
 * A snapshot's guest.conf from elsewhere (snap, as read), made data:
 * out gets its entries, except that every setting which reaches the host
 * takes this host's entries (host: this VM's guest.conf as read, maybe
 * empty), in every section, [rescue.PROFILE] ones too.  Reaching the
 * host: shares, forwards, listen addresses, control_group, arch (the
 * QEMU binary), paths of ISOs, keys and media, host policies, netdev,
 * and images or a base that name a local file outside hostdir (or by
 * file://; an image by URL without #sha256=).  The guest's own settings
 * (CPUs, memory, disks, firmware...) stay the snapshot's.  Each setting
 * the snapshot had and did not keep is added to dropped ("shares",
 * "rescue.shares").
 */
void conf_file_keep_host(const struct conf_file *snap,
			 const struct conf_file *host, const char *hostdir,
			 struct conf_file *out, struct strvec *dropped);

/* Write f's entries to path, section by section (fs_write_atomic). */
int conf_file_write(const struct conf_file *f, const char *path);

/*
 * The layer section/key was last set from (LAYER_DEFAULT when never set,
 * or -EINVAL for an unknown key): a job tells a default it may skip from
 * a value the user chose.
 */
int conf_layer_of(const struct vm_conf *c, const char *section,
		  const char *key);

/* Look up the current value of section/key as text (for VM_* exports). */
void conf_each(const struct vm_conf *c,
	       void (*fn)(const char *section, const char *key,
			  const char *value, void *data),
	       void *data);

/*
 * Parse "AHCI=30G,NVME=10G" into specs (the setter of vm.disks; public for
 * the tests).  Returns count or -EINVAL.
 */
int disks_parse(const char *spec, struct disk_spec **out, struct strbuf *err);
/* Parse one -i value TYPE=[FMT=]PATH. */
int image_parse(const char *spec, struct disk_spec *out, struct strbuf *err);
void disk_specs_free(struct disk_spec *d, int n);
/* Fill dst with a copy of src that owns its strings. */
void disk_spec_copy(struct disk_spec *dst, const struct disk_spec *src);
const char *disk_bus_name(enum disk_bus b);

/* Parse ID:[rw:]DIR into its parts, which it owns. */
int share_parse(const char *spec, struct share_spec *out, struct strbuf *err);
void share_spec_release(struct share_spec *s);

/*
 * Parse a forward: [hostfwd=]PROTO:[ADDR]:PORT-[ADDR]:PORT with PROTO tcp
 * or udp and ADDR possibly [IPv6], or guestfwd=RULE (kept as text).  out
 * owns its strings.  Returns 0 or -EINVAL.
 */
int forward_parse(const char *spec, struct forward_spec *out,
		  struct strbuf *err);
void forward_spec_release(struct forward_spec *f);

/*
 * The host port of the first tcp rule in vm.forwards that goes to
 * guest_port (e.g. 22 for ssh), or 0 when there is none.
 */
unsigned conf_forward_host_port(const struct vm_conf *c, unsigned guest_port);

/* The same, of a rule 127.0.0.1 reaches (it listens there, or on every
 * address), or 0. */
unsigned conf_forward_local_port(const struct vm_conf *c, unsigned guest_port);

#endif
