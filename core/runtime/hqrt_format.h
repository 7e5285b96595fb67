/* hqrt_format.h — the `.hqx` compiled program: on-disk layout shared by the compiler
 * (core/deploy/) and the runtime (core/runtime/). docs/deploy.md is the prose version of this file;
 * change both together and bump HQX_VERSION on any incompatible change.
 *
 * Little endian throughout. Layout, in file order:
 *   header (HQX_HEADER_SIZE bytes)
 *   tensor table  tensor_count x hqx_tensor_t      (8-aligned)
 *   op table      op_count x hqx_op_t              (8-aligned)
 *   id list       id_count x uint32 tensor ids     (op inputs/outputs, program inputs then outputs)
 *   params        one op-specific struct per op    (8-aligned each)
 *   strings       NUL-terminated names             (offset 0 is the empty string)
 *   data          blobs: weights, biases, multipliers, shifts, LUTs (HQX_ALIGN-aligned each)
 * The file is used in place (mmap): every struct is naturally aligned at its offset, so the
 * runtime reads the structs directly. Only the runtime's validator (hqrt_program.c) decides
 * whether an offset may be followed. Plain C, no libhq headers (libhqrt compiles this). */
#ifndef HQRT_FORMAT_H
#define HQRT_FORMAT_H

#include <stdint.h>

#define HQX_MAGIC "HQXPROG\n" /* 8 bytes, no NUL */
#define HQX_VERSION 4u /* the newest format: this runtime reads versions 1 .. HQX_VERSION */
#define HQX_HEADER_SIZE 160u
#define HQX_ALIGN 64u /* every data blob starts at a multiple of this file offset */
#define HQX_MAX_TENSORS 65536u
#define HQX_MAX_OPS 65536u
#define HQX_MAX_OP_INPUTS 64u                    /* concat fan-in */
#define HQX_MAX_OP_OUTPUTS 64u                   /* splitter fan-out */
#define HQX_MAX_DIM (1u << 24)                   /* any H, W or C */
#define HQX_MAX_TENSOR_BYTES ((uint64_t)1 << 32) /* per sample */
#define HQX_MAX_PARAM 4096                       /* any kernel size, stride, dilation or pad */
#define HQX_MAX_VIEW_DIMS 6                      /* rank of a transpose_view's view */

/* The header. Field offsets are part of the format (static asserts below). */
typedef struct hqx_header {
    char magic[8];           /*   0 HQX_MAGIC */
    uint32_t version;        /*   8 HQX_VERSION */
    uint32_t header_size;    /*  12 HQX_HEADER_SIZE */
    uint64_t total_size;     /*  16 file size in bytes */
    uint64_t checksum;       /*  24 FNV-1a-64 of the whole file with these 8 bytes read as 0 */
    char hw_arch[16];        /*  32 target architecture, NUL-padded ("hailo8") */
    uint32_t flags;          /*  48 must be 0 (versions 1 to 4) */
    uint32_t net_name;       /*  52 string offset of the network name */
    uint32_t tensor_count;   /*  56 */
    uint32_t op_count;       /*  60 */
    uint32_t input_count;    /*  64 program inputs, >= 1 */
    uint32_t output_count;   /*  68 program outputs, >= 1 */
    uint32_t id_count;       /*  72 entries of the id list */
    uint32_t io_first;       /*  76 id-list index of the first program input; outputs follow */
    uint64_t tensors_offset; /*  80 */
    uint64_t ops_offset;     /*  88 */
    uint64_t ids_offset;     /*  96 */
    uint64_t params_offset;  /* 104 start of the params area */
    uint64_t params_size;    /* 112 */
    uint64_t strings_offset; /* 120 */
    uint64_t strings_size;   /* 128 last byte must be NUL */
    uint64_t data_offset;    /* 136 start of the data area (HQX_ALIGN-aligned) */
    uint64_t data_size;      /* 144 data area runs to the end of the file: data_offset +
                                    data_size == total_size */
    uint64_t arena_size;     /* 152 activation bytes per sample (all tensors' arena slots) */
} hqx_header_t;

