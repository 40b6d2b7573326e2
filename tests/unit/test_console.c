/*
 * Unit tests for lib/console: a stand-in QEMU console socket, two
 * clients, the log with its cap and one rotation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "qemu/console.h"
#include "util/proc.h"
#include "scratch.h"

static int listen_at(const char *path)
{
	struct sockaddr_un a;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	strncat(a.sun_path, path, sizeof(a.sun_path) - 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

static int connect_to(const char *path)
{
	int fd = fs_unix_connect(path, 5000);

	assert_true(fd >= 0);
	return fd;
}

/* 54 bytes each: two fit under the test's cap of 100, three do not */
static void say(int fd, const char *line)
{
	assert_int_equal(strlen(line), 54);
	assert_int_equal(write(fd, line, 54), 54);
}

/* Let the multiplexer do what is pending, for about ms. */
static void pump(struct console_mux *m, int ms)
{
	long long end = proc_now_ms() + ms;

	while (proc_now_ms() < end) {
		struct pollfd p[CONSOLE_MAX_CLIENTS + 2];
		int n = console_mux_pollfds(m, p);

		if (poll(p, (nfds_t)n, 20) > 0)
			console_mux_handle(m, p, n);
	}
}

static void read_some(int fd, struct strbuf *out)
{
	char buf[4096];
	ssize_t n;

	fcntl(fd, F_SETFL, O_NONBLOCK);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		strbuf_add(out, buf, (size_t)n);
}

static void test_two_clients_and_the_log(void **state)
{
	char *qsock = xasprintf("%s/q.sock", tmpdir);
	char *csock = xasprintf("%s/c.sock", tmpdir);
	char *log = xasprintf("%s/console.log", tmpdir);
	char *old = xasprintf("%s/console.log.1", tmpdir);
	struct strbuf a = STRBUF_INIT, b = STRBUF_INIT, q = STRBUF_INIT;
	struct strbuf text = STRBUF_INIT;
	struct console_mux m;
	struct stat st;
	int lq, qemu, ca, cb;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	lq = listen_at(qsock);
	assert_int_equal(console_mux_open(&m, csock, 0600, (gid_t)-1, log,
					  100), 0);
	assert_int_equal(stat(csock, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(console_mux_attach(&m, qsock, 1000), 0);
	qemu = accept(lq, NULL, NULL);
	assert_true(qemu >= 0);
	ca = connect_to(csock);
	cb = connect_to(csock);
	pump(&m, 100);
	assert_int_equal(m.nclients, 2);

	/* output reaches both clients and the log */
	say(qemu, "boot line one........................................\n");
	pump(&m, 100);
	read_some(ca, &a);
	read_some(cb, &b);
	assert_non_null(strstr(a.buf, "boot line one"));
	assert_non_null(strstr(b.buf, "boot line one"));

	/* input from either goes in */
	assert_int_equal(write(cb, "ls\n", 3), 3);
	pump(&m, 100);
	read_some(qemu, &q);
	assert_string_equal(q.buf, "ls\n");

	/* past the cap, the log moves to console.log.1 and starts again */
	assert_int_equal(m.nclients, 2);
	say(qemu, "second line that does not fit........................\n");
	pump(&m, 100);
	assert_int_equal(fs_read_file(old, 4096, &text), 0);
	assert_non_null(strstr(text.buf, "boot line one"));
	strbuf_reset(&text);
	assert_int_equal(fs_read_file(log, 4096, &text), 0);
	assert_null(strstr(text.buf, "boot line one"));
	assert_non_null(strstr(text.buf, "second line"));

	/* a client that leaves does not disturb the others */
	close(ca);
	pump(&m, 100);
	assert_int_equal(m.nclients, 1);
	read_some(cb, &b);
	assert_non_null(strstr(b.buf, "second line"));
	strbuf_reset(&b);
	assert_int_equal(write(qemu, "after\n", 6), 6);
	pump(&m, 100);
	read_some(cb, &b);
	assert_string_equal(b.buf, "after\n");

	/* QEMU's end: the socket goes away */
	close(qemu);
	pump(&m, 50);
	assert_int_equal(m.qemu, -1);
	console_mux_close(&m);
	assert_false(fs_exists(csock));
	close(cb);
	close(lq);
	strbuf_release(&a);
	strbuf_release(&b);
	strbuf_release(&q);
	strbuf_release(&text);
	free(qsock);
	free(csock);
	free(log);
	free(old);
}

static void test_attach_times_out(void **state)
{
	char *csock = xasprintf("%s/c2.sock", tmpdir);
	char *log = xasprintf("%s/c2.log", tmpdir);
	char *none = xasprintf("%s/none.sock", tmpdir);
	struct console_mux m;

	(void)state;
	assert_int_equal(console_mux_open(&m, csock, 0600, (gid_t)-1, log, 0),
			 0);
	assert_int_equal(console_mux_attach(&m, none, 100), -ETIMEDOUT);
	console_mux_close(&m);
	free(csock);
	free(log);
	free(none);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_clients_and_the_log),
		cmocka_unit_test(test_attach_times_out),
	};

	return cmocka_run_group_tests(tests, scratch_group_setup,
				      scratch_group_teardown);
}
