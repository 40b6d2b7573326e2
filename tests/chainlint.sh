#!/bin/bash
# chainlint: find test_expect bodies, and helper functions (`name() {`
# at the start of a line, up to a `}` there), that can swallow a failure.
#
#   bash tests/chainlint.sh tests/e2e/t*.sh
#
# A body runs under `set -e`, but the shell ignores a failure anywhere in
# an && list except its last command, in a loop except its last
# iteration, and before a `;`.  So every statement of a body must be
# joined to the next one by && (the last one, and the last one before
# done/fi/}/)/else/elif, need not be), no `;` may join two statements,
# and a loop body must end in `|| exit 1` (or `|| return 1`).  A line may
# also end in ||, |, \, then, do, else, { or ( and go on below; `cmd &`
# starts a background command (write `{ cmd & } &&` to go on with the
# chain: a bare `a && b &` puts all of `a && b` in the background).
# Here-documents, quoted text and $(...) are not looked into.
#
# Prints FILE:LINE: "TEST": PROBLEM for each problem; exits 1 if there
# is one, 2 on a usage error.
set -u
if [ $# -eq 0 ]; then
	echo "usage: chainlint.sh FILE..." >&2
	exit 2
fi
for f in "$@"; do
	[ -r "$f" ] || { echo "chainlint: cannot read $f" >&2; exit 2; }
done

read -r -d '' prog <<'AWK'
BEGIN {
	IGNORED = ": a failure here is ignored"
	NO_AND = "the line does not end in &&" IGNORED
	SEMI_END = "the line ends in ; not &&" IGNORED
	SEMI = "; joins two statements: a failure before it is ignored, use &&"
	EXIT = "[|][|] (exit|return)( [0-9]+| [$][?])?$"
	SEP = "[ \t;&|()]"
	BG = "& puts the whole && chain in the background: write { cmd & }"
	LOOP = "the loop body does not end in || exit 1: a loop fails " \
	       "only if its last round does"
}

FNR == 1 && NR > 1 { lint_file() }
FNR == 1 { n = 0; file = FILENAME }
{ L[++n] = $0 }
END { if (n) lint_file(); exit bad ? 1 : 0 }

function report(line, desc, msg) {
	printf "%s:%d: \"%s\": %s\n", file, line, desc, msg
	bad = 1
}

# Each `test_expect "DESC" 'BODY'` of the file, BODY as eval sees it,
# and each helper function: tests call them in && lists, where set -e
# is off for everything they run.
function lint_file(   i, j, s, c, q, desc, nb, ln, cur, closed) {
	for (i = 1; i <= n; i++) {
		if (L[i] ~ /^[A-Za-z_][A-Za-z0-9_]*\(\) *[{] *$/) {
			desc = L[i]
			sub(/ *[{] *$/, "", desc)
			for (nb = 0; i + nb < n; nb++) {
				if (L[i + nb + 1] ~ /^[}]/)
					break
				B[nb + 1] = L[i + nb + 1]
				BL[nb + 1] = i + nb + 1
			}
			lint_body(desc, nb)
			i += nb
			continue
		}
		if (L[i] !~ /^[ \t]*test_expect[ \t]/)
			continue
		s = L[i]
		sub(/^[ \t]*test_expect[ \t]+/, "", s)
		q = substr(s, 1, 1)
		if (q != "\"" && q != "'") {
			report(i, "?", "cannot read the test description")
			continue
		}
		desc = ""
		for (j = 2; j <= length(s); j++) {
			c = substr(s, j, 1)
			if (c == q)
				break
			if (c == "\\" && q == "\"")
				c = substr(s, ++j, 1)
			desc = desc c
		}
		s = substr(s, j + 1)
		sub(/^[ \t]+/, "", s)
		if (substr(s, 1, 1) != "'") {
			report(i, desc, "the body is not a single-quoted string")
			continue
		}
		s = substr(s, 2)
		nb = 0
		ln = i
		closed = 0
		for (;;) {
			cur = ""
			for (j = 1; j <= length(s); j++) {
				c = substr(s, j, 1)
				if (c == "'") {
					# '"'"' or '\'' put a ' in the body
					if (substr(s, j, 5) == "'\"'\"'") {
						cur = cur c
						j += 4
						continue
					}
					if (substr(s, j, 4) == "'\\''") {
						cur = cur c
						j += 3
						continue
					}
					closed = 1
					break
				}
				cur = cur c
			}
			B[++nb] = cur
			BL[nb] = ln
			if (closed || ln == n)
				break
			s = L[++ln]
		}
		if (closed)
			lint_body(desc, nb)
		else
			report(i, desc, "the body never ends")
		i = ln
	}
}

# Pass 1: blank out quotes, $(...), ${...}, comments and here-documents,
# then cut what is left into words and operators (tokenize).  A line
# that ends inside a quote or after a backslash goes on, so it gets no
# "nl" token.
function lint_body(desc, nb,   k, j, s, len, c, c2, d, code, cont, hd, pn,
		   strip, w, o, e) {
	nt = 0
	d = 0
	hd = 0
	pn = 0
	for (k = 1; k <= nb; k++) {
		s = B[k]
		if (hd) {
			if (HS[hd])
				sub(/^\t+/, "", s)
			if (s == HD[hd] && ++hd > pn)
				hd = pn = 0
			continue
		}
		code = ""
		cont = 0
		len = length(s)
		for (j = 1; j <= len; j++) {
			c = substr(s, j, 1)
			c2 = substr(s, j + 1, 1)
			if (d == 0) {
				if (c == "\\") {
					if (j == len)
						cont = 1
					else
						code = code "Q"
					j++
				} else if (c == "#" && (code == "" ||
					   substr(code, length(code)) ~ SEP)) {
					break
				} else if (c == "'" || c == "\"" || c == "`") {
					S[++d] = c
					code = code "Q"
				} else if ((c == "$" || c == "<" || c == ">") &&
					   c2 == "(") {
					S[++d] = "("
					P[d] = 1
					code = code "Q"
					j++
				} else if (c == "$" && c2 == "{") {
					S[++d] = "{"
					P[d] = 1
					code = code "Q"
					j++
				} else if (c == "$" && c2 == "'") {
					S[++d] = "$'"
					code = code "Q"
					j++
				} else if (c == "<" && c2 == "<" &&
					   substr(s, j + 2, 1) != "<") {
					j += 2
					strip = 0
					if (substr(s, j, 1) == "-") {
						strip = 1
						j++
					}
					while (substr(s, j, 1) ~ /[ \t]/)
						j++
					w = ""
					for (; j <= len; j++) {
						c = substr(s, j, 1)
						if (c ~ /[ \t;&|<>()]/)
							break
						w = w c
					}
					gsub(/["'\\]/, "", w)
					HD[++pn] = w
					HS[pn] = strip
					code = code "<<Q"
					j--
				} else {
					code = code c
				}
				continue
			}
			# inside a quote or a substitution: find its end
			if (S[d] == "'") {
				if (c == "'")
					d--
			} else if (S[d] == "$'" || S[d] == "`") {
				if (c == "\\")
					j++
				else if (c == substr(S[d], length(S[d])))
					d--
			} else if (c == "\\") {
				j++
			} else if (c == "$" && (c2 == "(" || c2 == "{")) {
				S[++d] = c2
				P[d] = 1
				j++
			} else if (c == "`" || S[d] != "\"" && c == "\"") {
				S[++d] = c
			} else if (S[d] == "\"") {
				if (c == "\"")
					d--
			} else if (c == "'") {
				S[++d] = c
			} else {
				o = S[d]
				e = o == "(" ? ")" : "}"
				if (c == o)
					P[d]++
				else if (c == e && --P[d] == 0)
					d--
			}
		}
		tokenize(code, BL[k])
		if (d == 0 && !cont)
			emit("nl", "", BL[k])
		if (d == 0 && pn)
			hd = 1
	}
	check(desc)
}

function tokenize(s, line,   j, len, c, c2, w) {
	w = ""
	len = length(s)
	for (j = 1; j <= len; j++) {
		c = substr(s, j, 1)
		c2 = substr(s, j + 1, 1)
		if (c == " " || c == "\t") {
			w = flush(w, line)
		} else if (c == ">" || c == "<" || c == "&" && c2 == ">") {
			# a redirection such as 2>&1 or &>: part of a word
			w = w c
			while (substr(s, j + 1, 1) ~ /[<>&|]/)
				w = w substr(s, ++j, 1)
		} else if (c == "&" || c == "|" || c == ";") {
			w = flush(w, line)
			if (c2 == c) {
				emit(c c, "", line)
				j++
			} else {
				emit(c, "", line)
				if (c == "|" && c2 == "&")
					j++
			}
		} else if (c == "(" || c == ")") {
			w = flush(w, line)
			emit(c, "", line)
		} else {
			w = w c
		}
	}
	flush(w, line)
}

function flush(w, line) {
	if (w != "")
		emit("w", w, line)
	return ""
}

function emit(t, v, line) {
	T[++nt] = t
	V[nt] = v
	TL[nt] = line
}

# Pass 2: follow the statements of each block (body, loop, if, group,
# subshell).  CUR[f] is the statement being read in block f, PRV[f] the
# one before it; AO[f] says CUR[f] has an && or ||.
function push() {
	F++
	CUR[F] = PRV[F] = ""
	AO[F] = 0
}

function pop() {
	if (F > 0)
		F--
}

function add(v, line) {
	CUR[F] = CUR[F] == "" ? v : CUR[F] " " v
	CL[F] = line
}

function end_stmt() {
	if (CUR[F] != "") {
		PRV[F] = CUR[F]
		PL[F] = CL[F]
	}
	CUR[F] = ""
	AO[F] = 0
}

# a word that may follow a newline without the line before it ending in &&
function closer(k) {
	return T[k] == ")" || T[k] == ";;" || T[k] == "w" &&
	       V[k] ~ /^(done|fi|[}]|else|elif|esac|then|do)$/
}

function check(desc,   k, t, v, cp, p, x, incase) {
	F = -1
	push()
	cp = 1
	incase = 0
	for (k = 1; k <= nt; k++) {
		t = T[k]
		v = V[k]
		KW[k] = 0
		if (incase) {
			# case ... esac is taken as one word
			if (t == "w" && v == "esac") {
				incase = 0
				add(v, TL[k])
				cp = 0
			}
			continue
		}
		if (t == "w") {
			if (cp && v ~ /^(if|while|until|for|[{!])$/) {
				KW[k] = 1
				if (v != "!")
					push()
				cp = (v != "for")
			} else if (cp && v ~ /^(then|do|else|elif)$/) {
				KW[k] = 1
				CUR[F] = PRV[F] = ""
				AO[F] = 0
			} else if (cp && v ~ /^(done|fi|[}])$/) {
				KW[k] = 1
				end_stmt()
				if (v == "done" && PRV[F] != "" && PRV[F] !~ EXIT)
					report(PL[F], desc, LOOP)
				pop()
				add(v, TL[k])
				cp = 0
			} else if (cp && v == "case") {
				incase = 1
			} else if (cp && k + 2 <= nt && T[k + 1] == "(" &&
				   T[k + 2] == ")") {
				# name() { ... }: a function definition
				add(v "()", TL[k])
				k += 2
			} else {
				add(v, TL[k])
				cp = 0
			}
		} else if (t == "&&" || t == "||" || t == "|") {
			add(t, TL[k])
			if (t != "|")
				AO[F] = 1
			cp = 1
		} else if (t == "&") {
			if (AO[F])
				report(TL[k], desc, BG)
			end_stmt()
			cp = 1
		} else if (t == ";") {
			if (k < nt && T[k + 1] != "nl" && !closer(k + 1))
				report(TL[k], desc, SEMI)
			end_stmt()
			cp = 1
		} else if (t == ";;") {
			end_stmt()
			cp = 1
		} else if (t == "(") {
			push()
			cp = 1
		} else if (t == ")") {
			end_stmt()
			pop()
			add(t, TL[k])
			cp = 0
		} else if (t == "nl") {
			p = k - 1
			if (p < 1 || T[p] ~ /^(nl|&&|\|\||\||\(|&)$/ ||
			    T[p] == "w" && KW[p] && V[p] !~ /^(done|fi|[}])$/)
				continue
			for (x = k + 1; x <= nt && T[x] == "nl"; x++)
				;
			if (x <= nt && !closer(x))
				report(TL[p], desc,
				       T[p] == ";" ? SEMI_END : NO_AND)
			end_stmt()
			cp = 1
		}
	}
}
AWK

exec awk "$prog" "$@"
