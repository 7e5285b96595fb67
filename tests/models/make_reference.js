// make_reference.js — runs onnxruntime-node (CPU) on one model and one input, for the reference
// outputs of the real-model tests (tests/models/make_reference.sh drives it).
//   node make_reference.js <node_modules dir> <model.onnx> <input NCHW .npy> <output prefix>
// Writes <output prefix>.<k>.npy for each model output k (float32, ONNX NCHW order) and prints
// "<output name> <shape>" per output. Only little-endian float32 C-order .npy inputs are read.
'use strict';
const fs = require('fs');
const path = require('path');

function readNpy(file) {
    const b = fs.readFileSync(file);
    if (b.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not a .npy file`);
    const major = b[6];
    const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
    const start = (major === 1 ? 10 : 12);
    const header = b.toString('latin1', start, start + hlen);
    if (!/'descr':\s*'<f4'/.test(header) || /'fortran_order':\s*True/.test(header))
        throw new Error(`${file}: need little-endian float32 in C order (${header.trim()})`);
    const shape = header.match(/'shape':\s*\(([^)]*)\)/)[1].split(',').filter(s => s.trim())
        .map(s => parseInt(s, 10));
    const off = start + hlen;
    const n = shape.reduce((a, v) => a * v, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = b.readFloatLE(off + 4 * i);
    return { shape, data };
}

function writeNpy(file, shape, data) {
    let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${
        shape.length === 1 ? ',' : ''}), }`;
    const pad = 64 - ((10 + header.length + 1) % 64);
    header += ' '.repeat(pad === 64 ? 0 : pad) + '\n';
    const h = Buffer.alloc(10 + header.length);
    h.write('\x93NUMPY', 0, 'latin1');
    h[6] = 1; h[7] = 0;
    h.writeUInt16LE(header.length, 8);
    h.write(header, 10, 'latin1');
    const body = Buffer.alloc(4 * data.length);
    for (let i = 0; i < data.length; i++) body.writeFloatLE(data[i], 4 * i);
    fs.writeFileSync(file, Buffer.concat([h, body]));
}

async function main() {
    const [modules, model, input, prefix] = process.argv.slice(2);
    if (!prefix) {
        console.error('usage: node make_reference.js <node_modules> <model.onnx> <input.npy> <prefix>');
        process.exit(2);
    }
    const ort = require(path.resolve(modules, 'onnxruntime-node'));
    // one thread and no graph rewrites beyond the basic ones: the reference should be plain fp32
    const session = await ort.InferenceSession.create(model, {
        intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'basic',
    });
    const x = readNpy(input);
    const feeds = {};
    feeds[session.inputNames[0]] = new ort.Tensor('float32', x.data, x.shape);
    const out = await session.run(feeds);
    session.outputNames.forEach((name, k) => {
        const t = out[name];
        writeNpy(`${prefix}.${k}.npy`, t.dims, t.data);
        console.log(`${name} [${t.dims.join(', ')}]`);
    });
}

main().catch(e => { console.error(`make_reference.js: ${e.message}`); process.exit(1); });
