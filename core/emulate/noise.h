/* noise.h — what the noise analysis (noise.c) shares inside libhq: its one definition of SQNR in
 * dB, which the optimizer's gain measurement (core/quant/holdout.c) uses too, so that a gain the
 * optimizer logs and an SNR the archive stores are the same quantity. Prefix hqi_. */
#ifndef HQI_EMULATE_NOISE_H
#define HQI_EMULATE_NOISE_H

/* 10 log10(signal / error): signal the sum of squares of the fp_optimized values, error the sum
 * of squared differences to the dequantized ones; 200 dB when there is no error at all, clamped
 * to [-200, 200] dB. */
double hqi_noise_db(double signal, double error);

#endif
