#!/bin/bash
# The gpu-marked tests that need no Ray (engines, the NVML sampler, the training loop on cuda),
# after installing the wheels (install.sh).
export PYTHONUNBUFFERED=1
nvidia-smi -L; python3 -V

bash "$(dirname "$0")/install.sh"

python3 -c "from cvplatform.gpu import probe_gpu; print(probe_gpu())" 2>&1 | tee $OUT/probe.txt
timeout 180 python3 -m pytest -p no:cacheprovider -o addopts="" -m gpu -rA --timeout 120 \
  tests/unit/test_engines_gpu.py tests/unit/test_benchmark_resources.py tests/unit/test_training_gpu.py \
  2>&1 | tee $OUT/unit_gpu.log | tail -40
