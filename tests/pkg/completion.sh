#!/usr/bin/env bash
# bash completion of krg and krgadm (completions/): commands, subcommands,
# options, and the command after `--` completed as a command; then every
# command, subcommand and option of the built binaries' --help is checked
# against the completions and the man pages.
set -euo pipefail
. /usr/share/bash-completion/bash_completion 2>/dev/null || { echo "FAIL: bash-completion missing" >&2; exit 1; }
. "$KRG_SOURCE_DIR/completions/krg"
. "$KRG_SOURCE_DIR/completions/krgadm"
fail() { echo "FAIL: $*" >&2; exit 1; }
complete_line() {  # complete_line FUNC WORD... : COMPREPLY for the last word
	local f=$1
	shift
	COMP_WORDS=("$@")
	COMP_CWORD=$(($# - 1))
	COMP_LINE="$*"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	"$f" 2>/dev/null
	echo "${COMPREPLY[*]}"
}
[ "$(complete_line _krg krg mi)" = migrate ] || fail "krg mi: $(complete_line _krg krg mi)"
[ "$(complete_line _krg krg c)" = "checkpoint capset" ] || fail "krg c: $(complete_line _krg krg c)"
[ "$(complete_line _krgadm krgadm cluster '')" = "init status wait poweroff --help" ] || fail "krgadm cluster"
case " $(complete_line _krgadm krgadm nodes del -) " in *" --force "*) ;; *) fail "nodes del -: no --force" ;; esac
[ "$(complete_line _krg krg kill -s TE)" = TERM ] || fail "krg kill -s TE: $(complete_line _krg krg kill -s TE)"
case " $(complete_line _krg krg run -n 2 -- ech) " in *" echo "*) ;; *) fail "krg run -- ech: no echo" ;; esac
case " $(complete_line _krgadm krgadm vcluster exec 1 -- ech) " in *" echo "*) ;; *) fail "vcluster exec -- ech" ;; esac
echo "ok   krg and krgadm complete commands, subcommands, options, and the command after --"

