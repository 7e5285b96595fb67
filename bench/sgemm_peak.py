#!/usr/bin/python3
"""Measures this machine's single-precision GEMM peak per core, the yardstick of run_emulate.sh's
GFLOP/s column: torch's CPU sgemm (its tuned BLAS) on one thread, C[n x n] = A[n x n] . B[n x n]
with n = 1024 (2 n^3 FLOPs, operands in L2/L3 as a large convolution's), 3 warm-up and 20 timed
products; prints "sgemm_gflops=<median> sgemm_best=<best> n=1024 threads=1 runs=20".
Run: /usr/bin/python3 bench/sgemm_peak.py   (python3-torch; bench only)
"""
import statistics
import sys
import time


def main():
    import torch

    torch.set_num_threads(1)
    n, runs = 1024, 20
    gen = torch.Generator().manual_seed(1)
    a = torch.rand((n, n), generator=gen, dtype=torch.float32)
    b = torch.rand((n, n), generator=gen, dtype=torch.float32)
    c = torch.empty((n, n), dtype=torch.float32)
    for _ in range(3):
        torch.mm(a, b, out=c)
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        torch.mm(a, b, out=c)
        rates.append(2.0 * n ** 3 / (time.perf_counter() - start) / 1e9)
    print("sgemm_gflops=%.1f sgemm_best=%.1f n=%d threads=1 runs=%d"
          % (statistics.median(rates), max(rates), n, runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
