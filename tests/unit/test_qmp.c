/*
 * Unit tests for lib/qmp: recorded QEMU 7.2 exchanges played back over a
 * socketpair, and what the client sent checked on the other end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qemu/qmp.h"

static const char greeting[] =
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, "
	"\"major\": 7}, \"package\": \"Debian 1:7.2+dfsg-7+deb12u7\"}, "
	"\"capabilities\": [\"oob\"]}}\r\n";
static const char ok[] = "{\"return\": {}}\r\n";
static const char event[] =
	"{\"timestamp\": {\"seconds\": 1764620000, \"microseconds\": 123}, "
	"\"event\": \"RESUME\"}\r\n";
static const char status[] =
	"{\"return\": {\"status\": \"running\", \"singlestep\": false, "
	"\"running\": true}}\r\n";
static const char notfound[] =
	"{\"error\": {\"class\": \"CommandNotFound\", \"desc\": "
	"\"The command nosuch has not been found\"}}\r\n";
static const char hmp[] = "{\"return\": \"VM status: running\\r\\n\"}\r\n";

static int sv[2];

static int pair_setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
}

static int pair_teardown(void **state)
{
	(void)state;
	if (sv[0] >= 0)
		close(sv[0]);
	close(sv[1]);
	return 0;
}

static void play(const char *s)
{
	assert_int_equal(write(sv[1], s, strlen(s)), (ssize_t)strlen(s));
}

/* Everything the client wrote so far. */
static void sent(struct strbuf *out)
{
	char buf[4096];
	ssize_t n;

	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	while ((n = read(sv[1], buf, sizeof(buf))) > 0)
		strbuf_add(out, buf, (size_t)n);
	fcntl(sv[1], F_SETFL, 0);
}

static void test_handshake_and_command(void **state)
{
	struct qmp q;
	struct strbuf err = STRBUF_INIT, out = STRBUF_INIT;
	struct json_object *ret = NULL, *v;

	(void)state;
	play(greeting);
	play(ok);
	assert_int_equal(qmp_attach(&q, sv[0], 1000, &err), 0);
	sv[0] = -1;
	/* an event before the reply, and a reply split in two writes */
	play(event);
	play("{\"return\": {\"status\": \"runn");
	play(status + strlen("{\"return\": {\"status\": \"runn"));
	assert_int_equal(qmp_execute(&q, "query-status", NULL, -1, 1000, &ret,
				     &err), 0);
	assert_true(json_object_object_get_ex(ret, "status", &v));
	assert_string_equal(json_object_get_string(v), "running");
	assert_int_equal(q.events, 1);
	json_object_put(ret);
	sent(&out);
	assert_non_null(strstr(out.buf, "{\"execute\":\"qmp_capabilities\"}\n"));
	assert_non_null(strstr(out.buf, "{\"execute\":\"query-status\"}\n"));
	assert_int_equal(err.len, 0);
	qmp_close(&q);
	strbuf_release(&err);
	strbuf_release(&out);
}

static void test_error_reply(void **state)
{
	struct qmp q;
	struct strbuf err = STRBUF_INIT;
	struct json_object *ret = NULL;

	(void)state;
	play(greeting);
	play(ok);
	play(notfound);
	assert_int_equal(qmp_attach(&q, sv[0], 1000, &err), 0);
	sv[0] = -1;
	assert_int_equal(qmp_execute(&q, "nosuch", NULL, -1, 1000, &ret, &err),
			 -EREMOTEIO);
	assert_null(ret);
	assert_string_equal(err.buf, "The command nosuch has not been found");
	qmp_close(&q);
	strbuf_release(&err);
}

static void test_hmp_and_arguments(void **state)
{
	struct qmp q;
	struct strbuf err = STRBUF_INIT, out = STRBUF_INIT, wire = STRBUF_INIT;

	(void)state;
	/* greeting and reply in one write, with the hmp answer behind */
	play(greeting);
	play(ok);
	play(hmp);
	assert_int_equal(qmp_attach(&q, sv[0], 1000, &err), 0);
	sv[0] = -1;
	assert_int_equal(qmp_hmp(&q, "info status", 1000, &out, &err), 0);
	assert_string_equal(out.buf, "VM status: running\r\n");
	sent(&wire);
	assert_non_null(strstr(wire.buf,
		"{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"info status\"}}\n"));
	qmp_close(&q);
	strbuf_release(&err);
	strbuf_release(&out);
	strbuf_release(&wire);
}

static void test_execute_json(void **state)
{
	struct qmp q;
	struct strbuf err = STRBUF_INIT;
	struct json_object *reply = NULL, *v;

	(void)state;
	play(greeting);
	play(ok);
	play(status);
	assert_int_equal(qmp_attach(&q, sv[0], 1000, &err), 0);
	sv[0] = -1;
	assert_int_equal(qmp_execute_json(&q, "[1, 2]", 1000, &reply, &err),
			 -EINVAL);
	assert_non_null(strstr(err.buf, "not a QMP command"));
	strbuf_reset(&err);
	assert_int_equal(qmp_execute_json(&q, "{\"execute\": ", 1000, &reply,
					  &err), -EINVAL);
	assert_string_equal(err.buf, "not valid JSON");
	strbuf_reset(&err);
	assert_int_equal(qmp_execute_json(&q, "{\"execute\": \"a\"} x", 1000,
					  &reply, &err), -EINVAL);
	strbuf_reset(&err);
	assert_int_equal(qmp_execute_json(&q, "{\"execute\": \"query-status\"}",
					  1000, &reply, &err), 0);
	assert_true(json_object_object_get_ex(reply, "return", &v));
	json_object_put(reply);
	qmp_close(&q);
	strbuf_release(&err);
}

