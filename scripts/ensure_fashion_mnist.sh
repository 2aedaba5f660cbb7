#!/usr/bin/env bash
# Make sure Fashion-MNIST is on this machine: Debian's dataset-fashion-mnist
# where apt works and we are root (as on CI), otherwise torchvision's download.
set -euo pipefail
python=${1:-python3}
system_copy=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if [ -f "$system_copy" ]; then
    exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing Fashion-MNIST from Debian (dataset-fashion-mnist)" >&2
    export DEBIAN_FRONTEND=noninteractive
    if apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null; then
        exit 0
    fi
    echo "apt-get could not install dataset-fashion-mnist; trying torchvision's download" >&2
fi
root=${SEARCH_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/torchvision}
"$python" -c "import sys, torchvision; torchvision.datasets.FashionMNIST(sys.argv[1], train=True, download=True); torchvision.datasets.FashionMNIST(sys.argv[1], train=False, download=True)" "$root"
