#!/usr/bin/env bash
# Refreshes requirements-cpu.lock, the pinned set that the README's commands, .ci/run, tox and the workflow
# install: every dependency of pyproject.toml, its dev extra included, resolved for Python 3.11 on x86-64
# Linux with torch's CPU build (constraints-cpu.txt), so no CUDA build and no nvidia-* package.
#
#   scripts/lock.sh                      # after editing pyproject.toml: keeps every locked version still allowed
#   scripts/lock.sh --upgrade            # every package to the newest version pyproject.toml allows
#   scripts/lock.sh --upgrade-package X  # only X (and what it needs)
#
# Uses uv: $UV, else uv on PATH, else one installed from PyPI into .cache/uv-tool (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
torch=$(sed -n 's/^torch==//p' constraints-cpu.txt)

uv=${UV:-$(command -v uv || true)}
if [ -z "$uv" ]; then
  if [ ! -x .cache/uv-tool/bin/uv ]; then
    python3 -m venv .cache/uv-tool && .cache/uv-tool/bin/pip install -q 'uv>=0.5,<1'
  fi
  uv=.cache/uv-tool/bin/uv
fi

# torch's CPU wheel: from a find-links folder of pip's that holds it (this project's machines), else from
# PyTorch's CPU index. uv reads no pip configuration, hence the look-up.
sources=()
for dir in ${PIP_FIND_LINKS:-$(python3 -m pip config get global.find-links 2>/dev/null || true)}; do
  if compgen -G "$dir/torch-$torch-*.whl" >/dev/null; then sources+=(--find-links "$dir"); fi
done
if [ ${#sources[@]} -eq 0 ]; then
  sources=(--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
fi

"$uv" pip compile pyproject.toml --extra dev -c constraints-cpu.txt \
  --python-version 3.11 --python-platform x86_64-manylinux_2_28 "${sources[@]}" \
  --custom-compile-command scripts/lock.sh -o requirements-cpu.lock "$@" >/dev/null
if grep -Eiq '^(nvidia-|triton==)' requirements-cpu.lock || ! grep -qx "torch==$torch" requirements-cpu.lock; then
  echo "requirements-cpu.lock: not torch's CPU build $torch alone" >&2
  exit 1
fi
echo "requirements-cpu.lock: $(grep -c '^[a-z0-9]' requirements-cpu.lock) packages"
