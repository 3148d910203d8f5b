#!/bin/sh
# The documentation keeps up with the code: every command `vgpu-patch --help` lists is in
# the man page and the README, and every option a command's --help (or vgpu-launch's)
# names is in its man page.
. "$(dirname "$0")/lib.sh"

MAN=$VGPU_SOURCE_DIR/docs/vgpu-patch.1
README=$VGPU_SOURCE_DIR/README.md

# options FILE: the options a --help text names in its usage lines and option list.
options() {
    grep -E '^(Usage:| +\[| +--| +-[a-zA-Z], --)' "$1" | grep -o -- '--[a-z][a-z-]*' | sort -u
}

# in_man PAGE OPTION: the page spells --option as roff does (\-\-option).
in_man() {
    grep -qF -- "$(printf '%s' "$2" | sed 's/-/\\-/g')" "$1"
}

"$VGPU_PATCH" --help >"$T/help"
sed -n 's/^  \([a-z]*\)  .*/\1/p' "$T/help" >"$T/commands"
[ "$(wc -l <"$T/commands")" -ge 7 ] || fail "cannot read the commands from --help: $(cat "$T/help")"
while IFS= read -r cmd; do
    grep -q "^\.B $cmd\$" "$MAN" || fail "vgpu-patch.1 does not describe the command $cmd"
    grep -q "vgpu-patch .*$cmd" "$README" || fail "the README does not mention vgpu-patch $cmd"
    "$VGPU_PATCH" "$cmd" --help >"$T/cmd-help" || fail "vgpu-patch $cmd --help failed"
    for opt in $(options "$T/cmd-help"); do
        in_man "$MAN" "$opt" || fail "vgpu-patch.1 does not describe $opt of $cmd"
    done
done <"$T/commands"

"$VGPU_BUILD_DIR/bin/vgpu-launch" --help >"$T/launch-help"
for opt in $(options "$T/launch-help"); do
    in_man "$VGPU_SOURCE_DIR/docs/vgpu-launch.1" "$opt" || fail "vgpu-launch.1 does not describe $opt"
done
echo "PASS"
