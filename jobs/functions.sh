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
# SSHKEYS: a bash array of the public key files, one element a path (as
# the reference vm's scripts read it: "${SSHKEYS[@]}"); vm passes the
# list shell-quoted in VM_SSHKEYS_QUOTED, so paths with spaces stay whole.
eval "SSHKEYS=(${VM_SSHKEYS_QUOTED:-})"
# collect_sshkeys FILE: append every public key in SSHKEYS to FILE; a key
# file that is missing or holds no key is an error naming it, and so is
# an empty list.
collect_sshkeys() {
	local k n=0
	for k in "${SSHKEYS[@]}"; do
		[ -f "$k" ] || fatal "public key file $k not found (sshkeys setting)"
		grep -q '[^[:space:]]' "$k" || fatal "public key file $k is empty"
		cat "$k" >>"$1"
		# a last line without its newline must not join the next key
		[ -z "$(tail -c 1 "$k")" ] || echo >>"$1"
		n=$((n + 1))
	done
	[ "$n" -gt 0 ] ||
		fatal "no public key: set sshkeys, or make ~/.ssh/id_ed25519.pub (ssh-keygen -t ed25519)"
	echo "${JOBNAME:-job}: $n key file(s): ${SSHKEYS[*]}"
}
