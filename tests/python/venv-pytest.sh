#!/usr/bin/env bash
# Installs the Python package the way a user does, into a fresh virtual environment, and
# runs the pytest suite with that environment's interpreter (the suite imports the
# installed package, nothing from the source tree):
#
#   python3 -m venv --system-site-packages <work>/venv
#   <work>/venv/bin/python -m pip install --no-build-isolation --no-index <package>
#
# --system-site-packages lets the environment see Debian's numpy, pytest and torch;
# --no-build-isolation and --no-index keep pip offline (setuptools from Debian builds it).
# The package directory is copied first, because setuptools writes build/ and *.egg-info
# next to the sources it builds.
#
# usage: venv-pytest.sh <python3> <package-dir> <work-dir> <tests-dir> [pytest args...]
set -euo pipefail
python=$1 package=$2 work=$3 tests=$4
shift 4
rm -rf "$work"
mkdir -p "$work"
cp -r "$package" "$work/package"
rm -rf "$work/package/build" "$work/package"/*.egg-info
"$python" -m venv --system-site-packages "$work/venv"
"$work/venv/bin/python" -m pip install --no-build-isolation --no-index --disable-pip-version-check \
  -q "$work/package"
cd "$work"
exec "$work/venv/bin/python" -m pytest -q -rs -p no:cacheprovider "$tests" "$@"
