// ort_bench.js — times onnxruntime-node (CPU) on one ONNX model, the peer of bench/hq_bench.c:
// session created and the input filled before the clock starts, `warmup` runs, then `runs` timed
// runs of one batch; prints "ms_median=... ms_min=... ms_max=... ms_all=t1,t2,..." on one line
// (ms_all: every timed run in run order, pooled by run_emulate.sh over interleaved invocations).
// The input is the same deterministic pseudo-random sequence as hq_bench.c's, generated in NHWC
// order and transposed to NCHW, so both runtimes see the same values.
// usage: node ort_bench.js MODULE_DIR model.onnx N,C,H,W THREADS RUNS WARMUP [MIN_MS] [--cpu-time]
// MIN_MS: keep running past RUNS until the timed runs add up to MIN_MS (at most 100 * RUNS), as
// hq_bench -t does. --cpu-time: time with the process's CPU time (all its threads, as
// hq_bench --cpu-time) instead of the wall clock, to compare the runtimes on a loaded machine.
'use strict';
const path = require('path');

async function main() {
    const args = process.argv.slice(2);
    const cpuTime = args.includes('--cpu-time');
    const [moduleDir, model, shapeText, threadsText, runsText, warmupText, minText] =
        args.filter((a) => a !== '--cpu-time');
    const minMs = Number(minText || 0);
    const ort = require(path.join(moduleDir, 'onnxruntime-node'));
    const [n, c, h, w] = shapeText.split(',').map(Number);
    const threads = Number(threadsText), runs = Number(runsText), warmup = Number(warmupText);
    const session = await ort.InferenceSession.create(model, {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
    });
    const nhwc = new Float32Array(n * h * w * c);
    let state = 12345 >>> 0;
    for (let k = 0; k < nhwc.length; k++) {
        state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
        nhwc[k] = Math.fround(((state >>> 8) & 0xffff) / 65536) * 2 - 1;
    }
    const nchw = new Float32Array(nhwc.length);
    for (let b = 0; b < n; b++)
        for (let y = 0; y < h; y++)
            for (let x = 0; x < w; x++)
                for (let ch = 0; ch < c; ch++)
                    nchw[((b * c + ch) * h + y) * w + x] = nhwc[((b * h + y) * w + x) * c + ch];
    const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', nchw, [n, c, h, w])};
    for (let r = 0; r < warmup; r++)
        await session.run(feeds);
    const ms = [];
    let total = 0;
    while (ms.length < (minMs > 0 ? 100 * runs : runs) && (ms.length < runs || total < minMs)) {
        const start = process.hrtime.bigint(), cpuStart = process.cpuUsage();
        await session.run(feeds);
        if (cpuTime) {
            const used = process.cpuUsage(cpuStart);
            ms.push((used.user + used.system) / 1e3);
        } else {
            ms.push(Number(process.hrtime.bigint() - start) / 1e6);
        }
        total += ms[ms.length - 1];
    }
    const count = ms.length;
    const all = ms.map((t) => t.toFixed(3)).join(',');
    ms.sort((a, b) => a - b);
    const median = count % 2 ? ms[(count - 1) / 2] : 0.5 * (ms[count / 2 - 1] + ms[count / 2]);
    console.log(`ms_median=${median.toFixed(3)} ms_min=${ms[0].toFixed(3)} ` +
                `ms_max=${ms[count - 1].toFixed(3)} ms_all=${all}`);
}

main().catch((e) => {
    console.error(`ort_bench: ${e.message}`);
    process.exit(1);
});
