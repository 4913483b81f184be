#!/bin/bash
# Stash the first part of Ray's wheel and install the small wheels into the machine's own
# Python (the conversion sandbox reads only the interpreter's own folders and takes no PYTHONPATH),
# with a .pth for this checkout.
export PYTHONUNBUFFERED=1
mkdir -p /tmp/parts && cp .whl2/ray.part_aa /tmp/parts/
SITE=$(python3 -c "import site; print(site.getsitepackages()[0])"); echo "site: $SITE"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir .whl/*.whl 2>&1 | tail -3
echo "$PWD" > "$SITE/cvp_checkout.pth"
python3 -c "import pydantic, fastapi, sqlite_utils, cvplatform; print('imports ok', pydantic.VERSION)"
