#!/usr/bin/env bash
# Download, on a machine that reaches a package registry, every wheel that `make ablation` needs, for the
# Python version and platform of a GPU node that has no internet. Copy the folder (with the repository) to the
# node and install from it there without a registry: see "An air-gapped GPU node" in the README.
#
#   tools/offline_wheels.sh [--python 3.11] [--platform x86_64-manylinux_2_28] [--skip "torch torchaudio torchvision"] [DIR]
#
#   --python    the node's Python version (default: this machine's python3)
#   --platform  the node's platform, as uv names it (default: x86_64-manylinux_2_28; aarch64-manylinux_2_28 for ARM nodes)
#   --skip      packages the node already has (for example a cluster's own torch build): their wheels and the
#               CUDA wheels only they pull in (nvidia-*, cuda-*, triton) are left out
#   DIR         where the wheels go (default: wheels/)
#
# What it downloads: the library's requirements and media extras (from settings.ini), papermill and ipykernel to
# execute the experiment notebooks, and setuptools and wheel so that the project itself installs offline. The set is
# resolved once for the target with `uv pip compile` (so every version fits every other), the skipped packages are
# removed from it, and pip downloads the rest, binary wheels only, without resolving again. It writes
# DIR/requirements.txt, the exact list of what is in DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
py=$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")'); plat=x86_64-manylinux_2_28; skip=""; dir=wheels
while [ $# -gt 0 ]; do
  case $1 in
    --python) py=$2; shift 2 ;;
    --platform) plat=$2; shift 2 ;;
    --skip) skip=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) dir=$1; shift ;;
  esac
done
uv=$(command -v uv || true); [ -z "$uv" ] && [ -x .venv/bin/uv ] && uv=.venv/bin/uv
if [ -z "$uv" ]; then   # uv resolves for another platform than this one; bootstrap it into a throw-away venv
  tmp=$(mktemp -d); python3 -m venv "$tmp/uv" && "$tmp/uv/bin/pip" install -q --disable-pip-version-check uv && uv=$tmp/uv/bin/uv
fi
mkdir -p "$dir"
python3 - > "$dir/requirements.in" <<'PY'
import configparser, shlex
c = configparser.ConfigParser(delimiters=['=']); c.read('settings.ini'); d = c['DEFAULT']
# uv ignores upper bounds of Requires-Python, pip does not: backports-strenum 1.3.1 (needed by ai-edge-litert) declares
# <3.11, so pip would refuse the wheel uv picks; 1.2.8 declares no bound and is what pip takes
pip_ok = ['backports-strenum<1.3']
print('\n'.join(shlex.split(d['requirements']) + shlex.split(d['media_requirements']) + ['papermill', 'ipykernel', 'setuptools', 'wheel'] + pip_ok))
PY
"$uv" pip compile -q --no-header --no-annotate --python-version "$py" --python-platform "$plat" "$dir/requirements.in" -o "$dir/requirements.all.txt"
norm() { echo "$1" | tr 'A-Z_.' 'a-z--'; }
skipn=" "; for s in $skip; do skipn+="$(norm "$s") "; done
: > "$dir/requirements.txt"
while IFS= read -r line; do
  name=$(norm "${line%%==*}")
  if [ -n "$skip" ] && { [[ "$skipn" == *" $name "* ]] || [[ $name == nvidia-* ]] || [[ $name == cuda-* ]] || [[ $name == triton ]]; }; then continue; fi
  echo "$line" >> "$dir/requirements.txt"
done < <(grep -v '^\s*#' "$dir/requirements.all.txt" | grep '==')
case $plat in
  x86_64-manylinux_2_*) arch=x86_64 ;; aarch64-manylinux_2_*) arch=aarch64 ;; *) arch="" ;;
esac
plats=(--platform any)
if [ -n "$arch" ]; then
  glibc=${plat##*_2_}
  for m in $(seq "$glibc" -1 17); do plats+=(--platform "manylinux_2_${m}_$arch"); done
  plats+=(--platform "manylinux2014_$arch" --platform "manylinux1_$arch")
fi
python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version "$py" --implementation cp \
  "${plats[@]}" -d "$dir" -r "$dir/requirements.txt"
rm -f "$dir/requirements.in" "$dir/requirements.all.txt"
echo "$(ls "$dir"/*.whl | wc -l) wheels, $(du -sh "$dir" | cut -f1), in $dir/ for Python $py on $plat${skip:+ (left out: $skip and the CUDA wheels only they need)}"
