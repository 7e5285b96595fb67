#!/usr/bin/env bash
# ActivationInspector (plugins/) on archives made by hq parse + hq optimize (tests/fixtures/
# inspectors): silu_net has x * sigmoid(x) after conv_silu (fused by hq parse into conv1's SiLU)
# and x * sigmoid(1.7 x) after conv_swish (the swish-with-beta pattern conv2 -> ew_mult1 (x 1.7,
# sigmoid fused) -> ew_mult2): warnings on the parsed archive (nothing measured yet), infos on the
# quantized one, whose outputs are healthy; bn_net (relu only) is silent, with data and without.
source "$HQ_SOURCE_DIR/tests/fixtures/inspectors/lib.sh"
A=ActivationInspector
quantize silu silu_net.onnx norm_ok.alls calib_rgb.npy
quantize bn bn_net.onnx norm_ok.alls calib_rgb.npy

diag silu silu -d "$work/calib_rgb.npy" --order $A
check silu $A --status ran --exit-status 0 --quiet \
  --finding 'info:conv1:Layer conv1 uses a SiLU activation' \
  --finding 'info:ew_mult2:Layers conv2, ew_mult1 form a swish with beta != 1 (x * sigmoid(beta * x)) ending at ew_mult2' \
  --finding 'info:conv1:the quantized outputs are healthy here' \
  --no-finding '*:conv2:SiLU'
# the parsed archive: the same findings, warnings (the check before quantizing)
diag silu_net.parsed silu_parsed --order $A
check silu_parsed $A --finding 'warning:conv1:SiLU' --finding 'warning:ew_mult2:swish with beta'

diag bn bn -d "$work/calib_rgb.npy" --order $A
check bn $A --status ran --silent
diag bn_net.parsed bn_parsed --order $A
check bn_parsed $A --silent
finish
