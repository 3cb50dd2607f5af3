#!/usr/bin/env bash
# CI check of the air-gapped install (README, "An air-gapped GPU node"), for the CPU case: download the wheels with
# tools/offline_wheels.sh, leaving torch out as a node that has its own would, then install them into a fresh virtual
# environment with `pip install --no-index --find-links` (no registry) and run a papermill ablation there.
# The "node's own torch" is the project's .venv torch, made visible to the fresh environment by a .pth file that
# exposes only torch, torchaudio, torchvision and the packages they need, nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}; wheels=$work/wheels; venv=$work/venv; node=$work/node-site
skip="torch torchaudio torchvision"
tools/offline_wheels.sh --python "$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')" --skip "$skip" "$wheels" 2>&1 | grep -v '^WARNING: Location'
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
rm -rf "$node"; mkdir -p "$node"
.venv/bin/python - "$site" "$node" <<'PY'
import sys, re, os
from importlib.metadata import distribution
site, node = sys.argv[1], sys.argv[2]
from importlib.metadata import distributions
todo, done = ['torch', 'torchaudio', 'torchvision'], set()
todo += [d.metadata['Name'] for d in distributions(path=[site]) if re.match(r'(nvidia|cuda)[-_]', d.metadata['Name'].lower())]   # torch's CUDA extras
while todo:   # torch and its own requirements, transitively: what a node with torch preinstalled has
    name = todo.pop(); key = re.sub(r'[-_.]+', '-', name).lower()
    if key in done: continue
    try: d = distribution(name)
    except Exception: continue
    done.add(key)
    for f in d.files or []:
        top = str(f).split('/')[0]
        src, dst = os.path.join(site, top), os.path.join(node, top)   # a package folder, a module, or the dist-info
        if top not in ('..', 'bin') and os.path.exists(src) and not os.path.lexists(dst): os.symlink(src, dst)
    for r in d.requires or []:
        if 'extra ==' in r: continue
        todo.append(re.split(r'[ <>=!~;(\[]', r, 1)[0])
print(f"node site: {len(done)} distributions ({', '.join(sorted(done))})")
PY
rm -rf "$venv"; python3 -m venv "$venv"
echo "$node" > "$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/node_torch.pth"
"$venv/bin/pip" install -q --disable-pip-version-check --no-index --find-links "$wheels" -e ".[media]" papermill ipykernel
"$venv/bin/python" -c "import torch, gcsa_fer, papermill, soundfile, av, cv2; print('offline install: gcsa_fer', gcsa_fer.__version__, 'torch', torch.__version__)"
"$venv/bin/gcsa_fer" ablate --preset synthetic --modalities v --rows Base --out "$work/runs" 2>&1 | tail -2
echo "offline-check: installed from $(ls "$wheels"/*.whl | wc -l) wheels without a registry and ran a papermill ablation"
