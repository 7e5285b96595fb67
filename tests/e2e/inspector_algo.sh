#!/usr/bin/env bash
# PreQuantAlgoInspector and PostQuantAlgoInspector (plugins/) on archives made by hq parse + hq
# optimize from bn_net.onnx (tests/fixtures/inspectors): the default script is quiet (infos only:
# the implicit level 2 and the feature states); calibset_size 128 (warning) and 16 (info) against
# 64; an explicit optimization_level=0 with bias correction disabled and finetune asked (warnings,
# optimization_level=2 and bias correction offered and accepted by default, finetune said enabled
# by the script); level 3 (info with what it runs, nothing offered); then every pair of optimization level (none, 0-4) and
# bias correction setting (absent, enabled, disabled, policy missing) with finetune/adaround and
# equalization/calibset_size rotating through their values: no crash, no refused line (the
# original tool crashed on some combinations).
source "$HQ_SOURCE_DIR/tests/fixtures/inspectors/lib.sh"
P=PreQuantAlgoInspector
Q=PostQuantAlgoInspector
norm="normalization1 = normalization([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])"
printf '%s\nmodel_optimization_flavor(optimization_level=3)\n' "$norm" >"$work/level3.alls"
printf '%s\nmodel_optimization_config(calibration, calibset_size=16)\n' "$norm" >"$work/small.alls"
quantize plain bn_net.onnx norm_ok.alls calib_rgb.npy
quantize big bn_net.onnx algo_big.alls calib_rgb.npy
quantize small bn_net.onnx small.alls calib_rgb.npy
quantize bad bn_net.onnx algo_bad.alls calib_rgb.npy
quantize level3 bn_net.onnx level3.alls calib_rgb.npy

diag plain plain -d "$work/calib_rgb.npy" --order $P,$Q
check plain $P --status ran --silent
check plain $Q --status ran --quiet --finding 'info:-:Implicit optimization level: 2' \
  --finding 'info:-:bias_correction is enabled (optimization level)' --finding 'info:-:finetune is enabled (optimization level)'

diag big big --order $P
check big $P --finding 'warning:-:Calibset size is 128, greater than the default of 64' --no-rec '*:*:'
diag small small --order $P
check small $P --quiet --finding 'info:-:Calibset size is 16, lower than the default of 64'

diag bad bad -d "$work/calib_rgb.npy" --order $P,$Q
check bad $P --quiet --finding 'info:-:Calibset size is 16' --finding 'info:-:Equalization is disabled'
check bad $Q --finding 'info:-:Explicit optimization level: 0' \
  --finding 'warning:-:optimization_level=0 turns off bias correction' \
  --finding 'warning:-:Bias correction is disabled in the model script' \
  --finding 'info:-:finetune is enabled (model script)' \
  --accepted 'warning:-:model_optimization_flavor(optimization_level=2)' \
  --accepted 'warning:-:post_quantization_optimization(bias_correction, policy=enabled)'
diag level3 level3 --order $Q
check level3 $Q --quiet --finding 'info:-:Explicit optimization level: 3' \
  --finding 'info:-:optimization_level=3: hq runs iterative bias correction and AdaRound on up to 256 images'

# combinations: hq optimize of the tiny 4x4 model with each script (the script travels in the
# archive), then both inspectors; a crash or a refused recommendation line fails
parse tiny_net tiny_net.onnx
combos=0
tunes=(absent enabled bare)
extras=(none eq calib)
for level in none 0 1 2 4; do
  for bias in absent enabled disabled bare; do
    # every level x bias pair; the other two settings rotate through all their values
    tune=${tunes[$((combos % 3))]}
    extra=${extras[$(((combos / 3 + combos) % 3))]}
    {
      echo "# combination $combos"
      [ $level = none ] || echo "model_optimization_flavor(optimization_level=$level)"
      case $bias in
        enabled | disabled) echo "post_quantization_optimization(bias_correction, policy=$bias)" ;;
        bare) echo "post_quantization_optimization(bias_correction)" ;;
      esac
      case $tune in
        enabled) echo "post_quantization_optimization(adaround, policy=enabled)" ;;
        bare) echo "post_quantization_optimization(finetune)" ;;
      esac
      case $extra in
        eq) echo "pre_quantization_optimization(equalization, policy=disabled)" ;;
        calib) echo "model_optimization_config(calibration, calibset_size=65)" ;;
      esac
    } >"$work/combo.alls"
    if ! "$HQ" optimize "$work/tiny_net.parsed.har" -d "$work/tiny_calib.npy" -m "$work/combo.alls" \
      -o "$work/combo.har" >"$work/combo.log" 2>&1; then
      echo "FAIL hq optimize refused:"; cat "$work/combo.alls" "$work/combo.log"
      failures=$((failures + 1)); continue
    fi
    rc=0
    (cd "$work" && "$HQ_DIAG" --no-interactive --order $P,$Q combo.har </dev/null >combo.out 2>&1) ||
      rc=$?
    want="Explicit optimization level: $level"
    [ $level = none ] && want="Implicit optimization level: 2"
    if [ $rc -ne 0 ] || grep -q "failed\|refused" "$work/combo.out" "$work/hq-diag.log" ||
      ! grep -q "$want" "$work/combo.out"; then
      echo "FAIL exit $rc on:"; cat "$work/combo.alls" "$work/combo.out"
      failures=$((failures + 1))
    fi
    combos=$((combos + 1))
  done
done
echo "ok   $combos script combinations ran without a failure"
finish
