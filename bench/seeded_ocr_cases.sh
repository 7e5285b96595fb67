# shellcheck shell=bash disable=SC2154 # $work is the sourcing script's
# seeded_ocr_cases.sh — the four cases of the seeded-problem run, sourced (not run) by
# bench/seeded_ocr.sh and bench/seeded_ocr_verify.sh so that both measure the same cases. Needs
# $work, whose data/ holds what `bench/seeded_ocr.py images` writes.
#   seeded_scripts      writes $work/{a,b,c,d}.alls, the model script of each case
#   calib_of CASE       the case's calibration images (BGR-swapped for c, RGB for the others)
#   held_of CASE        the case's held-out images, in the same channel order

# PaddleOCR det: NormalizeImage(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]) applied to
# the B, G, R planes of cv2.imread. Our data is RGB; the script turns it into BGR for the network
# (input_conversion) and normalizes in the data's (RGB) order: R gets 0.406/0.225, B 0.485/0.229.
#   a  correct: normalizes for 0-255 data (PaddleOCR's constants x255)
#   b  normalizes for 0-1 data (the constants as written) while the data is 0-255
#   c  a's script on BGR-swapped calibration images
#   d  a's script with 4-bit weights forced without a compression_level
seeded_scripts() {
    cat >"$work/a.alls" <<'ALLS'
input_conversion(rgb_to_bgr)
normalization1 = normalization([103.53, 116.28, 123.675], [57.375, 57.12, 58.395])
ALLS
    cat >"$work/b.alls" <<'ALLS'
input_conversion(rgb_to_bgr)
normalization1 = normalization([0.406, 0.456, 0.485], [0.225, 0.224, 0.229])
ALLS
    cp "$work/a.alls" "$work/c.alls"
    cp "$work/a.alls" "$work/d.alls"
    echo "model_optimization_config(compression_params, auto_4bit_weights_ratio=0.6)" >>"$work/d.alls"
}

calib_of() { case $1 in c) echo "$work/data/calib_bgr.npy" ;; *) echo "$work/data/calib_rgb.npy" ;; esac; }
held_of() { case $1 in c) echo "$work/data/held_bgr.npy" ;; *) echo "$work/data/held_rgb.npy" ;; esac; }
