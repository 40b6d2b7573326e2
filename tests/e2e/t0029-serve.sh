#!/bin/bash
# vm serve: the VMs of a directory over HTTP on 127.0.0.1, read with curl
# (each record checked against docs/json.md's table for @status), scraped
# by Debian's prometheus, and refused to the clients query_from leaves out.
. "$(dirname "$0")/../lib.sh"

need_rescue
RESCUE=$(rescue_iso)
export RESCUE

# serve PORT ARG...: vm serve on 127.0.0.1:PORT in the background
# (its pid in serve.pid, its messages in serve.log), listening when it returns
serve() {
	check_args serve "PORT ARG..." 2 - "$@" &&
	local port=$1 &&
	shift &&
	{ "$VM_BIN" serve --listen="127.0.0.1:$port" "$@" >serve.log 2>&1 & } &&
	echo $! >serve.pid &&
	wait_for 30 listening "$port" &&
	wait_for 10 grep -q "^vm: serving" serve.log
}
# get PORT PATH [CURL-ARG...]: the body of a GET, its status code in code
get() {
	check_args get "PORT PATH [CURL-ARG...]" 2 - "$@" &&
	local port=$1 path=$2 &&
	shift 2 &&
	curl -s --path-as-is -o body -w "%{http_code}" "$@" "http://127.0.0.1:$port$path" >code
}
# as_steps FILE: the records of a /v1/vms answer as @status --json lines
as_steps() {
	check_args as_steps FILE 1 1 "$@" &&
	jq -c ".[] | {verb: \"status\", args: [], status: (if .state == \"running\" then 0 else 3 end), result: .}" "$1"
}
# scraped PORT QUERY VALUE: the prometheus on 127.0.0.1:PORT answers QUERY
# with VALUE
scraped() {
	check_args scraped "PORT QUERY VALUE" 3 3 "$@" &&
	curl -s "http://127.0.0.1:$1/api/v1/query" --data-urlencode "query=$2" >q.json &&
	test "$(jq -r ".data.result[0].value[1] // empty" q.json)" = "$3"
}
# names PORT WANT: /v1/vms (asked from 127.0.0.2) lists the VMs WANT names
names() {
	check_args names "PORT WANT" 2 2 "$@" &&
	curl -s --interface 127.0.0.2 "http://127.0.0.1:$1/v1/vms" >names.json &&
	test "$(jq -r ".[].name" names.json | tr "\n" " ")" = "$2"
}
# vms: a directory of two VMs, a (with snapshot S0) and b
vms() {
	check_args vms "" 0 0 "$@" &&
	mkdir -p vms/a vms/b &&
	vm -q -d vms/a --no-uefi -p "" -D VIRT=64M @create A &&
	(cd vms/a && qwrite 0 1M) && vm -q -d vms/a @backup &&
	vm -q -d vms/b --no-uefi -m 512M @create B "$RESCUE"
}

