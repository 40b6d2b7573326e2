# Sourced before NAME.pre and NAME.post run on the host (under bash).
# fatal MESSAGE: print and stop the script with status 1.
fatal() {
	echo "${JOBNAME:-job}: $*" >&2
	exit 1
}
# run CMD...: print CMD, run it, stop with its failure.
run() {
	echo "+ $*" >&2
	"$@" || fatal "'$*' failed with status $?"
}
# collect_sshkeys FILE: append every existing public key named in
# $SSHKEYS (the sshkeys setting) to FILE; fail when there is none.
collect_sshkeys() {
	local k n=0
	for k in $SSHKEYS; do
		[ -f "$k" ] || continue
		cat "$k" >>"$1"
		n=$((n + 1))
	done
	[ "$n" -gt 0 ] || fatal "no public key found (sshkeys: $SSHKEYS)"
	echo "${JOBNAME:-job}: $n key(s) from $SSHKEYS"
}
