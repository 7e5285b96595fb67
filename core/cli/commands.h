/* commands.h — the `hq` subcommands. Each lives in core/cli/cmd_<name>.c and returns an exit
 * status (HQ_EXIT_*); argv[0] is the subcommand name. */
#ifndef HQ_CLI_COMMANDS_H
#define HQ_CLI_COMMANDS_H

#include "common_cli.h"

int hq_cmd_info(int argc, char **argv);
void hq_cmd_info_usage(FILE *out);
int hq_cmd_parse(int argc, char **argv);
void hq_cmd_parse_usage(FILE *out);
int hq_cmd_emulate(int argc, char **argv);
void hq_cmd_emulate_usage(FILE *out);
int hq_cmd_optimize(int argc, char **argv);
void hq_cmd_optimize_usage(FILE *out);
int hq_cmd_compile(int argc, char **argv);
void hq_cmd_compile_usage(FILE *out);
int hq_cmd_run(int argc, char **argv);
void hq_cmd_run_usage(FILE *out);
int hq_cmd_profile(int argc, char **argv);
void hq_cmd_profile_usage(FILE *out);
int hq_cmd_analyze_noise(int argc, char **argv);
void hq_cmd_analyze_noise_usage(FILE *out);
int hq_cmd_compare(int argc, char **argv);
void hq_cmd_compare_usage(FILE *out);

#endif
