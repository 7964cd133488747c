"""Descriptor throughput and streaming memory; prints one JSON object.

  python benchmarks/bench_descriptors.py [--quick] [--threads 2]

Cases: frames/s of the untrained SchNet descriptor (config defaults: 64 features, 3 interactions, 5 A,
per-species pooling) on 64-atom molten-NaCl-like frames held in memory; and peak resident memory of the
workflow's streaming path (extxyz file -> ase.io.iread -> descriptors) for pools of 100-atom frames of two
sizes. One case of any size runs with ``--case streaming 100000`` (about 7 min here; it writes the pool
file, several hundred MB, to the temporary directory). The peak grows slowly with the pool (glibc heap
fragmentation, about 20 kB per frame; see docs/design.md), not with the frames held: 2.8 GB for 100,000
frames.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def frames(n_frames, n_pairs, seed=0):
    """Rock salt expanded to ~1.5 g/cm^3 with large random displacements: liquid-like neighbour counts."""
    from ase.build import bulk

    rng = np.random.default_rng(seed)
    n_cells = {32: (2, 2, 2), 50: (5, 5, 2)}[n_pairs]
    if n_pairs == 32:
        base = bulk("NaCl", "rocksalt", a=6.1, cubic=True).repeat(n_cells)
    else:  # 100 atoms: 50 primitive cells
        base = bulk("NaCl", "rocksalt", a=6.1).repeat(n_cells)
    for _ in range(n_frames):
        atoms = base.copy()
        atoms.positions += rng.normal(0.0, 0.35, atoms.positions.shape)
        atoms.wrap()
        yield atoms


def throughput(n_frames, threads):
    from confselect.descriptors import SchNetDescriptor

    data = list(frames(n_frames, 32))
    descriptor = SchNetDescriptor(["Na", "Cl"], threads=threads)
    descriptor.transform(data[:50])  # build and warm up
    start = time.perf_counter()
    x = descriptor.transform(data)
    wall = time.perf_counter() - start
    return {"case": "throughput", "atoms_per_frame": 64, "frames": n_frames, "threads": threads,
            "wall_s": round(wall, 2), "frames_per_s": round(n_frames / wall, 1), "dim": x.shape[1]}


def streaming(n_frames, threads, workdir):
    from ase.io import iread, write

    from confselect.descriptors import SchNetDescriptor

    path = Path(workdir) / f"pool_{n_frames}.extxyz"
    with open(path, "w") as handle:
        for atoms in frames(n_frames, 50):
            write(handle, atoms, format="extxyz")
    descriptor = SchNetDescriptor(["Na", "Cl"], threads=threads)
    start = time.perf_counter()
    x = descriptor.transform(iread(path, index=":", format="extxyz"), n_frames=n_frames)
    wall = time.perf_counter() - start
    path.unlink()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"case": "streaming", "atoms_per_frame": 100, "frames": n_frames, "threads": threads,
            "wall_s": round(wall, 2), "frames_per_s": round(n_frames / wall, 1), "peak_rss_mb": round(peak_mb),
            "result_mb": round(x.nbytes / 2**20, 1)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--case", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # one case in a fresh process, so peak memory is its own
        kind, n = args.case[0], int(args.case[1])
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            out = throughput(n, args.threads) if kind == "throughput" else streaming(n, args.threads, tmp)
        print(json.dumps(out))
        return
    cases = [("throughput", 500 if args.quick else 2000),
             ("streaming", 200 if args.quick else 1000), ("streaming", 800 if args.quick else 5000)]
    results = []
    for kind, n in cases:
        proc = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--case", kind, str(n)],
                              check=True, capture_output=True, text=True)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(json.dumps({"benchmark": "descriptors", "results": results}, indent=1))


if __name__ == "__main__":
    main()