test_expect "/v1/vms, /v1/vms/NAME and its /snapshots: what @status and @snapshots --json give, a running VM and a stopped one; bad names, .. and methods refused" '
	vms && vm -q -d vms/b @start &&
	port=$(free_port) && serve "$port" vms &&
	contains serve.log "serving 2 VMs on http://127.0.0.1:$port" &&
	get "$port" /v1/vms && equals "$(cat code)" 200 &&
	cp body all.json &&
	equals "$(jq -r ".[].name" all.json | tr "\n" " ")" "A B " &&
	as_steps all.json >steps &&
	for i in 1 2; do
		sed -n "${i}p" steps >step &&
		python3 "$TOP/tests/data/json-check.py" "$TOP/docs/json.md" step status || return 1
	done &&
	equals "$(jq -r ".[1].state" all.json)" running &&
	vm -d vms/b --json @status >st &&
	equals "$(jq -r ".[1].qemu_pid" all.json)" "$(jq -r .result.qemu_pid st)" &&
	get "$port" /v1/vms/a && equals "$(cat code)" 200 &&
	must_fail 3 vm -d vms/a --json @status >sa &&
	equals "$(jq -cS . body)" "$(jq -cS .result sa)" &&
	get "$port" /v1/vms/a/snapshots && equals "$(cat code)" 200 &&
	vm -d vms/a --json @snapshots >sn &&
	equals "$(jq -cS . body)" "$(jq -cS .result sn)" &&
	jq -c "{verb: \"snapshots\", args: [], status: 0, result: .}" body >step &&
	python3 "$TOP/tests/data/json-check.py" "$TOP/docs/json.md" step snapshots &&
	equals "$(jq -r ".snapshots[0].name, .last" body | tr "\n" " ")" "S0 S0 " &&
	get "$port" /v1/vms/b/snapshots && equals "$(jq -c .snapshots body)" "[]" &&
	get "$port" /v1/vms/nope/snapshots && equals "$(cat code)" 404 &&
	get "$port" /v1/vms/a/other && equals "$(cat code)" 404 &&
	get "$port" /v1/vms/nope && equals "$(cat code)" 404 &&
	contains body "no VM named nope" &&
	for p in /v1/vms/../vms/a /v1/vms/%2e%2e /v1/vms/a%2F..%2Fb /etc/passwd /v1/vmsx; do
		get "$port" "$p" && equals "$(cat code)" 404 || return 1
	done &&
	get "$port" /v1/vms -X POST && equals "$(cat code)" 405 &&
	get "$port" /v1/vms -H "Host: vms.evil.example:$port" && equals "$(cat code)" 403 &&
	contains body "Host does not name this machine" &&
	get "$port" /v1/vms -H "Host: localhost:$port" && equals "$(cat code)" 200 &&
	get "$port" /v1/vms -H "Host: [::1]:$port" && equals "$(cat code)" 200 &&
	get "$port" /v1/vms -X DELETE && equals "$(cat code)" 405 &&
	vm -q -d vms/b @kill && no_qemu &&
	kill -TERM "$(cat serve.pid)" && wait "$(cat serve.pid)" &&
	contains serve.log "stopped by signal 15"
'

test_expect "/metrics: the Prometheus text format, promtool passes it; 100 requests cost one look a second; Debian prometheus scrapes it: vm_up is 1 for the running VM, 0 for the other" '
	vms && vm -q -d vms/b @start &&
	port=$(free_port) && serve "$port" vms &&
	get "$port" /metrics && equals "$(cat code)" 200 &&
	promtool check metrics <body &&
	contains body "^vm_up{vm=\"b\"} 1$" && contains body "^vm_up{vm=\"a\"} 0$" &&
	contains body "^vm_state{vm=\"b\",state=\"running\"} 1$" &&
	contains body "^vm_snapshots{vm=\"a\"} 1$" &&
	contains body "^vm_backups_bytes{vm=\"a\"} $(wc -c <vms/a/backups/S0.tar.gz)$" &&
	contains body "^vm_memory_rss_bytes{vm=\"b\"} [1-9]" &&
	contains body "^vm_cpu_seconds_total{vm=\"b\"} " &&
	contains body "^vm_last_snapshot_timestamp_seconds{vm=\"a\"} [1-9]" &&
	lacks body "vm_uptime_seconds{vm=\"a\"}" &&
	looks=$(sed -n "s/^vm_serve_looks_total //p" body) && test "$looks" -ge 1 &&
	t0=$SECONDS &&
	for i in $(seq 100); do
		curl -s -o /dev/null "http://127.0.0.1:$port/v1/vms" || return 1
	done &&
	get "$port" /metrics &&
	test "$(sed -n "s/^vm_serve_looks_total //p" body)" -le $((looks + SECONDS - t0 + 2)) &&
	pport=$(free_port) &&
	printf "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: vm\n    static_configs:\n      - targets: [\"127.0.0.1:%s\"]\n" "$port" >prom.yml &&
	{ prometheus --config.file=prom.yml --storage.tsdb.path=tsdb \
		--web.listen-address="127.0.0.1:$pport" >prom.log 2>&1 & } &&
	wait_for 60 scraped "$pport" "vm_up{vm=\"b\"}" 1 &&
	scraped "$pport" "vm_up{vm=\"a\"}" 0 &&
	scraped "$pport" "vm_snapshots{vm=\"a\"}" 1 &&
	vm -q -d vms/b @kill && no_qemu &&
	wait_for 30 scraped "$pport" "vm_up{vm=\"b\"}" 0
