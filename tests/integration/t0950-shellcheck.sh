#!/bin/sh
# Shell code follows the house rules: POSIX sh, shellcheck-clean.
. "$(dirname "$0")/lib.sh"

command -v shellcheck >/dev/null || skip "shellcheck is not installed"
cd "$VGPU_SOURCE_DIR" || exit 1
# shellcheck disable=SC2046
shellcheck -s sh -x -e SC1091 .ci/run $(find scripts tests bench -name '*.sh' | sort) ||
    fail "shellcheck found problems"
echo PASS
