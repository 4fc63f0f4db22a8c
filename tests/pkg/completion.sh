#!/usr/bin/env bash
# bash completion of krg and krgadm (completions/): commands, subcommands,
# options, and the command after `--` completed as a command.
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
case " $(complete_line _krg krg run -n 2 -- ech) " in *" echo "*) ;; *) fail "krg run -- ech: no echo" ;; esac
case " $(complete_line _krgadm krgadm vcluster exec 1 -- ech) " in *" echo "*) ;; *) fail "vcluster exec -- ech" ;; esac
echo "ok   krg and krgadm complete commands, subcommands, options, and the command after --"