'

test_expect "/v1/vms/NAME/console?tail=N: the last N lines, control characters escaped; a bad tail is 400" '
	vms && port=$(free_port) && serve "$port" vms &&
	must_fail 3 vm -d vms/a --json @status >sa &&
	w=$(jq -r .result.workdir sa) &&
	printf "one\ntwo\nthree \033[31mred\033[0m\nfour" >"$w/console.log" &&
	get "$port" "/v1/vms/a/console?tail=2" && equals "$(cat code)" 200 &&
	equals "$(jq -r ".lines | length" body)" 2 &&
	equals "$(jq -r ".lines[1]" body)" four &&
	jq -r ".lines[0]" body >line &&
	lacks line "$(printf "\033")" && contains line "^three .*red" &&
	get "$port" /v1/vms/a/console && equals "$(jq -r ".lines | length" body)" 4 &&
	for t in 0 -1 x 1001 ""; do
		get "$port" "/v1/vms/a/console?tail=$t" && equals "$(cat code)" 400 || return 1
	done &&
	get "$port" /v1/vms/b/console && equals "$(cat code)" 404 &&
	get "$port" /v1/vms/zz/console && equals "$(cat code)" 404
'

test_expect "query_from: a client it does not list (or range) gets 403, one it lists reads; a VM made later is found within seconds, one removed goes" '
	vms && port=$(free_port) &&
	printf "[serve]\nquery_from = 127.0.0.2\nquery_from = 127.0.0.4/30\n" >>"$XDG_CONFIG_HOME/vm.conf" &&
	serve "$port" vms &&
	get "$port" /v1/vms && equals "$(cat code)" 403 &&
	get "$port" /metrics && equals "$(cat code)" 403 &&
	get "$port" / && equals "$(cat code)" 403 &&
	get "$port" /v1/vms --interface 127.0.0.3 && equals "$(cat code)" 403 &&
	get "$port" /v1/vms --interface 127.0.0.8 && equals "$(cat code)" 403 &&
	get "$port" /v1/vms --interface 127.0.0.7 && equals "$(cat code)" 200 &&
	get "$port" /v1/vms --interface 127.0.0.2 && equals "$(cat code)" 200 &&
	equals "$(jq length body)" 2 &&
	mkdir vms/c && vm -q -d vms/c --no-uefi -p "" -D VIRT=64M @create C &&
	mkdir vms/.hidden vms/notvm && ln -s "$PWD/vms/a" vms/link &&
	wait_for 10 names "$port" "A B C " &&
	rm -r vms/c &&
	wait_for 10 names "$port" "A B "
'

# page PORT PATH [CHROMIUM-ARG...]: headless Chromium's DOM of PATH (/, or
# /#token=...) after its script ran, in dom
page() {
	check_args page "PORT PATH [CHROMIUM-ARG...]" 2 - "$@" &&
	local port=$1 path=$2 &&
	shift 2 &&
	timeout 120 chromium --headless=new --no-sandbox --disable-gpu \
		--user-data-dir="$PWD/chromium" --virtual-time-budget=5000 "$@" \
		"http://127.0.0.1:$port$path" >dom 2>chromium.log
}

