#!/usr/bin/env bash
# Download, on a machine that reaches PyPI, the wheels that `make gpu-check` needs on a GPU machine that reaches no
# registry and already holds a CUDA PyTorch image (torch, torchaudio, torchvision, timm, numpy, pandas, scikit-learn,
# scikit-image, seaborn, matplotlib, h5py, ...): the library's requirements that such an image lacks (fastcore, pooch,
# soundfile) and papermill with a Jupyter kernel (ipykernel) to execute the experiment notebooks. PyAV and OpenCV are
# not needed by the check (RAVDESS is Opus audio, read by soundfile, and action-unit features).
#
#   tools/device_wheels.sh [--python 3.12] [--platform x86_64-manylinux_2_28] [DIR]
#
#   --python    the GPU machine's Python (default 3.12)
#   --platform  its platform, as uv names it (default x86_64-manylinux_2_28)
#   DIR         where the wheels go (default .gpu-wheels/, git-ignored; `make gpu-check-wheels` fills it)
#
# The set is resolved once for the target with `uv pip compile`; the packages that the image already has (IMAGE below)
# are then left out, so that the image's own builds are used and the folder stays small (the device tool carries at
# most 64 MiB with the working tree). It writes DIR/requirements.txt, the exact list of what is in DIR. On the GPU
# machine tools/gpu_run.sh installs them with `pip install --no-index --no-deps --target`.
set -euo pipefail
cd "$(dirname "$0")/.."
py=3.12; plat=x86_64-manylinux_2_28; dir=.gpu-wheels
while [ $# -gt 0 ]; do
  case $1 in
    --python) py=$2; shift 2 ;;
    --platform) plat=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) dir=$1; shift ;;
  esac
done
# What the GPU image holds (its package list as the device tool documents it, read 2026-11-17): never carried.
IMAGE="absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core cuda-pathfinder
cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools
formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna
imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver lazy-
loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe
matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals
networkx ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime
nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13
nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript
opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy peft
pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments
pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist
python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image
scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six sortedcontainers
statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm
tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope
triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl
zipp"
uv=$(command -v uv || true); [ -z "$uv" ] && [ -x .venv/bin/uv ] && uv=.venv/bin/uv
if [ -z "$uv" ]; then   # uv resolves for another platform than this one; bootstrap it into a throw-away venv
  tmp=$(mktemp -d); python3 -m venv "$tmp/uv" && "$tmp/uv/bin/pip" install -q --disable-pip-version-check uv && uv=$tmp/uv/bin/uv
fi
mkdir -p "$dir"
rm -f "$dir"/*.whl
python3 - > "$dir/requirements.in" <<'PY'
import configparser, shlex
c = configparser.ConfigParser(delimiters=['=']); c.read('settings.ini'); d = c['DEFAULT']
need = {'fastcore', 'pooch', 'soundfile'}   # the library's requirements that the image lacks
reqs = shlex.split(d['requirements']) + shlex.split(d['media_requirements'])
print('\n'.join([r for r in reqs if r.split('<')[0].split('>')[0].split('=')[0] in need] + ['papermill', 'ipykernel']))
PY
"$uv" pip compile -q --no-header --no-annotate --python-version "$py" --python-platform "$plat" "$dir/requirements.in" \
  -o "$dir/requirements.all.txt"
norm() { echo "$1" | tr 'A-Z_.' 'a-z--'; }
image=" "; for s in $IMAGE; do image+="$(norm "$s") "; done
: > "$dir/requirements.txt"
while IFS= read -r line; do
  name=$(norm "${line%%==*}")
  [[ "$image" == *" $name "* ]] || echo "$line" >> "$dir/requirements.txt"
done < <(grep -v '^\s*#' "$dir/requirements.all.txt" | grep '==' | sed 's/ *;.*//')
arch=${plat%%-*}; glibc=${plat##*_2_}
plats=(--platform any)
for m in $(seq "$glibc" -1 17); do plats+=(--platform "manylinux_2_${m}_$arch"); done
plats+=(--platform "manylinux2014_$arch" --platform "manylinux1_$arch")
python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version "$py" \
  --implementation cp "${plats[@]}" -d "$dir" -r "$dir/requirements.txt"
rm -f "$dir/requirements.in" "$dir/requirements.all.txt"
echo "$(ls "$dir"/*.whl | wc -l) wheels, $(du -sh --apparent-size "$dir" | cut -f1), in $dir/ for Python $py on $plat"