/* An activation tensor, per sample: NHWC codes, unsigned `bits`-bit per value. */
typedef struct hqx_tensor {
    uint32_t name;         /*  0 string offset: producing layer's scoped name */
    uint32_t bits;         /*  4 8 or 16 */
    uint32_t ndim;         /*  8 4 (image [1,H,W,C]), 3 ([1,W,C], h = 1) or 2 ([1,C],
                                  h = w = 1) */
    int32_t qp_zp;         /* 12 in [0, 2^bits - 1] */
    float qp_scale;        /* 16 > 0 and finite; used only by the edge helpers */
    uint32_t h, w, c;      /* 20 extents, 1 .. HQX_MAX_DIM */
    uint64_t arena_offset; /* 32 byte offset of the tensor in the per-sample arena */
    uint64_t bytes;        /* 40 h*w*c*bits/8 */
} hqx_tensor_t;

/* One step of the program; ops run in table order. */
typedef struct hqx_op {
    uint32_t code;          /*  0 hqx_op_code_t */
    uint32_t name;          /*  4 string offset: layer name (for error messages) */
    uint32_t inputs_first;  /*  8 id-list index of the first input tensor id */
    uint16_t input_count;   /* 12 */
    uint16_t output_count;  /* 14 */
    uint32_t outputs_first; /* 16 id-list index of the first output tensor id */
    uint32_t params_size;   /* 20 must equal the op's params struct size */
    uint64_t params_offset; /* 24 inside the params area, 8-aligned */
} hqx_op_t;

/* A blob in the data area. size 0 means absent (offset then 0). */
typedef struct hqx_blob {
    uint64_t offset; /* HQX_ALIGN-aligned, inside the data area */
    uint64_t size;   /* bytes */
} hqx_blob_t;

typedef enum hqx_op_code {
    HQX_OP_CONV = 1,       /* conv and dw: hqx_conv_params_t, inputs: x [, addend] */
    HQX_OP_DENSE = 2,      /* hqx_conv_params_t (window fields unused), input [1, C] */
    HQX_OP_MAXPOOL = 3,    /* hqx_pool_params_t, no output stage */
    HQX_OP_AVGPOOL = 4,    /* hqx_pool_params_t, stage count = kernel_h * kernel_w */
    HQX_OP_GLOBAL_AVG = 5, /* hqx_pool_params_t (window unused), stage count 1 */
    HQX_OP_ELTWISE = 6,    /* ew_add/sub/mult/max/min: hqx_eltwise_params_t, 2 inputs */
    HQX_OP_ACTIVATION = 7, /* standalone activation or rescale: hqx_stage_params_t */
    HQX_OP_LUT = 8,        /* hqx_stage_params_t (only its lut is used: 2^in_bits entries) */
    HQX_OP_CONCAT = 9,     /* hqx_axis_params_t; inputs share the output's quantization */
    HQX_OP_SPLIT = 10,     /* feature_splitter: hqx_axis_params_t */
    HQX_OP_RESIZE = 11,    /* hqx_resize_params_t */
    HQX_OP_COPY = 12,      /* output_layer, reshape: codes copied (hqx_axis_params_t, unused) */
    HQX_OP_DECONV = 13,    /* hqx_conv_params_t with output_pad_h/w; one input */
    HQX_OP_CONST = 14,     /* const_input: hqx_const_params_t, no input */
    HQX_OP_SLICE = 15,     /* hqx_slice_params_t */
    HQX_OP_PAD = 16,       /* hqx_pad_params_t */
    HQX_OP_DEPTH_TO_SPACE = 17, /* hqx_block_params_t */
    HQX_OP_SPACE_TO_DEPTH = 18, /* hqx_block_params_t */
    HQX_OP_TRANSPOSE = 19,      /* hqx_transpose_params_t */
    HQX_OP_REDUCE_MAX = 20,     /* hqx_axis_params_t */
    HQX_OP_ARGMAX = 21,         /* hqx_axis_params_t (unused: the last axis) */
    HQX_OP_SOFTMAX = 22,        /* hqx_softmax_params_t */
    /* version 2 */
    HQX_OP_TRANSPOSE_VIEW = 23, /* hqx_transpose_view_params_t */
    /* version 3 */
    HQX_OP_LAYER_NORM = 24, /* hqx_layer_norm_params_t */
    /* version 4 */
    HQX_OP_DILATED_MAXPOOL = 25, /* hqx_dilated_pool_params_t, no output stage */
    HQX_OP_COUNT_
} hqx_op_code_t;