test_expect "the page at /: headless Chromium shows each VM and its state, a description as text, nothing from elsewhere; with a token, start or stop and kill buttons; a phone-sized screenshot is kept" '
	vms && vm -q -d vms/b @start &&
	(cd vms/a && qwrite 2M 1M) && vm -q -d vms/a @backup S1 "<b id=x>bold</b>" &&
	port=$(free_port) && serve "$port" vms &&
	get "$port" / && equals "$(cat code)" 200 &&
	lacks body "http" && contains body "<script src=\"/app.js\">" &&
	curl -s -D hdr -o /dev/null "http://127.0.0.1:$port/" &&
	contains hdr "Content-Security-Policy: default-src .none.; script-src .self." &&
	get "$port" /app.js && equals "$(cat code)" 200 && lacks body "innerHTML" &&
	page "$port" / --dump-dom &&
	python3 - dom <<-\EOF &&
	import html.parser, sys
	class P(html.parser.HTMLParser):
	    def __init__(self):
	        super().__init__(); self.rows = {}; self.vm = None; self.tags = []
	    def handle_starttag(self, tag, attrs):
	        self.tags.append(tag)
	        a = dict(attrs)
	        if tag == "tr" and "data-vm" in a:
	            self.vm = a["data-vm"]; self.rows[self.vm] = []
	    def handle_data(self, d):
	        if self.vm and self.tags and self.tags[-1] == "td":
	            self.rows[self.vm].append(d)
	p = P(); p.feed(open(sys.argv[1]).read())
	assert p.rows["b"][1] == "running", p.rows
	assert p.rows["a"][1] == "stopped", p.rows
	assert "S1" in p.rows["a"][4] and "<b id=x>bold</b>" in p.rows["a"][4], p.rows
	assert "b" not in p.tags[p.tags.index("tbody"):], p.tags
	EOF
	lacks dom "<body class=\"control\"" &&
	page "$port" "/#token=t0k" --dump-dom &&
	python3 - dom <<-\EOF &&
	import html.parser, sys
	class P(html.parser.HTMLParser):
	    def __init__(self):
	        super().__init__(); self.acts = {}; self.vm = None; self.body = ""
	    def handle_starttag(self, tag, attrs):
	        a = dict(attrs)
	        if tag == "body": self.body = a.get("class") or ""
	        if tag == "tr" and "data-vm" in a: self.vm = a["data-vm"]; self.acts[self.vm] = []
	        if tag == "button" and "data-action" in a: self.acts[self.vm].append(a["data-action"])
	p = P(); p.feed(open(sys.argv[1]).read())
	assert "control" in p.body, p.body
	assert p.acts == {"a": ["start"], "b": ["stop", "kill"]}, p.acts
	EOF
	mkdir -p "$TOP/build/test-artifacts" &&
	page "$port" "/#token=t0k" --window-size=420,860 --screenshot="$TOP/build/test-artifacts/t0029-page.png" &&
	test -s "$TOP/build/test-artifacts/t0029-page.png" &&
	vm -q -d vms/b @kill && no_qemu
'

test_expect "socket activation: given systemd's listening socket, it serves there and not on listen of [serve]" '
	vms && port=$(free_port) && other=$(free_port) &&
	printf "[serve]\nlisten = 127.0.0.1:%s\ndirs = %s/vms\n" "$other" "$PWD" >>"$XDG_CONFIG_HOME/vm.conf" &&
	{ systemd-socket-activate -l "127.0.0.1:$port" "$VM_BIN" serve >sa.log 2>&1 & } &&
	wait_for 30 listening "$port" &&
	get "$port" /v1/vms && equals "$(cat code)" 200 && equals "$(jq length body)" 2 &&
	contains sa.log "serving 2 VMs on http://127.0.0.1:$port$" &&
	not_listening "$other"
'

# client NAME CA: a client certificate NAME.crt (NAME.key) signed by
# certs/CA.crt
client() {
	check_args client "NAME CA" 2 2 "$@" &&
	openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" \
		-keyout "certs/$1.key" -out "certs/$1.csr" 2>/dev/null &&
	openssl x509 -req -in "certs/$1.csr" -CA "certs/$2.crt" \
		-CAkey "certs/$2.key" -CAcreateserial -days 2 \
		-out "certs/$1.crt" 2>/dev/null
}

