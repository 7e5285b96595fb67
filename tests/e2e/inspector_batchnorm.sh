#!/usr/bin/env bash
# BatchNormInspector on archives made by hq parse + hq optimize (tests/fixtures/inspectors):
# silent when `hq parse` folded a BN into a conv (with and without data); a model without BN whose
# pre-activations are far from standard (weights x8, biases +12): quantized with 8-bit weights its
# output stays healthy (over 20 dB), so the outlier layers are an info; quantized with 4-bit
# weights, no equalization and no bias correction (output about 15 dB) they are a warning with the
# advice to retrain, from the dataset (-d) and from the calibration statistics of the archive;
# never an error; without any data (parsed archive, no -d) one info; and the 5% edge: 1 of 20
# channels off (5%) is not an outlier, 2 of 20 (10%) is.
source "$HQ_SOURCE_DIR/tests/fixtures/inspectors/lib.sh"
B=BatchNormInspector
quantize bn bn_net.onnx norm_ok.alls calib_rgb.npy
quantize nobn nobn_net.onnx norm_ok.alls calib_rgb.npy
quantize nobn4 nobn_net.onnx nobn_w4.alls calib_rgb.npy
# equalization off, so that per-channel moments are the model's own
quantize edge edge_bn_net.onnx hp.alls calib_rgb.npy

# absent: BN folded by hq parse
diag bn folded -d "$work/calib_rgb.npy" --order $B,Clipping
check folded $B --status ran --silent
diag bn_net.parsed folded_parsed --order $B
check folded_parsed $B --silent --exit-status 0
expect "the log says where batch normalization was found" grep -q "batch normalization found at conv1" "$work/folded_parsed/hq-diag.log"

# no BN, healthy output: an info that names the measured output SQNR
diag nobn healthy -d "$work/calib_rgb.npy" --order $B,Clipping
check healthy $B --exit-status 0 --quiet \
  --finding 'info:-:from the dataset' --finding 'info:-:conv1 (' \
  --finding 'info:-:dB (healthy: 20 dB or more), so quantization copes with them'
diag nobn healthy_calib --order $B
check healthy_calib $B --exit-status 0 --quiet --finding 'info:-:from the calibration statistics'

# no BN, degraded output: the warning (Clipping in the run makes hq-diag compute the float
# statistics), never an error
diag nobn4 data -d "$work/calib_rgb.npy" --order $B,Clipping
check data $B --exit-status 0 \
  --finding 'warning:-:from the dataset' \
  --finding 'warning:-:conv1 (' --finding 'warning:-:conv2 (' \
  --finding 'warning:-:consider retraining with batch normalization' --no-finding 'error:*:'
# ... without -d: the calibration statistics stored by hq optimize, the output SQNR of the
# archive's noise analysis
diag nobn4 calib --order $B
check calib $B --exit-status 0 --finding 'warning:-:from the calibration statistics' \
  --finding 'warning:-:retraining with batch normalization' --no-finding 'error:*:'
# no data at all: one info
diag nobn_net.parsed nodata --order $B
check nodata $B --exit-status 0 --quiet \
  --finding 'info:-:No batch normalization layer in the graph'

# the 5% edge: conv1 has 1 of 20 channels at mean +12 (not more than 5%), conv2 2 of 20 (10%)
diag edge edge -d "$work/calib_rgb.npy" --order $B,Clipping
check edge $B --finding '*:-:1 of 2 layers' \
  --finding '*:-:conv2 (10% of channels |mean| > 5, 0% std > 3)' --no-finding '*:-:conv1 ('
finish
