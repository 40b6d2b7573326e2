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
