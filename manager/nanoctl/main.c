/* nanoctl: the command line of nanoshim's manager, and a by-hand tool for shim
 * v2 binaries. main() parses the global options and dispatches through the
 * table below; each group lives in its own file (nanoctl.h). */
#include "nanoctl.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef NANOCTL_VERSION
#define NANOCTL_VERSION "0.1.0" /* as the shim's -v */
#endif

/* One line per command group. */
static const struct nanoctl_command *const commands[] = {
    &nanoctl_run_command,    &nanoctl_create_command, &nanoctl_start_command,
    &nanoctl_exec_command,   &nanoctl_ls_command,     &nanoctl_ps_command,
    &nanoctl_kill_command,   &nanoctl_pause_command,  &nanoctl_resume_command,
    &nanoctl_update_command, &nanoctl_stats_command,  &nanoctl_wait_command,
    &nanoctl_rm_command,     &nanoctl_logs_command,   &nanoctl_events_command,
    &nanoctl_info_command,   &nanoctl_get_command,    &nanoctl_shim_command,
};

static const char main_usage[] =
    "usage: nanoctl [--address SOCK] [--namespace NS] COMMAND [ARGS...]\n"
    "       nanoctl --version | --help\n"
    "\n"
    "The command line of nanoshimd, nanoshim's manager, and a by-hand tool for\n"
    "containerd shim v2 binaries.\n"
    "\n"
    "Options:\n"
    "  --address SOCK  nanoshimd's socket (default $NANOSHIMD_ADDRESS, else\n"
    "                  " NANOCTL_DEFAULT_ADDRESS ")\n"
    "  -n, --namespace NS  the containers' namespace (default \"default\")\n"
    "  -h, --help      this text; COMMAND --help for a command's\n"
    "  --version       nanoctl's version\n"
    "\n"
    "Commands:\n";

__attribute__((format(printf, 1, 0))) static void vreport(const char *fmt, va_list ap)
{
	fputs("nanoctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int nanoctl_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(fmt, ap);
	va_end(ap);
	return NANOCTL_EXIT_FAIL;
}

int nanoctl_errc(int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(fmt, ap);
	va_end(ap);
	return rc;
}

int nanoctl_usage(const char *usage)
{
	fputs(usage, stdout);
	return NANOCTL_EXIT_OK;
}

int nanoctl_usage_err(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "nanoctl: %s: ", cmd);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (nanoctl %s --help)\n", cmd);
	va_end(ap);
	return NANOCTL_EXIT_FAIL;
}

static void list_commands(FILE *out, const struct nanoctl_command *const *cmds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(out, "  %-8s %s\n", cmds[i]->name, cmds[i]->help);
}

int nanoctl_run_group(const char *group, const struct nanoctl_command *cmds, size_t n, int argc,
                      char **argv, const struct nanoctl_global *g)
{
	const char *name = argc > 1 ? argv[1] : NULL;
	if (name && (!strcmp(name, "-h") || !strcmp(name, "--help") || !strcmp(name, "help"))) {
		printf("usage: nanoctl %s COMMAND [ARGS...]\n\nCommands:\n", group);
		for (size_t i = 0; i < n; i++)
			printf("  %-8s %s\n", cmds[i].name, cmds[i].help);
		printf("\nnanoctl %s COMMAND --help for a command's options.\n", group);
		return NANOCTL_EXIT_OK;
	}
	for (size_t i = 0; name && i < n; i++)
		if (strcmp(cmds[i].name, name) == 0)
			return cmds[i].fn(argc - 1, argv + 1, g);
	fprintf(stderr, "nanoctl: %s: %s%s%s; one of:", group, name ? "unknown command \"" : "",
	        name ? name : "a command is needed", name ? "\"" : "");
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, " %s", cmds[i].name);
	fputc('\n', stderr);
	return NANOCTL_EXIT_FAIL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"address", required_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	struct nanoctl_global g = {.address = NANOCTL_DEFAULT_ADDRESS, .argv0 = argv[0]};
	const char *env_addr = getenv("NANOSHIMD_ADDRESS");
	if (env_addr && env_addr[0])
		g.address = env_addr;
	const size_t n = sizeof(commands) / sizeof(commands[0]);
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+hn:", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			g.address = optarg;
			break;
		case 'n':
			g.namespace_ = optarg;
			break;
		case 'h':
			fputs(main_usage, stdout);
			list_commands(stdout, commands, n);
			return NANOCTL_EXIT_OK;
		case 'V':
			printf("nanoctl %s\n", NANOCTL_VERSION);
			return NANOCTL_EXIT_OK;
		default:
			if (optopt == 'a')
				return nanoctl_err("--address needs a value (nanoctl --help)");
			return nanoctl_err("unknown option %s (nanoctl --help)", argv[optind - 1]);
		}
	}
	if (optind >= argc) {
		fputs(main_usage, stderr);
		list_commands(stderr, commands, n);
		return NANOCTL_EXIT_FAIL;
	}
	for (size_t i = 0; i < n; i++)
		if (strcmp(commands[i]->name, argv[optind]) == 0)
			return commands[i]->fn(argc - optind, argv + optind, &g);
	return nanoctl_err("unknown command \"%s\" (nanoctl --help)", argv[optind]);
}
