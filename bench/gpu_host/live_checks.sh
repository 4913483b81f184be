#!/bin/bash
# Back to back with install.sh on the same warm machine: join and install Ray, then the live-Ray
# gpu test (two trainings share the card) and the training benchmark on the GPU.
export PYTHONUNBUFFERED=1
cat /tmp/parts/ray.part_aa .whl3/ray.part_ab > /tmp/ray-2.60.0-cp312-cp312-manylinux2014_x86_64.whl
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir /tmp/ray-2.60.0-cp312-cp312-manylinux2014_x86_64.whl 2>&1 | tail -3
timeout 200 python3 -m pytest -p no:cacheprovider -o addopts="" -m gpu -rA --timeout 190 \
  tests/integration/test_gpu_training.py 2>&1 | tee $OUT/integration_gpu.log | tail -30
timeout 240 python3 bench/training.py --architecture resnet18 --epochs 3 > $OUT/bench_training.json 2> $OUT/bench_training.err
echo "bench rc=$?"; cat $OUT/bench_training.json; tail -5 $OUT/bench_training.err