/* The format version that introduced op `code`. A program carries the highest version among its
 * ops, so one that uses only version-1 ops is byte for byte what a version-1 compiler wrote and
 * every version-1 runtime still reads it; a runtime refuses a version it does not know. */
static inline uint32_t hqx_op_version(uint32_t code)
{
    return code >= HQX_OP_DILATED_MAXPOOL  ? 4u
           : code >= HQX_OP_LAYER_NORM     ? 3u
           : code >= HQX_OP_TRANSPOSE_VIEW ? 2u
                                           : 1u;
}

/* The output stage every arithmetic op ends with (docs/numerics.md "output stage"): requantize
 * with multiplier/shift (per channel or one), optional negative-side pair (leaky, prelu),
 * optional LUT on the pre-activation code, + zero point, clamp. Output bits and zero point are
 * the output tensor's. */
typedef struct hqx_stage {
    int32_t path;             /* HQRT_PATH_* of hqrt_numerics.h */
    int32_t count;            /* entries of multiplier/shift(/_neg): 1 or the channel count */
    int32_t pre_zp;           /* with a LUT: zero point of the pre-activation code */
    int32_t act_min, act_max; /* 0 <= act_min <= act_max <= 2^out_bits - 1 */
    int32_t reserved;
    hqx_blob_t multiplier;     /* int32 [count] */
    hqx_blob_t shift;          /* int32 [count] */
    hqx_blob_t multiplier_neg; /* absent or int32 [count] */
    hqx_blob_t shift_neg;      /* absent or int32 [count] */
    hqx_blob_t lut;            /* absent or 2^out_bits codes of the output's width */
} hqx_stage_t;

typedef struct hqx_conv_params {
    int32_t kernel_h, kernel_w;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_top, pad_left, pad_bottom, pad_right;
    int32_t groups;            /* divides cin and cout; depthwise: groups == cin */
    int32_t weight_bits;       /* 4, 8 (int8 blob) or 16 (int16 blob) */
    int32_t addend_multiplier; /* with a second input (fused elementwise_add) */
    int32_t addend_shift;
    int32_t output_pad_h; /* deconv: 0 .. stride - 1 */
    int32_t output_pad_w;
    hqx_blob_t weights; /* [kh, kw, cin/groups, cout]; dense [cin, cout] */
    hqx_blob_t bias;    /* absent or int64 [cout] in the accumulator scale */
    hqx_stage_t stage;
} hqx_conv_params_t;

typedef struct hqx_pool_params {
    int32_t kernel_h, kernel_w;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left, pad_bottom, pad_right;
    int32_t count_include_pad;
    int32_t reserved;
    hqx_stage_t stage; /* maxpool: unused (all zero) */
} hqx_pool_params_t;

/* A maxpool whose window taps every dilation-th row and column: window (kernel - 1) * dilation + 1
 * wide. A maxpool without dilation stays HQX_OP_MAXPOOL, so its program keeps its version. */
typedef struct hqx_dilated_pool_params {
    hqx_pool_params_t pool;         /* count_include_pad 0, stage unused (all zero) */
    int32_t dilation_h, dilation_w; /* 1 .. HQX_MAX_PARAM, not both 1 */
} hqx_dilated_pool_params_t;

typedef struct hqx_eltwise_params {
    int32_t op; /* HQRT_EW_* of hqrt_kernels_ref.h */
    int32_t a_multiplier, a_shift;
    int32_t b_multiplier, b_shift;
    int32_t reserved;
    hqx_stage_t stage;
} hqx_eltwise_params_t;

typedef struct hqx_stage_params {
    hqx_stage_t stage;
} hqx_stage_params_t;

typedef struct hqx_axis_params {
    int32_t axis; /* NHWC axis: 1, 2 or 3 (image), 1 (vector) */
    int32_t reserved;
} hqx_axis_params_t;

typedef struct hqx_const_params {
    hqx_blob_t data; /* the output's codes, exactly its bytes */
} hqx_const_params_t;

