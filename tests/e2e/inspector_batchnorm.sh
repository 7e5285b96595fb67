#!/usr/bin/env bash
# BatchNormInspector on archives made by hq parse + hq optimize (tests/fixtures/inspectors):
# silent when `hq parse` folded a BN into a conv (with and without data); a model without BN whose
# pre-activations are far from standard (weights x8, biases +12): the warning listing the outlier
# layers and the error suggesting retraining, from the dataset (-d) and from the calibration
# statistics of the archive; the two warnings without any data (parsed archive, no -d); and the 5%
# edge: 1 of 20 channels off (5%) is not an outlier, 2 of 20 (10%) is.
source "$HQ_SOURCE_DIR/tests/fixtures/inspectors/lib.sh"
B=BatchNormInspector
quantize bn bn_net.onnx norm_ok.alls calib_rgb.npy
quantize nobn nobn_net.onnx norm_ok.alls calib_rgb.npy
# equalization off, so that per-channel moments are the model's own
quantize edge edge_bn_net.onnx hp.alls calib_rgb.npy

# absent: BN folded by hq parse
diag bn folded -d "$work/calib_rgb.npy" --order $B,Clipping
check folded $B --status ran --silent
diag bn_net.parsed folded_parsed --order $B
check folded_parsed $B --silent --exit-status 0
expect "the log says where batch normalization was found" grep -q "batch normalization found at conv1" "$work/folded_parsed/hq-diag.log"

# present, with data (Clipping in the run makes hq-diag compute the float statistics)
diag nobn data -d "$work/calib_rgb.npy" --order $B,Clipping
check data $B --exit-status 1 \
  --finding 'warning:-:from the dataset' \
  --finding 'warning:-:conv1 (' --finding 'warning:-:conv2 (' \
  --finding 'error:-:consider retraining it with batch normalization'
# present, without -d: the calibration statistics stored by hq optimize
diag nobn calib --order $B
check calib $B --exit-status 1 --finding 'warning:-:from the calibration statistics' \
  --finding 'error:-:retraining it with batch normalization'
# present, no data at all: the two warnings
diag nobn_net.parsed nodata --order $B
check nodata $B --exit-status 0 \
  --finding 'warning:-:No batch normalization layers were found in the model' \
  --finding 'warning:-:Skipping the pre-activation distribution check' --no-finding 'error:*:'

# the 5% edge: conv1 has 1 of 20 channels at mean +12 (not more than 5%), conv2 2 of 20 (10%)
diag edge edge -d "$work/calib_rgb.npy" --order $B,Clipping
check edge $B --exit-status 1 --finding 'warning:-:1 of 2 layers' \
  --finding 'warning:-:conv2 (10% of channels |mean| > 5, 0% std > 3)' --no-finding 'warning:-:conv1 ('
finish