static void test_silent_server_times_out(void **state)
{
	struct qmp q;
	struct strbuf err = STRBUF_INIT;

	(void)state;
	assert_int_equal(qmp_attach(&q, sv[0], 100, &err), -ETIMEDOUT);
	sv[0] = -1;
	assert_non_null(strstr(err.buf, "did not answer in time"));
	qmp_close(&q);
	strbuf_release(&err);
}

static void test_not_qmp(void **state)
{
	struct qmp q;
	struct strbuf err = STRBUF_INIT;

	(void)state;
	play("SSH-2.0-dropbear\r\n");
	assert_int_equal(qmp_attach(&q, sv[0], 1000, &err), -EPROTO);
	sv[0] = -1;
	qmp_close(&q);
	strbuf_reset(&err);
	strbuf_release(&err);
}

static void test_json_that_is_not_a_greeting(void **state)
{
	struct qmp q;
	struct strbuf err = STRBUF_INIT;

	(void)state;
	play("{\"hello\": 1}\n");
	assert_int_equal(qmp_attach(&q, sv[0], 1000, &err), -EPROTO);
	sv[0] = -1;
	qmp_close(&q);
	strbuf_release(&err);
}

static void test_server_goes_away(void **state)
{
	struct qmp q;
	struct strbuf err = STRBUF_INIT;

	(void)state;
	play(greeting);
	play(ok);
	assert_int_equal(qmp_attach(&q, sv[0], 1000, &err), 0);
	sv[0] = -1;
	play("{\"return\": ");
	shutdown(sv[1], SHUT_WR);
	assert_int_equal(qmp_execute(&q, "quit", NULL, -1, 1000, NULL, &err),
			 -EPIPE);
	assert_non_null(strstr(err.buf, "closed the connection"));
	qmp_close(&q);
	strbuf_release(&err);
}

static void test_fd_goes_along(void **state)
{
	struct qmp q;
	struct strbuf err = STRBUF_INIT;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr m;
	struct iovec iov;
	struct cmsghdr *c;
	struct json_object *args;
	char buf[256];
	int pfd[2], got = -1;

	(void)state;
	assert_int_equal(pipe(pfd), 0);
	play(greeting);
	play(ok);
	assert_int_equal(qmp_attach(&q, sv[0], 1000, &err), 0);
	sv[0] = -1;
	/* drain the capabilities command first */
	assert_true(read(sv[1], buf, sizeof(buf)) > 0);
	play(ok);
	args = json_object_new_object();
	json_object_object_add(args, "fdname", json_object_new_string("s"));
	assert_int_equal(qmp_execute(&q, "getfd", args, pfd[1], 1000, NULL,
				     &err), 0);
	json_object_put(args);
	memset(&m, 0, sizeof(m));
	iov.iov_base = buf;
	iov.iov_len = sizeof(buf);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = ctl.buf;
	m.msg_controllen = sizeof(ctl.buf);
	assert_true(recvmsg(sv[1], &m, 0) > 0);
	c = CMSG_FIRSTHDR(&m);
	assert_non_null(c);
	assert_int_equal(c->cmsg_type, SCM_RIGHTS);
	memcpy(&got, CMSG_DATA(c), sizeof(int));
	/* the fd that came through is the pipe's write end */
	assert_int_equal(write(got, "x", 1), 1);
	assert_int_equal(read(pfd[0], buf, 1), 1);
	assert_int_equal(buf[0], 'x');
	close(got);
	close(pfd[0]);
	close(pfd[1]);
	qmp_close(&q);
	strbuf_release(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_handshake_and_command,
						pair_setup, pair_teardown),
		cmocka_unit_test_setup_teardown(test_error_reply, pair_setup,
						pair_teardown),
		cmocka_unit_test_setup_teardown(test_hmp_and_arguments,
						pair_setup, pair_teardown),
		cmocka_unit_test_setup_teardown(test_execute_json, pair_setup,
						pair_teardown),
		cmocka_unit_test_setup_teardown(test_silent_server_times_out,
						pair_setup, pair_teardown),
		cmocka_unit_test_setup_teardown(test_not_qmp, pair_setup,
						pair_teardown),
		cmocka_unit_test_setup_teardown(test_json_that_is_not_a_greeting,
						pair_setup, pair_teardown),
		cmocka_unit_test_setup_teardown(test_server_goes_away,
						pair_setup, pair_teardown),
		cmocka_unit_test_setup_teardown(test_fd_goes_along, pair_setup,
						pair_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
