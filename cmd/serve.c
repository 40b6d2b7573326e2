/*
 * vm serve [--listen=ADDR:PORT]... [DIR...]: the VMs under DIR (or the
 * dirs of [serve]) over HTTP until SIGTERM or SIGINT (lib/host/serve.c).
 */
#include "vm.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <systemd/sd-daemon.h>

#include "host/serve.h"

#define SERVE_USAGE "vm serve [--listen=ADDR:PORT]... [DIR...]"

static void serve_usage(FILE *f)
{
	fprintf(f,
		"usage: " SERVE_USAGE "\n"
		"\n"
		"Serve the VMs under each DIR (each subdirectory with a guest.conf,\n"
		"by its name) over HTTP until stopped: GET /v1/vms, /v1/vms/NAME,\n"
		"/v1/vms/NAME/snapshots, /v1/vms/NAME/console?tail=N and /metrics\n"
		"(Prometheus); POST /v1/vms/NAME/start, stop[?timeout=SECS], kill\n"
		"and backup[?name=SNAPSHOT] for the clients control_from and tokens\n"
		"allow.\n"
		"\n"
		"  -l, --listen=ADDR:PORT  listen there ([ADDR6]:PORT; repeat for more);\n"
		"                          default: listen in [serve] of vm.conf,\n"
		"                          127.0.0.1:9180\n"
		"  -h, --help              print this help and exit\n"
		"\n"
		"DIR: default the dirs of [serve]; query_from there limits who may read.\n"
		"\n"
		"Example: vm serve --listen=0.0.0.0:9180 /srv/vms\n");
}

/*
 * o from the settings c, the --listen addresses and DIRs given (none:
 * the settings'), and the sockets systemd passes (into fds).
 */
static void opts_from(struct serve_opts *o, const struct vm_conf *c,
		      const struct strvec *listen, char **dirs, int ndirs,
		      int fds[SERVE_LISTEN_MAX])
{
	int i, nfds;

	o->listen = listen->nr ? listen->v : c->serve.listen.v;
	o->nlisten = listen->nr ? listen->nr : c->serve.listen.nr;
	o->dirs = ndirs ? dirs : c->serve.dirs.v;
	o->ndirs = ndirs ? (size_t)ndirs : c->serve.dirs.nr;
	o->query_from = c->serve.query_from.v;
	o->nquery = c->serve.query_from.nr;
	o->tls_cert = c->serve.tls_cert;
	o->tls_key = c->serve.tls_key;
	o->client_ca = c->serve.client_ca;
	o->control_from = c->serve.control_from.v;
	o->ncontrol = c->serve.control_from.nr;
	o->tokens = c->serve.tokens;
	/* systemd's sockets (vm-serve.socket), when it gives some */
	nfds = sd_listen_fds(1);
	for (i = 0; i < nfds && i < SERVE_LISTEN_MAX; i++)
		fds[i] = SD_LISTEN_FDS_START + i;
	o->fds = fds;
	o->nfds = nfds > 0 ? (size_t)i : 0;
}

/* Serve as o says until SIGINT, SIGTERM or SIGHUP: exit status. */
static int serve_until_signal(const struct serve_opts *o)
{
	struct strbuf err = STRBUF_INIT, bound = STRBUF_INIT;
	struct serve *s = NULL;
	struct rlimit nofile;
	sigset_t stop;
	int sig, ret = 1;

	/* as many connections as the hard limit lets it hold (idle ones
	 * must not lock the others out) */
	if (!getrlimit(RLIMIT_NOFILE, &nofile) && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max > (1u << 20) ? (1u << 20) :
								 nofile.rlim_max;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	/* the server's threads never take these: the wait below does */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGHUP);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (serve_start(o, &s, &bound, &err)) {
		log_error("cannot serve: %s", err.buf);
		goto out;
	}
	strbuf_trim_trailing(&bound);
	for (char *p = bound.buf; (p = strchr(p, '\n'));)
		*p++ = ' ';
	log_info("serving %d VM%s on %s://%s%s", serve_count(s),
		 serve_count(s) == 1 ? "" : "s",
		 *o->tls_cert ? "https" : "http", bound.buf,
		 *o->client_ca ? " (client certificates from client_ca)" : "");
	sd_notifyf(0, "READY=1\nSTATUS=serving on %s", bound.buf);
	while (sigwait(&stop, &sig))
		;
	sd_notify(0, "STOPPING=1");
	log_info("serve: stopped by signal %d", sig);
	/* a backup under way stops, as it would on Ctrl-C */
	proc_set_interrupted(sig);
	ret = 0;
out:
	serve_stop(s);
	strbuf_release(&err);
	strbuf_release(&bound);
	return ret;
}

int cmd_serve(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct strbuf err = STRBUF_INIT;
	struct strvec listen = STRVEC_INIT;
	struct serve_opts o;
	struct vm host;
	struct vm_conf c;
	int fds[SERVE_LISTEN_MAX];
	int opt, ret = 1;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+l:h", longopts, NULL)) != -1) {
		if (opt == 'l') {
			strvec_push(&listen, optarg);
		} else if (opt == 'h') {
			serve_usage(stdout);
			strvec_clear(&listen);
			return 0;
		} else {
			log_error("serve: unknown option '%s' (usage: " SERVE_USAGE ")",
				  argv[optind - 1]);
			strvec_clear(&listen);
			return 2;
		}
	}
	vm_init(&host);
	conf_init(&c);
	if (vm_host_settings(&host, &c, &err)) {
		log_error("%s", err.buf);
		goto out;
	}
	opts_from(&o, &c, &listen, argv + optind, argc - optind, fds);
	if (!o.ndirs || (!o.nlisten && !o.nfds)) {
		log_error("serve: %s (usage: " SERVE_USAGE ")",
			  !o.ndirs ? "no directory to serve: name one, or set dirs in [serve] of vm.conf" :
				     "no address to listen on");
		ret = 2;
		goto out;
	}
	ret = serve_until_signal(&o);
out:
	conf_release(&c);
	vm_release(&host);
	strvec_clear(&listen);
	strbuf_release(&err);
	return ret;
}