test_expect "TLS: HTTPS with tls_cert; with client_ca a client needs a certificate it signed: none, or one of another CA, gets 403" '
	vms && certs && chmod 600 certs/registry.key &&
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca \
		-keyout certs/other.key -out certs/other.crt 2>/dev/null &&
	client ops ca && client stranger other &&
	printf "[serve]\ntls_cert = %s/certs/registry.crt\ntls_key = %s/certs/registry.key\n" "$PWD" "$PWD" >>"$XDG_CONFIG_HOME/vm.conf" &&
	port=$(free_port) && serve "$port" vms &&
	contains serve.log "serving 2 VMs on https://127.0.0.1:$port$" &&
	curl -s --cacert certs/ca.crt -o body -w "%{http_code}" "https://127.0.0.1:$port/v1/vms" >code &&
	equals "$(cat code)" 200 && equals "$(jq length body)" 2 &&
	must_fail any curl -s -f "http://127.0.0.1:$port/v1/vms" &&
	kill "$(cat serve.pid)" && wait_for 30 not_listening "$port" &&
	printf "client_ca = %s/certs/ca.crt\n" "$PWD" >>"$XDG_CONFIG_HOME/vm.conf" &&
	serve "$port" vms && contains serve.log "client certificates from client_ca" &&
	curl -s --cacert certs/ca.crt -o body -w "%{http_code}" "https://127.0.0.1:$port/v1/vms" >code &&
	equals "$(cat code)" 403 && contains body "client certificate signed by client_ca" &&
	curl -s --cacert certs/ca.crt --cert certs/stranger.crt --key certs/stranger.key \
		-o body -w "%{http_code}" "https://127.0.0.1:$port/metrics" >code &&
	equals "$(cat code)" 403 &&
	curl -s --cacert certs/ca.crt --cert certs/ops.crt --key certs/ops.key \
		-o body -w "%{http_code}" "https://127.0.0.1:$port/v1/vms" >code &&
	equals "$(cat code)" 200 && equals "$(jq length body)" 2 &&
	kill "$(cat serve.pid)" && wait_for 30 not_listening "$port" &&
	chmod 644 certs/registry.key &&
	must_fail 1 vm serve --listen="127.0.0.1:$port" vms 2>err &&
	contains err "tls_key .*registry.key may be read by others than its owner (chmod 600 it)"
'

# post URL-PATH [CURL-ARG...]: a POST to the server on $port, its body in
# body and its status code in code
post() {
	check_args post "URL-PATH [CURL-ARG...]" 1 - "$@" &&
	local path=$1 &&
	shift &&
	curl -s -o body -w "%{http_code}" -X POST "$@" "http://127.0.0.1:$port$path" >code
}
# booted DIR: the rescue guest of the VM in DIR has its shell up
booted() {
	check_args booted DIR 1 1 "$@" &&
	grep -q "root shell on ttyS0" "$(vm -d "$1" --json @status | jq -r .result.workdir)/console.log" 2>/dev/null
}

