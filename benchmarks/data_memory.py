"""A training from a cache several times larger than the memory its process may use: no OOM kill.

The issue's memory check: ``python -m search train`` of a small network on a
folder source for one epoch, inside a memory cgroup whose limit is a quarter
(``--factor``) of the decoded cache's training rows, finishes without an
out-of-memory kill, at a throughput recorded here. It holds when the cache
stays memory-mapped (``evaluation.data`` reads it into memory only when it
fits the cgroup's room, which ``evaluation.feeding.available_memory`` reads
from the process's own cgroup) and training gathers each batch from the
mapping, so pages come from disk and the kernel evicts them again under the
limit. The mapping is advised for random access and each batch's rows are
asked for ahead (``evaluation.images.mapping``): without that, the disk's
read-ahead (8 MiB here) read about 19 times the rows a batch used, which
under the limit was evicted unused and read again, 60 GB in the first minutes
of an epoch over a 4 GB cache. The JSON's ``read_from_storage_mib`` is what
the training process read from disk: about the cache's size when each row
is read once.

The images: Fashion-MNIST's training images (reused with other tints past
60,000), each tinted with a seeded colour and enlarged to ``--side`` px (224,
the J4 case's), as RGB JPEG files in train/ class folders, with 100 test
images per class in test/: the user's split, so the training split (train
plus carved validation, which ``search train`` trains on) is every image of
train/. The folder and its cache are built outside the cgroup, once, and
reused from ``--work``. The network trains on the batches resized to
``--resize`` px (64): the data read is the cache's 224 px rows, the compute
a small network's, so the figure is the data path's as far as 2 CPUs allow.

The limit is 1 GiB by default because the process itself needs about half of
it before any data: ``import torch`` alone holds about 290 MiB of anonymous
memory and maps about 230 MiB of libraries (torch 2.x with its CUDA
libraries), which count against the cgroup as well.

Steps, each recorded in the JSON:

1. a control: a process in the same cgroup that allocates more than the limit
   must be OOM-killed (the limit is enforced, so the check below can fail);
2. the cache file is dropped from the page cache (``posix_fadvise``
   DONTNEED), so every page the training reads is charged to its cgroup;
3. ``search train CONFIG --dataset folder:... --epochs 1`` in the limited
   cgroup, its memory sampled every 0.2 s (anonymous memory, page cache,
   mapped file pages), then the cgroup's peak, its limit hits and OOM kills;
4. the same command in a cgroup without a limit, cold again, for reference:
   the throughput and the memory the run takes when nothing stops it.

Needs root (it creates child cgroups below its own). cgroup v1
(``memory.limit_in_bytes``, ``memory.max_usage_in_bytes``,
``memory.oom_control``) and v2 (``memory.max``, ``memory.peak``,
``memory.events``) are both handled; where a cgroup cannot be created, the
JSON says what failed.

    python benchmarks/data_memory.py --out benchmarks/results/data_memory.json
    python benchmarks/data_memory.py --limit-mib 256 --work /var/tmp/data-memory --keep   # reuse across runs
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's packages, and the tests' Fashion-MNIST reader
from image_files import CLASSES, fashion_arrays, first_per_class  # noqa: E402

from evaluation import Architecture, save_architecture  # noqa: E402
from evaluation.images import SourceOptions, list_source, open_cache  # noqa: E402

MIB = 2**20
TEST_PER_CLASS = 100
# The network: the ImageNet stem (7x7/2 conv, 3x3/2 pool) divides the side by 4, so its activations stay small
# beside the limit; the memory under test is the data's.
NETWORK = {
    "stem": {"style": "imagenet", "width": 16},
    "stages": [{"block": "dense", "depth": 2, "growth_rate": 12, "bn_size": 0}],
}
SAMPLE_SECONDS = 0.2


# --- the folder of images --------------------------------------------------------------------


def _tinted(grey: np.ndarray, seed: int, side: int) -> Image.Image:
    """A grey 28 px image as an RGB one at ``side`` px, tinted by a colour drawn from ``seed``."""
    colour = np.random.default_rng(seed).uniform(0.35, 1.0, 3)
    rgb = np.clip(grey[..., None].astype(np.float32) * colour, 0, 255).astype(np.uint8)
    return Image.fromarray(rgb).resize((side, side), Image.Resampling.BICUBIC)


def _write_part(job: tuple[Path, list[tuple[str, int, int, bool]], int]) -> int:
    """Write (class, source index, seed, from the test set) images as JPEG files; a pool task."""
    folder, items, side = job
    x, _, tx, _ = fashion_arrays()
    for name, index, seed, test in items:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        _tinted((tx if test else x)[index], seed, side).save(path, quality=90)
    return len(items)


def write_folder(folder: Path, *, images: int, side: int) -> dict[str, Any]:
    """``images`` training JPEGs in train/<class>/ and 100 a class in test/<class>/, unless written before."""
    marker = folder / ".written.json"  # hidden: the source lister passes over it
    wanted = {"images": images, "side": side, "test_per_class": TEST_PER_CLASS, "format": 1}
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return {**wanted, "reused": True, "seconds": 0.0}
    shutil.rmtree(folder, ignore_errors=True)
    _, y, _, ty = fashion_arrays()
    items = [(f"train/{CLASSES[y[i % len(y)]]}/{i:06d}.jpg", i % len(y), i, False) for i in range(images)]
    items += [(f"test/{CLASSES[ty[i]]}/{i:05d}.jpg", i, 10**7 + i, True) for i in first_per_class(ty, TEST_PER_CLASS)]
    started = time.perf_counter()
    parts = [(folder, items[start : start + 2000], side) for start in range(0, len(items), 2000)]
    with Pool(len(os.sched_getaffinity(0))) as pool:
        written = sum(pool.imap_unordered(_write_part, parts))
    assert written == len(items), f"wrote {written} of {len(items)} files"
    marker.write_text(json.dumps(wanted))
    return {**wanted, "reused": False, "seconds": time.perf_counter() - started}


def build_cache(source: str, cache_dir: Path) -> dict[str, Any]:
    """The source's cache (decoded now, or found), and what it holds."""
    options = SourceOptions()
    started = time.perf_counter()
    cache = open_cache(list_source(source, options), options, cache_dir=cache_dir, progress=sys.stderr.isatty())
    seconds = time.perf_counter() - started
    train_rows = cache.ranges["val"][1]  # search train trains on train and validation rows
    row_bytes = int(np.prod(cache.images.shape[1:]))
    return {
        "path": str(cache.directory),
        "images_file": str(cache.directory / "images.npy"),
        "rows": len(cache.labels),
        "shape": list(cache.images.shape),
        "images_bytes": cache.images.nbytes,
        "training_rows": train_rows,
        "training_bytes": train_rows * row_bytes,
        "open_or_build_seconds": seconds,
    }


