/*
 * @ssh [CMD...]: ssh into the guest through the forward to its port 22,
 * as ssh_user (root), with the private key beside the first sshkeys
 * entry and a known_hosts of the VM's own, so nothing ever prompts.
 * The exit status is the remote command's.
 */
#include "vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu/runstate.h"
#include "vm/launch.h"

/*
 * An sshd answers on 127.0.0.1:port, waited for up to secs: a guest
 * @start returned for (its QMP answered) may still be booting.
 */
static bool ssh_answers(const struct vm_ctx *ctx, unsigned port,
			unsigned secs)
{
	long long end = proc_now_ms() + (long long)secs * 1000;
	bool told = false;

	while (!launch_ssh_banner(port, 1500)) {
		if (proc_now_ms() >= end || proc_interrupted())
			return false;
		if (!told)
			log_info("waiting for %s's sshd on 127.0.0.1:%u (up to %u s)",
				 ctx->vm.conf.name, port, secs);
		told = true;
		usleep(500 * 1000);
	}
	return true;
}

int cmd_ssh(struct vm_ctx *ctx, int argc, char **argv)
{
	struct strbuf err = STRBUF_INIT;
	struct strvec av = STRVEC_INIT;
	struct proc_opts o = PROC_OPTS_INIT;
	struct runstate rs;
	char *key = NULL, *known = NULL;
	unsigned port;
	int i, r, ret = 1;

	r = runstate_running(ctx->vm.hostdir, &rs, &err);
	if (r <= 0 && !ctx->vm.dry_run) {
		log_error("cannot ssh into %s: %s", ctx->vm.conf.name,
			  r < 0 ? err.buf : "it is not running (vm @start)");
		strbuf_release(&err);
		return 1;
	}
	port = r > 0 ? rs.ssh_port : conf_forward_host_port(&ctx->vm.conf, 22);
	if (!port) {
		log_error("cannot ssh into %s: no forward reaches its port 22 (add one: -f tcp::2222-:22; vm adds one itself when a key sshkeys names is there)",
			  ctx->vm.conf.name);
		goto out;
	}
	if (r > 0 && !ctx->vm.dry_run &&
	    !ssh_answers(ctx, port, ctx->vm.conf.rescue.boot_timeout)) {
		log_error("cannot ssh into %s: no SSH server answered on 127.0.0.1:%u in %u s",
			  ctx->vm.conf.name, port,
			  ctx->vm.conf.rescue.boot_timeout);
		goto out;
	}
	if (ctx->vm.conf.sshkeys.nr) {
		char *pub = fs_expand_home(ctx->vm.conf.sshkeys.v[0]);

		if (str_ends_with(pub, ".pub"))
			pub[strlen(pub) - 4] = '\0';
		key = pub;
	}
	known = vm_host_path(&ctx->vm, "known_hosts");
	strvec_pushl(&av, "ssh", "-p", NULL);
	strvec_pushf(&av, "%u", port);
	/* the guest's key is learnt once, then held to: no prompt, no MITM */
	strvec_pushl(&av, "-o", "StrictHostKeyChecking=accept-new", "-o",
		     "BatchMode=yes", "-o", "ConnectTimeout=20", NULL);
	strvec_pushf(&av, "-oUserKnownHostsFile=%s", known);
	/* the key is the VM's whatever port reaches it (vm picks a new
	 * one each run): known by this name, not by [127.0.0.1]:PORT */
	strvec_pushf(&av, "-oHostKeyAlias=vm-%s", ctx->vm.conf.name);
	if (key && fs_exists(key))
		strvec_pushl(&av, "-i", key, "-o", "IdentitiesOnly=yes", NULL);
	strvec_pushf(&av, "%s@127.0.0.1", ctx->vm.conf.ssh_user);
	if (argc > 0)
		strvec_push(&av, "--");
	for (i = 0; i < argc; i++)
		strvec_push(&av, argv[i]);
	if (ctx->vm.dry_run) {
		char *j = strvec_join(&av, " ", true);

		printf("%s\n", j);
		free(j);
		ret = 0;
		goto out;
	}
	fflush(NULL);
	r = proc_run(av.v, &o, -1);
	if (r < 0) {
		log_error("cannot ssh into %s: ssh: %s", ctx->vm.conf.name,
			  r == -ENOENT ? "not found (install openssh-client)" :
			  strerror(-r));
		goto out;
	}
	ret = r;
out:
	runstate_release(&rs);
	strvec_clear(&av);
	strbuf_release(&err);
	free(key);
	free(known);
	return ret;
}