test_expect "control: POST start, stop and kill with a token from control_from; no token, a wrong one, another address: 401 or 403 and the VM untouched; each in the log" '
	vms && port=$(free_port) && tok=$(openssl rand -hex 24) &&
	printf "ops %s\n# the CI runners\n\nci %s\n" "$(printf %s "$tok" | sha256sum | cut -c1-64)" \
		"$(printf other | sha256sum | cut -c1-64)" >tokens && chmod 600 tokens &&
	printf "[serve]\ncontrol_from = 127.0.0.1\ntokens = %s/tokens\n" "$PWD" >>"$XDG_CONFIG_HOME/vm.conf" &&
	serve "$port" vms &&
	post /v1/vms/b/start && equals "$(cat code)" 401 && contains body "a bearer token is needed" &&
	post /v1/vms/b/start -H "Authorization: Bearer wrong" && equals "$(cat code)" 401 &&
	post /v1/vms/b/start -H "Authorization: Bearer $tok" --interface 127.0.0.2 &&
	equals "$(cat code)" 403 && contains body "control_from" &&
	post /v1/vms/b/start -H "Authorization: Bearer $tok" -H "Origin: https://vms.evil.example" &&
	equals "$(cat code)" 403 && contains body "another site" &&
	post /v1/vms/b/start -H "Authorization: Bearer $tok" -H "Sec-Fetch-Site: cross-site" &&
	equals "$(cat code)" 403 &&
	must_fail 3 vm -q -d vms/b @status &&
	post /v1/vms/b/start -H "Authorization: Bearer $tok" -H "Origin: http://127.0.0.1:$port" &&
	equals "$(cat code)" 200 && vm -q -d vms/b @kill && no_qemu &&
	post /v1/vms/b/start -H "Authorization: Bearer $tok" && equals "$(cat code)" 200 &&
	equals "$(jq -r .started body)" true && vm -q -d vms/b @status &&
	post /v1/vms/b/start -H "Authorization: Bearer $tok" && equals "$(cat code)" 409 &&
	post /v1/vms/nope/stop -H "Authorization: Bearer $tok" && equals "$(cat code)" 404 &&
	post /v1/vms/b/reboot -H "Authorization: Bearer $tok" && equals "$(cat code)" 404 &&
	post "/v1/vms/b/stop?timeout=x" -H "Authorization: Bearer $tok" && equals "$(cat code)" 400 &&
	post /v1/vms/b/stop -H "Authorization: Bearer wrong" && equals "$(cat code)" 401 &&
	vm -q -d vms/b @status &&
	wait_for 180 booted vms/b &&
	post "/v1/vms/b/stop?timeout=60" -H "Authorization: Bearer $tok" && equals "$(cat code)" 200 &&
	equals "$(jq -r .stopped body)" powerdown && no_qemu &&
	post /v1/vms/b/stop -H "Authorization: Bearer $tok" && equals "$(jq -r .stopped body)" not_running &&
	vm -q -d vms/b @start &&
	post /v1/vms/b/kill -H "Authorization: Bearer $tok" && equals "$(cat code)" 200 &&
	equals "$(jq -r .stopped body)" killed && no_qemu &&
	contains serve.log "control: start b refused to 127.0.0.1: a bearer token is needed" &&
	contains serve.log "control: start b refused to 127.0.0.2: this address may not control" &&
	contains serve.log "control: start b refused to 127.0.0.1: a request from another site" &&
	contains serve.log "control: start b by token ops from 127.0.0.1: 200 started" &&
	contains serve.log "control: stop b by token ops from 127.0.0.1: 200 powerdown" &&
	contains serve.log "control: kill b by token ops from 127.0.0.1: 200 killed" &&
	lacks serve.log "$tok" &&
	kill -TERM "$(cat serve.pid)" && wait "$(cat serve.pid)"
'