def drop_from_page_cache(path: Path) -> None:
    """Evict ``path``'s clean pages (this file only; nothing else on the machine is touched)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(descriptor)


# --- memory cgroups ----------------------------------------------------------------------------


class CgroupError(RuntimeError):
    """A cgroup could not be made or used here; the message says which file and why."""


class MemoryCgroup:
    """A child memory cgroup below this process's own, v1 or v2, with the files named per version."""

    def __init__(self, name: str, limit: int | None) -> None:
        self.version, parent = _own_memory_cgroup()
        self.path = parent / name
        self.limit = limit
        names = {
            "v1": ("memory.limit_in_bytes", "memory.max_usage_in_bytes", "memory.usage_in_bytes"),
            "v2": ("memory.max", "memory.peak", "memory.current"),
        }
        self.limit_file, self.peak_file, self.usage_file = names[self.version]

    def __enter__(self) -> MemoryCgroup:
        try:
            if self.path.exists():
                self.path.rmdir()  # left by an interrupted run; empty, or rmdir says why not
            self.path.mkdir()
            if self.limit is not None:
                (self.path / self.limit_file).write_text(str(self.limit))
                if (self.path / "memory.swap.max").exists():  # v2: no swapping out instead of being killed
                    (self.path / "memory.swap.max").write_text("0")
        except OSError as error:
            raise CgroupError(f"{error.filename}: {error.strerror} (errno {error.errno})") from None
        return self

    def __exit__(self, *_: object) -> None:
        for _ in range(50):  # the last process may take a moment to leave
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)

    def join(self) -> None:
        """Put the calling process in the cgroup (from ``preexec_fn``, so the command starts inside it)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def read_int(self, name: str) -> int | None:
        try:
            return int((self.path / name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stat(self) -> dict[str, int]:
        """Anonymous memory, page cache and mapped file pages now, named alike for both versions."""
        try:
            lines = (self.path / "memory.stat").read_text().splitlines()
        except OSError:
            return {}
        fields = {key: int(value) for key, value in (line.split() for line in lines)}
        if self.version == "v1":
            return {
                "anon": fields.get("rss", 0),
                "file": fields.get("cache", 0),
                "mapped": fields.get("mapped_file", 0),
            }
        return {"anon": fields.get("anon", 0), "file": fields.get("file", 0), "mapped": fields.get("file_mapped", 0)}

    def oom_kills(self) -> int:
        name = "memory.oom_control" if self.version == "v1" else "memory.events"
        try:
            lines = (self.path / name).read_text().splitlines()
        except OSError:
            return 0
        return sum(int(line.split()[1]) for line in lines if line.split()[0] == "oom_kill")

    def limit_hits(self) -> int | None:
        """How often usage reached the limit (v1 failcnt, v2 memory.events' max)."""
        if self.version == "v1":
            return self.read_int("memory.failcnt")
        try:
            lines = (self.path / "memory.events").read_text().splitlines()
        except OSError:
            return None
        return next((int(line.split()[1]) for line in lines if line.split()[0] == "max"), None)


def _own_memory_cgroup() -> tuple[str, Path]:
    """("v1" or "v2", the folder of this process's memory cgroup)."""
    membership = Path("/proc/self/cgroup").read_text().splitlines()
    parts = [line.split(":", 2) for line in membership]
    v1 = next((path for _, controllers, path in parts if "memory" in controllers.split(",")), None)
    if v1 is not None and Path("/sys/fs/cgroup/memory").is_dir():
        return "v1", Path("/sys/fs/cgroup/memory") / v1.lstrip("/")
    v2 = next((path for _, controllers, path in parts if controllers == ""), None)
    top = Path("/sys/fs/cgroup")
    if v2 is not None and (top / "cgroup.controllers").is_file():
        own = top / v2.lstrip("/")
        if "memory" not in (own / "cgroup.subtree_control").read_text().split():
            raise CgroupError(
                f"{own / 'cgroup.subtree_control'} does not enable the memory controller for child cgroups "
                f"(cgroup v2 allows it only in a cgroup with no processes of its own)"
            )
        return "v2", own
    raise CgroupError(f"no memory cgroup found (/proc/self/cgroup: {' | '.join(membership)})")


# --- one limited run -----------------------------------------------------------------------------


def _read_bytes(pid: int) -> int | None:
    """Bytes process ``pid`` has had read from storage so far (/proc/PID/io), None once it is gone."""
    try:
        lines = Path(f"/proc/{pid}/io").read_text().splitlines()
    except OSError:
        return None
    return next((int(line.split()[1]) for line in lines if line.startswith("read_bytes:")), None)


@contextlib.contextmanager
def sampling(group: MemoryCgroup, pid: int) -> Iterator[dict[str, int]]:
    """The largest anon, file and mapped figures of ``group``, and the bytes ``pid`` read from storage
    (``read``, its last sample), sampled until the block ends."""
    peaks: dict[str, int] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(SAMPLE_SECONDS):
            for key, value in group.stat().items():
                peaks[key] = max(peaks.get(key, 0), value)
            read = _read_bytes(pid)
            if read is not None:
                peaks["read"] = read

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peaks
    finally:
        stop.set()
        thread.join()


def run_in(group: MemoryCgroup, command: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """``command`` inside ``group``: exit status, whether it was OOM-killed, wall time and memory figures."""
    started = time.perf_counter()
    with open(log, "w") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, preexec_fn=group.join)
        try:
            with sampling(group, process.pid) as peaks:
                returncode = process.wait()
        except BaseException:  # Ctrl-C: the command goes too, so the cgroup can be removed
            process.kill()
            process.wait()
            raise
    kills = group.oom_kills()
    return {
        "returncode": returncode,
        "oom_killed": kills > 0 or returncode == -signal.SIGKILL,
        "oom_kills": kills,
        "seconds": time.perf_counter() - started,
        "peak_usage_mib": _mib(group.read_int(group.peak_file)),
        "limit_hits": group.limit_hits(),
        "sampled_peak_mib": {key: _mib(value) for key, value in peaks.items() if key != "read"},
        "read_from_storage_mib": _mib(peaks.get("read")),
        "log_tail": log.read_text()[-600:],
    }


def _mib(value: int | None) -> float | None:
    return None if value is None else round(value / MIB, 1)


def control(limit: int, env: dict[str, str], work: Path) -> dict[str, Any]:
    """A process allocating twice the limit in the same kind of cgroup: it must be OOM-killed."""
    allocate = f"import numpy; a = numpy.ones({2 * limit}, dtype=numpy.uint8); print(int(a.sum()))"
    with MemoryCgroup("data_memory_control", limit) as group:
        result = run_in(group, [sys.executable, "-c", allocate], env, work / "control.log")
    return {"allocates_mib": 2 * limit // MIB, **{k: result[k] for k in ("returncode", "oom_killed", "oom_kills")}}


def train_run(
    name: str, limit: int | None, command: list[str], env: dict[str, str], out: Path, cache_file: Path
) -> dict[str, Any]:
    """One cold ``search train`` run in a fresh cgroup: the memory figures and the epoch's throughput."""
    shutil.rmtree(out, ignore_errors=True)
    drop_from_page_cache(cache_file)
    with MemoryCgroup(f"data_memory_{name}", limit) as group:
        result = run_in(group, command, env, out.parent / f"{name}.log")
    record = json.loads((out / "result.json").read_text()) if (out / "result.json").is_file() else None
    if record is not None:
        epoch = record["history"][0]
        result["images_per_second"] = epoch["images_per_second"]
        result["epoch_seconds"] = epoch["seconds"]
        result["train_images"] = record["train_images"]
        result["test_accuracy"] = record["test_accuracy"]
        result["precision"] = record["precision"]
    return result


# --- the whole check -----------------------------------------------------------------------------


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The figures the check is about, in a few fields."""
    limited, reference = report["limited"], report.get("unlimited", {})
    cache_mib = report["cache"]["images_mib"]
    return {
        "finished_without_oom_kill": limited["returncode"] == 0 and not limited["oom_killed"],
        "limit_was_enforced": report["control"]["oom_killed"],
        "training_bytes_over_limit": report["training_bytes_over_limit"],
        "limited_images_per_second": limited.get("images_per_second"),
        "unlimited_images_per_second": reference.get("images_per_second"),
        "limited_peak_usage_mib": limited["peak_usage_mib"],
        "limited_read_over_cache_size": round((limited["read_from_storage_mib"] or 0) / cache_mib, 2),
        "same_result_both_ways": limited.get("test_accuracy") == reference.get("test_accuracy"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit-mib", type=int, default=1024, help="The cgroup's memory limit (default: 1024).")
    parser.add_argument("--factor", type=float, default=4.0, help="Training rows' bytes / limit, at least (default 4).")
    parser.add_argument("--side", type=int, default=224, help="Cached image side in px; RGB (default: 224).")
    parser.add_argument("--resize", type=int, default=64, help="Side the network trains at (default: 64).")
    parser.add_argument("--batch-size", type=int, default=128, help="Training batch (default: 128).")
    parser.add_argument(
        "--work", type=Path, default=None, help="Folder for the images and the cache (kept with --keep)."
    )
    parser.add_argument("--keep", action="store_true", help="Keep --work's images and cache for the next run.")
    parser.add_argument("--no-reference", action="store_true", help="Skip the run without a limit.")
    parser.add_argument("--note", default="", help="A line on the machine's state, into the JSON.")
    parser.add_argument("--out", type=Path, default=None, help="Write the JSON here too.")
    args = parser.parse_args()

    limit = args.limit_mib * MIB
    row_bytes = 3 * args.side**2
    images = math.ceil(args.factor * limit / row_bytes)
    work = args.work or Path(tempfile.mkdtemp(prefix="data-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    needed = 2 * images * row_bytes + 200 * MIB  # the cache and its build's chunks; JPEG files are a tenth
    free = shutil.disk_usage(work).free
    if free < 2 * needed:
        raise SystemExit(
            f"{work}: {free / 2**30:.1f} GiB free; this check needs about {needed / 2**30:.1f} GiB, twice that free"
        )
    started = time.perf_counter()
    try:
        folder = work / "images"
        written = write_folder(folder, images=images, side=args.side)
        source = f"folder:{folder}"
        cache = build_cache(source, work / "cache")
        assert cache["training_bytes"] >= args.factor * limit, (
            f"training rows {cache['training_bytes']} < factor x limit"
        )
        config = work / "network.yaml"
        save_architecture(Architecture.from_dict(NETWORK), config)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "SEARCH_CACHE_DIR": str(work / "cache")}
        command = [sys.executable, "-m", "search", "train", str(config), "--dataset", source, "--epochs", "1"]
        command += ["--batch-size", str(args.batch_size), "--resize", str(args.resize), "--device", "cpu"]
        report: dict[str, Any] = {
            "what": "search train, 1 epoch, from a folder source's cache inside a memory cgroup",
            "note": args.note,
            "machine": {
                "cpus": len(os.sched_getaffinity(0)),
                "load_average_at_start": os.getloadavg(),
                "memory_total_mib": _mib(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")),
                "python": platform.python_version(),
            },
            "limit_mib": args.limit_mib,
            "folder": written,
            "cache": {
                **cache,
                "images_mib": _mib(cache["images_bytes"]),
                "training_mib": _mib(cache["training_bytes"]),
            },
            "training_bytes_over_limit": round(cache["training_bytes"] / limit, 2),
            "command": " ".join(command[1:]),
        }
        try:
            report["control"] = control(limit, env, work)
            report["limited"] = train_run(
                "limited",
                limit,
                command + ["--out", str(work / "run-limited")],
                env,
                work / "run-limited",
                Path(cache["images_file"]),
            )
            if not args.no_reference:
                report["unlimited"] = train_run(
                    "unlimited",
                    None,
                    command + ["--out", str(work / "run-unlimited")],
                    env,
                    work / "run-unlimited",
                    Path(cache["images_file"]),
                )
        except CgroupError as error:
            report["cgroup_error"] = str(error)
        if "limited" in report:
            report["summary"] = summary(report)
        report["machine"]["load_average_at_end"] = os.getloadavg()
        report["seconds"] = time.perf_counter() - started
        text = json.dumps(report, indent=2)
        print(text)
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text + "\n")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
