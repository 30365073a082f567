#!/usr/bin/env bash
# GPU check of caffe_like, for whenever a CUDA machine is at hand (CI never runs it).
#
#   tools/gpu_check.sh                      # on a CUDA machine: about 2-3 minutes on an H100
#   tools/gpu_check.sh --device cpu --iterations 5 --nets mnist2d   # the script itself, on a CPU
#
# 1. prints nvidia-smi and torch's CUDA information;
# 2. tools/gpu_check.py: images/s and loss of the paper's MNIST-2D and CIFAR-10 nets (fp32, channels_last,
#    AMP float16/bfloat16; MNIST-2D also hand-written PyTorch, the prefetching Data layer and a diagnostic
#    without the loss's label check) for a fixed number of iterations on generated data, as one table;
# 3. the GPU unit tests (pytest -m gpu, over the test files that have such tests).
# Arguments go to tools/gpu_check.py.  With --device cpu, steps 1 and 3 are skipped.  Exit status: non-zero
# when any step fails.  PYTHON selects the interpreter (default: python3).
set -u -o pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
status=0
on_cpu=0
for arg in "$@"; do
  [ "$arg" = "cpu" ] && on_cpu=1
done
start=$(date +%s)

if [ "$on_cpu" = 0 ]; then
  echo "== nvidia-smi"
  nvidia-smi || { echo "nvidia-smi failed"; status=1; }
  echo "== torch"
  "$PYTHON" - <<'PY' || status=1
import sys, torch
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version()}")
if not torch.cuda.is_available():
    sys.exit("CUDA is not available to torch")
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"cuda:{i} {p.name}, capability {p.major}.{p.minor}, {p.multi_processor_count} SMs, "
          f"{p.total_memory / 2**30:.1f} GiB; bf16 supported: {torch.cuda.is_bf16_supported()}")
PY
fi

echo "== training speed (tools/gpu_check.py $*)"
"$PYTHON" tools/gpu_check.py "$@" || status=1

if [ "$on_cpu" = 0 ]; then
  echo "== GPU unit tests (pytest -m gpu)"
  files=$(grep -rl --include='test_*.py' 'mark.gpu' tests | sort)
  if [ -n "$files" ]; then
    # shellcheck disable=SC2086
    "$PYTHON" -m pytest -q -m gpu -p no:cacheprovider $files || status=1
  fi
fi
echo "== done in $(( $(date +%s) - start )) s, status $status"
exit $status