# Everything the built binaries accept, taken from their --help, must be in
# the completion and the man page: every command, every subcommand (the
# first lowercase word after the command on a usage line), every option on a
# usage line (offered when completing that subcommand) or described in an
# option line of the help (offered by one of the command's subcommands).
B=${KRG_BUILD_DIR:?}
for t in krg krgadm krgd; do [ -x "$B/$t" ] || fail "$B/$t not built"; done
errors=0
miss() { echo "MISSING: $*" >&2; errors=$((errors + 1)); }
usage_entries() {  # usage_entries TOOL CMD < HELP: "SUB:OPTIONS" per usage line
	awk -v pre="$1${2:+ $2}" '
		/^[Uu]sage: / { u = 1 } /^[^ \t]/ && !/^[Uu]sage: / { u = 0 } /^$/ { u = 0 }
		!u { next }
		{ i = index($0, pre " ") }
		i { if (n++) print line; line = substr($0, i + length(pre) + 1); next }
		{ line = line " " $0 }
		END { if (n) print line }' |
	while IFS= read -r l; do
		w=${l%% *}
		[[ $w =~ ^[a-z][a-z|]*$ ]] || w=
		o=$(grep -oE '(--[a-z][a-z0-9-]*|(^|[][(| ])-[A-Za-z]([] )|]|$))' <<<"$l" | grep -oE -- '-+[A-Za-z][a-z0-9-]*' | sort -u | tr '\n' ' ')
		for s in ${w//|/ }; do printf '%s:%s\n' "$s" "$o"; done
		[ -n "$w" ] || printf ':%s\n' "$o"
	done
}
def_opts() {  # option lines of a help text (not its usage lines)
	awk '/^[Uu]sage: /{u=1} /^$/||/^[^ \t]/&&!/^[Uu]sage: /{u=0} !u && /^[ \t]+-/' |
	sed -E 's/^[ \t]+//; s/([^ ])  .*/\1/' |
	grep -oE -- '(--[a-z][a-z0-9-]*|^-[A-Za-z]([ ,]|$))' | grep -oE -- '-+[A-Za-z][a-z0-9-]*' | sort -u
}
in_list() { case " $2 " in *" $1 "*) return 0 ;; esac; return 1; }
man_has() { grep -qF -- "$2" "$KRG_SOURCE_DIR/man/$1"; }
declare -A man=([krg]=krg.1.scd [krgadm]=krgadm.8.scd [krgd]=krgd.8.scd)
for tool in krg krgadm; do
	cmds=$("$B/$tool" --help | sed -n '/^Commands:/,/^$/p' | awk 'NF && !/^Commands:/ { print $1 }' | tr '\n' ' ')
	[ "$(wc -w <<<"$cmds")" -ge 5 ] || fail "$tool --help lists no commands"
	top=$(complete_line _$tool $tool '')
	for c in $cmds; do in_list "$c" "$top" || miss "$tool: completion of '$tool ' lacks $c"; done
	for w in $top; do [ "$w" = --help ] || in_list "$w" "$cmds" || miss "$tool: completion offers unknown command $w"; done
	for c in $cmds; do
		man_has "${man[$tool]}" "*$c*" || man_has "${man[$tool]}" "*$c " || miss "$tool man page: no *$c*"
		help=$("$B/$tool" "$c" --help 2>&1) || fail "$tool $c --help: exit $?"
		entries=$(usage_entries "$tool" "$c" <<<"$help")
		[ -n "$entries" ] || fail "$tool $c --help: no usage line"
		subs=$(cut -d: -f1 <<<"$entries" | sort -u | tr '\n' ' ')
		# Subcommands' own help (vcluster has one per subcommand).
		for s in $subs; do
			sh=$("$B/$tool" "$c" "$s" --help 2>&1) || fail "$tool $c $s --help: exit $?"
			[ "$sh" = "$help" ] && continue
			entries+=$'\n'$(usage_entries "$tool" "$c" <<<"$sh" | awk -F: -v s="$s" '$1 == s || $1 == "" { print s ":" $2 }')
			for o in $(def_opts <<<"$sh"); do entries+=$'\n'"$s:$o"; done
		done
		if [ -n "${subs// /}" ] && [ "$tool" = krgadm ]; then
			got=$(complete_line _$tool $tool "$c" '')
			for s in $subs; do in_list "$s" "$got" || miss "$tool: completion of '$tool $c ' lacks $s"; done
		fi
		union=""
		while IFS=: read -r s opts; do
			if [ -n "$s" ]; then
				man_has "${man[$tool]}" "*$c $s*" || miss "$tool man page: no *$c $s*"
				[ "$tool" = krgadm ] || in_list "$s" "$(complete_line _$tool $tool "$c" '')" ||
					miss "$tool: completion of '$tool $c ' lacks $s"
			fi
			got=$(complete_line _$tool $tool "$c" $s -)
			union+=" $got"
			for o in $opts; do
				in_list "$o" "$got" || miss "$tool: completion of '$tool $c${s:+ $s} -' lacks $o"
				man_has "${man[$tool]}" "*$o*" || miss "$tool man page: no *$o*"
			done
		done <<<"$entries"
		for o in $(def_opts <<<"$help"); do
			in_list "$o" "$union" || miss "$tool: completion of '$tool $c ... -' never offers $o"
			man_has "${man[$tool]}" "*$o*" || miss "$tool man page: no *$o*"
		done
	done
done
for o in $("$B/krgd" --help | def_opts) $("$B/krgd" --help | usage_entries krgd "" | cut -d: -f2); do
	man_has krgd.8.scd "*$o*" || miss "krgd man page: no *$o*"
done
[ "$errors" = 0 ] || fail "$errors commands or options of the binaries' --help missing from completions or man pages"
echo "ok   every command, subcommand and option in the --help of krg, krgadm and krgd is in the completions and man pages"