typedef struct hqx_slice_params {
    int32_t begin[3], end[3], step[3]; /* on H, W, C; 0 <= begin < end <= extent, step >= 1 */
    int32_t reserved;
} hqx_slice_params_t;

typedef struct hqx_pad_params {
    int32_t mode;                /* HQRT_PAD_* */
    int32_t value_code;          /* constant mode: the code written */
    int32_t before[3], after[3]; /* H, W, C */
} hqx_pad_params_t;

typedef struct hqx_block_params {
    int32_t block; /* >= 1 */
    int32_t crd;   /* depth_to_space: 1 CRD, 0 DCR */
} hqx_block_params_t;

typedef struct hqx_transpose_params {
    int32_t perm[4]; /* over the tensor's rank (batch included): perm[0] == 0 */
} hqx_transpose_params_t;

/* A transpose of the input's codes read as a row-major tensor of another shape, the view (a
 * channel shuffle is [1, H, W, g, C/g] with perm [0, 1, 2, 4, 3]); the output tensor receives
 * the result row-major, whatever its own extents. */
typedef struct hqx_transpose_view_params {
    int32_t ndim;                    /* rank of the view: 2 .. HQX_MAX_VIEW_DIMS */
    int32_t dims[HQX_MAX_VIEW_DIMS]; /* dims[0] == 1 (one sample); product == the input's and the
                                        output's element count; 1 past ndim */
    int32_t perm[HQX_MAX_VIEW_DIMS]; /* a permutation of 0 .. ndim-1, perm[0] == 0; identity past
                                        ndim */
    int32_t reserved;
} hqx_transpose_view_params_t;

typedef struct hqx_resize_params {
    int32_t method; /* HQRT_RESIZE_* */
    int32_t coords; /* HQRT_COORDS_* */
    int32_t round_prefer_floor;
    int32_t reserved;
} hqx_resize_params_t;

/* Softmax along `axis` (hqrt_softmax): exp_lut is int32 [2^in_bits] in Q30, exp_lut[0] == 2^30,
 * every entry in [0, 2^30]; the stage has one multiplier (the Q31 probability to the output). */
typedef struct hqx_softmax_params {
    int32_t axis; /* as hqx_axis_params_t */
    int32_t reserved;
    hqx_blob_t exp_lut;
    hqx_stage_t stage;
} hqx_softmax_params_t;

/* Layer normalization over the channels of each position (hqrt_layer_norm). */
typedef struct hqx_layer_norm_params {
    int32_t weight_bits;  /* 4 or 8 (int8 gamma codes) or 16 (int16) */
    int32_t reserved;
    int64_t epsilon_term; /* round(epsilon * C^2 / in_scale^2), 1 .. 2^61 */
    hqx_blob_t gamma;     /* [C] codes */
    hqx_blob_t bias;      /* absent or int64 [C] in the accumulator scale, |bias| <= 2^62 */
    hqx_stage_t stage;    /* count 1 or C */
} hqx_layer_norm_params_t;

_Static_assert(sizeof(hqx_header_t) == HQX_HEADER_SIZE, "header layout");
_Static_assert(sizeof(hqx_tensor_t) == 48, "tensor layout");
_Static_assert(sizeof(hqx_op_t) == 32, "op layout");
_Static_assert(sizeof(hqx_blob_t) == 16, "blob layout");
_Static_assert(sizeof(hqx_stage_t) == 104, "stage layout");
_Static_assert(sizeof(hqx_conv_params_t) == 200, "conv params layout");
_Static_assert(sizeof(hqx_pool_params_t) == 144, "pool params layout");
_Static_assert(sizeof(hqx_dilated_pool_params_t) == 152, "dilated pool params layout");
_Static_assert(sizeof(hqx_softmax_params_t) == 128, "softmax params layout");
_Static_assert(sizeof(hqx_transpose_view_params_t) == 56, "transpose_view params layout");
_Static_assert(sizeof(hqx_layer_norm_params_t) == 152, "layer_norm params layout");

/* FNV-1a-64 constants (the checksum). */
#define HQX_FNV_OFFSET 0xcbf29ce484222325ull
#define HQX_FNV_PRIME 0x100000001b3ull

#endif
