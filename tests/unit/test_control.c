/*
 * Unit tests for lib/qemu/control: what the control socket lets through
 * to QEMU and what it refuses (a control_group member's whole power).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "qemu/control.h"

/* The refusal for a command given as JSON text, or NULL. */
static const char *refusal(const char *json, struct strbuf *why)
{
	struct json_object *cmd = json_tokener_parse(json);
	const char *r;

	assert_non_null(cmd);
	r = control_refusal(cmd, why);
	json_object_put(cmd);
	return r;
}

static void test_passes(void **state)
{
	static const char *const ok[] = {
		"{\"execute\": \"qmp_capabilities\"}",
		"{\"execute\": \"query-status\"}",
		"{\"execute\": \"query-block\", \"arguments\": {}}",
		"{\"execute\": \"system_powerdown\"}",
		"{\"execute\": \"system_reset\"}",
		"{\"execute\": \"stop\"}",
		"{\"execute\": \"cont\"}",
		"{\"execute\": \"quit\"}",
		"{\"execute\": \"vm-save\"}",
		"{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": \"info status\"}}",
		"{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": \"  info\\tblock\"}}",
		"{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": \"system_powerdown\"}}",
		NULL
	};
	struct strbuf why = STRBUF_INIT;
	int i;

	(void)state;
	for (i = 0; ok[i]; i++)
		if (refusal(ok[i], &why))
			fail_msg("%s refused: %s", ok[i], why.buf);
	strbuf_release(&why);
}

static void test_refused(void **state)
{
	static const char *const no[][2] = {
		{ "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"exec:sh\"}}",
		  "the control socket refuses 'migrate': only power, pause and resume, reset and query-* pass (the monitor itself is its owner's)" },
		{ "{\"execute\": \"screendump\", \"arguments\": {\"filename\": \"/x\"}}",
		  "refuses 'screendump'" },
		{ "{\"execute\": \"dump-guest-memory\", \"arguments\": {\"paging\": false, \"protocol\": \"file:/x\"}}",
		  "refuses 'dump-guest-memory'" },
		{ "{\"execute\": \"blockdev-add\", \"arguments\": {}}",
		  "refuses 'blockdev-add'" },
		{ "{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"x\"}}",
		  "refuses 'getfd'" },
		{ "{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": \"migrate exec:sh\"}}",
		  "the control socket refuses HMP 'migrate': only info, help" },
		{ "{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": \" drive_add 0 file=/etc/shadow\"}}",
		  "refuses HMP 'drive_add'" },
		{ "{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": \"information\"}}",
		  "refuses HMP 'information'" },
		{ "{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": \"i status\"}}",
		  "refuses HMP 'i'" },
		{ "{\"execute\": \"human-monitor-command\"}", "refuses HMP ''" },
		{ "{\"execute\": \"human-monitor-command\", \"arguments\": {\"command-line\": 5}}",
		  "refuses HMP ''" },
		{ "{\"execute\": \"query-status\", \"arguments\": [1]}",
		  "query-status: arguments must be an object" },
		{ "{\"exec-oob\": \"query-status\"}", "not a QMP command" },
		{ "{\"execute\": 1}", "not a QMP command" },
		{ "[\"execute\"]", "not a QMP command" },
	};
	struct strbuf why = STRBUF_INIT;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		const char *r = refusal(no[i][0], &why);

		if (!r)
			fail_msg("%s passed", no[i][0]);
		if (!strstr(r, no[i][1]))
			fail_msg("%s: \"%s\", want \"%s\"", no[i][0], r,
				 no[i][1]);
	}
	strbuf_release(&why);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_passes),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