test_expect "control: POST backup takes a snapshot as @backup does, of a stopped VM and (live) of a running one; a name taken or a lock held is 409, a bad name 400; without a token 401 and nothing stored" '
	vms && port=$(free_port) && tok=$(openssl rand -hex 24) &&
	printf "ops %s\n" "$(printf %s "$tok" | sha256sum | cut -c1-64)" >tokens && chmod 600 tokens &&
	printf "[serve]\ncontrol_from = 127.0.0.1\ntokens = %s/tokens\n" "$PWD" >>"$XDG_CONFIG_HOME/vm.conf" &&
	serve "$port" vms &&
	post "/v1/vms/a/backup?name=N1" && equals "$(cat code)" 401 &&
	test ! -e vms/a/backups/N1.tar.gz &&
	(cd vms/a && qwrite 1M 1M) &&
	post "/v1/vms/a/backup?name=N1" -H "Authorization: Bearer $tok" &&
	equals "$(cat code)" 200 && equals "$(jq -r .snapshot body)" N1 &&
	equals "$(jq -r .taken body)" offline && equals "$(jq -r .parent body)" S0 &&
	test "$(jq -r .size body)" -gt 0 && equals "$(jq -r ".warnings | length" body)" 0 &&
	equals "$(readlink vms/a/backups/LAST)" N1.tar.gz &&
	vm -q -d vms/a @verify N1 &&
	vm -q -d vms/a @snapshots >list &&
	contains list "^N1 .*taken through vm serve by token ops from 127.0.0.1" &&
	post "/v1/vms/a/backup?name=N1" -H "Authorization: Bearer $tok" &&
	equals "$(cat code)" 409 && contains body "N1" &&
	post "/v1/vms/a/backup?name=LAST" -H "Authorization: Bearer $tok" && equals "$(cat code)" 400 &&
	post "/v1/vms/a/backup?name=..%2Fx" -H "Authorization: Bearer $tok" && equals "$(cat code)" 400 &&
	post "/v1/vms/a/stop?name=N2" -H "Authorization: Bearer $tok" && equals "$(cat code)" 400 &&
	{ flock vms/a/.lock sleep 60 & } && holder=$! &&
	wait_for 10 must_fail 1 flock -n vms/a/.lock true &&
	post "/v1/vms/a/backup?name=N2" -H "Authorization: Bearer $tok" &&
	equals "$(cat code)" 409 && contains body "another vm is using it" &&
	kill $holder && { wait $holder || true; } &&
	test ! -e vms/a/backups/N2.tar.gz &&
	vm -q -d vms/b @start &&
	post "/v1/vms/b/backup?name=L1" -H "Authorization: Bearer $tok" &&
	equals "$(cat code)" 200 && equals "$(jq -r .taken body)" crash-consistent &&
	vm -q -d vms/b @status && vm -q -d vms/b @verify L1 &&
	test -z "$(ls -A "$(vm -d vms/b --json @status | jq -r .result.workdir)" | grep "^\.live-")" &&
	vm -q -d vms/b @kill && no_qemu &&
	contains serve.log "control: backup a by token ops from 127.0.0.1: 200 N1$" &&
	contains serve.log "control: backup b by token ops from 127.0.0.1: 200 L1$" &&
	kill -TERM "$(cat serve.pid)" && wait "$(cat serve.pid)"
'

# ended PID: the process is gone, or only its zombie is left
ended() {
	check_args ended PID 1 1 "$@" &&
	{ test ! -e "/proc/$1/stat" || grep -q "^[0-9]* (.*) Z" "/proc/$1/stat"; }
}

test_expect "stopping vm serve during a POST backup: the backup is interrupted, the client told, nothing stored" '
	vms && port=$(free_port) && tok=$(openssl rand -hex 24) &&
	printf "ops %s\n" "$(printf %s "$tok" | sha256sum | cut -c1-64)" >tokens && chmod 600 tokens &&
	printf "[serve]\ncontrol_from = 127.0.0.1\ntokens = %s/tokens\n" "$PWD" >>"$XDG_CONFIG_HOME/vm.conf" &&
	mkdir -p slow &&
	printf "#!/bin/sh\ntrap \"kill \\\$s; exit 143\" TERM\nsleep 5 & s=\$!\nwait \$s\nexec %s \"\$@\"\n" \
		"$(command -v pigz)" >slow/pigz &&
	chmod +x slow/pigz && (cd vms/a && qwrite 1M 1M) &&
	ls -A vms/a/backups >before &&
	PATH=$PWD/slow:$PATH serve "$port" vms && spid=$(cat serve.pid) &&
	{ curl -s -o slow.body -w "%{http_code}" -X POST -H "Authorization: Bearer $tok" \
		"http://127.0.0.1:$port/v1/vms/a/backup?name=N3" >slow.code & } && cpid=$! &&
	wait_for 30 pgrep -f "$PWD/slow/pigz" &&
	kill -TERM "$spid" && wait_for 30 ended "$spid" && { wait "$spid" || true; } &&
	wait "$cpid" && equals "$(cat slow.code)" 500 && contains slow.body "interrupted" &&
	test ! -e vms/a/backups/N3.tar.gz && equals "$(readlink vms/a/backups/LAST)" S0.tar.gz &&
	ls -A vms/a/backups >after && cmp before after &&
	contains serve.log "control: backup a by token ops from 127.0.0.1: 500 .*interrupted"
