#!/usr/bin/python3
"""Measures this machine's single-precision GEMM peak per core, the yardstick of run_emulate.sh's
GFLOP/s column: a 1024 x 1024 by 1024 x 1024 product (2 n^3 FLOPs) through torch's oneDNN
(MKL-DNN) inner product on one thread -- torch's plain CPU matmul goes to the generic reference
BLAS in Debian's build, far from the machine's peak -- 3 warm-up and 20 timed products, each
timed with the process's CPU time so that other processes on a shared machine do not dilute it;
prints "sgemm_gflops=<median> sgemm_best=<best> n=1024 threads=1 runs=20 engine=onednn".
Run: /usr/bin/python3 bench/sgemm_peak.py   (python3-torch; bench only)
"""
import statistics
import sys
import time


def main():
    import torch
    import torch.utils.mkldnn

    torch.set_num_threads(1)
    n, runs = 1024, 20
    gen = torch.Generator().manual_seed(1)
    layer = torch.nn.Linear(n, n, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.rand((n, n), generator=gen))
    layer = torch.utils.mkldnn.to_mkldnn(layer)
    a = torch.rand((n, n), generator=gen).to_mkldnn()
    with torch.no_grad():
        for _ in range(3):
            layer(a)
        rates = []
        for _ in range(runs):
            start = time.process_time()
            layer(a)
            rates.append(2.0 * n ** 3 / (time.process_time() - start) / 1e9)
    print("sgemm_gflops=%.1f sgemm_best=%.1f n=%d threads=1 runs=%d engine=onednn"
          % (statistics.median(rates), max(rates), n, runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
