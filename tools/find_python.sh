#!/bin/sh
# Print the path of a Python this series supports (CPython 3.10 to 3.14), for `make setup`.
# Tries $PYTHON if it is set, else python3, then python3.14, python3.13, ... python3.10 on the PATH.
# If none is supported, print one message saying what was found and how to get a supported one.

is_supported() {
    "$1" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 14))' >/dev/null 2>&1
}

if [ -n "$PYTHON" ]; then
    candidates="$PYTHON"
else
    candidates="python3 python3.14 python3.13 python3.12 python3.11 python3.10"
fi
for name in $candidates; do
    path=$(command -v "$name" 2>/dev/null) || continue
    if is_supported "$path"; then
        echo "$path"
        exit 0
    fi
done

first=${candidates%% *}
if found=$(command -v "$first" 2>/dev/null); then
    found="$first is $("$found" -c 'import sys; print("Python", sys.version.split()[0])' 2>/dev/null || echo 'not a working Python') ($found)"
else
    found="there is no $first on the PATH"
fi
[ -n "$PYTHON" ] || found="$found, and no python3.10 ... python3.14 is on the PATH"
cat >&2 <<MESSAGE
This series needs Python 3.10 to 3.14, but $found.
Install one, then run make again: from https://www.python.org/downloads/, with your OS package manager
(e.g. sudo apt install python3.12, brew install python@3.13), or with uv: uv python install 3.13.
To use a particular one: make PYTHON=/path/to/python3.13
MESSAGE
exit 1