'

test_expect "clients that misbehave: 10,000 idle connections, 50 slow ones, a 1 MiB header, malformed requests; each refused quickly, none slows a good client, nothing in the log" '
	vms && port=$(free_port) && serve "$port" vms &&
	python3 "$TOP/tests/data/serve-abuse.py" "$port" /v1/vms --idle 10000 --slow 50 --seconds 8 &&
	get "$port" /v1/vms && equals "$(cat code)" 200 &&
	kill -TERM "$(cat serve.pid)" && wait "$(cat serve.pid)" &&
	equals "$(grep -c . serve.log)" 2
'

test_expect "bad invocations: one line each, nothing served" '
	must_fail 2 vm serve 2>err && contains err "no directory to serve" &&
	equals "$(wc -l <err)" 1 &&
	must_fail 2 vm serve --nope . 2>err && contains err "unknown option" &&
	must_fail 1 vm serve --listen=127.0.0.1 . 2>err && contains err "bad listen address" &&
	must_fail 1 vm serve --listen=127.0.0.1:1 /nonexistent 2>err &&
	contains err "/nonexistent is not a directory" &&
	port=$(free_port) &&
	{ python3 -c "import socket, time; s = socket.socket(); s.bind((\"127.0.0.1\", $port)); s.listen(); time.sleep(30)" & } &&
	taken=$! && wait_for 30 listening "$port" &&
	must_fail 1 vm serve --listen="127.0.0.1:$port" . 2>err &&
	contains err "cannot listen on 127.0.0.1:$port: Address already in use" &&
	kill "$taken" &&
	printf "[serve]\ntls_cert = %s/x.crt\n" "$PWD" >>"$XDG_CONFIG_HOME/vm.conf" &&
	must_fail 1 vm serve . 2>err && contains err "tls_cert and tls_key go together" &&
	printf "tls_key = %s/x.key\n" "$PWD" >>"$XDG_CONFIG_HOME/vm.conf" &&
	must_fail 1 vm serve . 2>err && contains err "tls_cert .*x.crt: No such file" &&
	printf "tls_cert =\ntls_key =\ntokens = %s/toks\n" "$PWD" >>"$XDG_CONFIG_HOME/vm.conf" &&
	printf "ops %064d\n" 0 >toks && chmod 644 toks &&
	must_fail 1 vm serve . 2>err && contains err "tokens .*toks may be read by others than its owner" &&
	printf "ops not-hex\n" >toks && chmod 600 toks &&
	must_fail 1 vm serve . 2>err && contains err "tokens .*toks, line 1: not NAME SHA256-HEX" &&
	printf "[serve]\ntokens =\ncontrol_from = 10.0.0.0/33\n" >>"$XDG_CONFIG_HOME/vm.conf" &&
	must_fail 1 vm serve . 2>err && contains err "bad control_from entry .10.0.0.0/33." &&
	printf "[serve]\nquery_from = 300.1.1.1/8\n" >>"$XDG_CONFIG_HOME/vm.conf" &&
	must_fail 1 vm serve . 2>err && contains err "bad query_from entry" &&
	vm serve --help >help && contains help "^usage: vm serve" &&
	vm help serve | cmp - help
'

test_done
