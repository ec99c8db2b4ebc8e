/* config.h — the config file of sqltrace-bpf (/etc/sqltrace/NAME.conf, given
 * with --config FILE): the settings of the command line, one a line,
 * turned into command-line arguments read before the real ones.
 *
 * Format (see sqltrace-bpf(8), FILES):
 *   # a comment (a line whose first non-blank character is #)
 *   output = /var/lib/sqltrace/myapp.db     long option name = value
 *   no-store                                a flag: the name alone
 *   remote = "https://bo.example/api"       "..." keeps blanks at the ends
 * Names are the long options without "--"; blank lines are skipped; a
 * value runs to the end of the line (a # inside it is part of it). The
 * file must be one another user cannot have written (see safefile.h). */
#ifndef SQLTRACE_CONFIG_H
#define SQLTRACE_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#define CONFIG_MAX_LINE 4096   /* longer lines are an error */
#define CONFIG_MAX_ARGS 4096   /* settings over all files */

/* Arguments built from config files and the command line. */
struct config {
	int argc;
	char **argv;          /* argv[0], settings of the files, then the rest of
	                       * the command line; NULL-terminated */
	char **owned;         /* the strings made from the files */
	const char **file;    /* per argv index: the file it came from, or NULL */
	int *line;            /* per argv index: its line in that file */
	size_t nowned, cap;
};

/* Parses one config file's text from f (name is used in messages) and
 * appends a "--name=value" or "--name" argument per setting to c. Returns
 * 0, or -EINVAL with "name:LINE: what is wrong" in err, or -ENOMEM. The
 * names are checked for form only ([a-z0-9-]); whether the option exists
 * and its value is good is for the option parser (config__blame). */
int config__parse(FILE *f, const char *name, struct config *c, char *err, size_t errlen);

/* Opens path as a root-owned settings file must be opened (every directory
 * on its way and the file itself owned by root or us and not writable by
 * group or others, a regular file) and parses it into c. Returns 0 or
 * -errno with one line in err ("cannot use config file PATH: ..."). */
int config__load(const char *path, struct config *c, char *err, size_t errlen);

/* Builds c from argv: every leading "--config FILE" / "--config=FILE" is
 * loaded (in order) and its settings placed right after argv[0], before
 * the other arguments, so the command line wins over the files; a FILE
 * written "-FILE" is skipped when it does not exist. Without
 * --config, c->argv holds argv's arguments as they are. Returns 0, or
 * -errno with err set (c is then freed). */
int config__expand(int argc, char **argv, struct config *c, char *err, size_t errlen);

/* After the option parser refused c->argv with message err: finds the
 * config setting that parse refuses on its own (parse gets a small argv:
 * argv[0], a placeholder target "-p 1", the setting) and rewrites err as
 * "FILE:LINE: message". Leaves err as it is when no single setting is
 * refused (a conflict between settings, or an error on the command line). */
void config__blame(const struct config *c,
		   int (*parse)(int argc, char **argv, char *err, size_t errlen),
		   char *err, size_t errlen);

void config__free(struct config *c);

#endif
