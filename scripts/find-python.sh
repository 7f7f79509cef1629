#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter: PATH first, then pyenv
# (3.12 preferred: the stack is verified on it).
# Exit 1 with instructions when there is none.
set -u
works() { "$1" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
for name in python3.12 python3.13 python3.14 python3 python; do
    exe=$(command -v "$name" 2>/dev/null) || continue
    if works "$exe"; then "$exe" -c 'import sys; print(sys.executable)'; exit 0; fi
done
if command -v pyenv >/dev/null 2>&1; then
    root=$(pyenv root)
    for exe in $(ls -d "$root"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -V); do
        if works "$exe"; then echo "$exe"; exit 0; fi
    done
fi
cat >&2 <<'MSG'
error: multiscale needs Python >= 3.12 (the DOLFINx wheel has no build for older Pythons).
Install one, for example:
  pyenv install 3.12      (then run make again; pyenv versions are found automatically)
  apt-get install python3.12 python3.12-venv
  conda create -n multiscale python=3.12
MSG
exit 1
