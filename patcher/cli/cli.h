/* cli: what the subcommands of vgpu-patch share — exit codes (DESIGN §7), common
 * options, and the printing of plans and verification results. */
#ifndef VP_CLI_H
#define VP_CLI_H

#include "apply.h"
#include "wire.h"
#include "hooks.h"
#include "json.h"
#include "migrate.h"

enum vp_exit {
    VP_EXIT_OK = 0,    /* done / healthy */
    VP_EXIT_ERROR = 1, /* error; no installed file changed */
    VP_EXIT_USAGE = 2,
    VP_EXIT_UNCOVERED = 3, /* a route cannot be covered by the mechanism allowed */
    VP_EXIT_DRIFT = 4,     /* the tree differs from the manifest */
    VP_EXIT_HOOKS = 5,     /* global loader hooks from an earlier method are present */
};

#define VP_DEFAULT_STATE_DIR "/var/lib/vgpu-patch"

/* Options every command understands. */
struct vp_common {
    const char *root;      /* "/" unless --root */
    const char *state_dir; /* runtime path (inside root) */
    bool json;
    char *state_ondisk; /* root + state_dir */
    char *root_norm;    /* owned: the normalised root that root points to */
};

struct vp_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

int cmd_ollama(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_rollback(int argc, char **argv);
int cmd_ensure(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
/* `ollama` with its options in argv, reporting as command as_command (its JSON
 * "command"), with "action" when given: how `ensure` hands an install over. */
int cli_ollama_run(int argc, char **argv, const char *as_command, const char *action);
int cmd_inspect(int argc, char **argv);
int cmd_migrate(int argc, char **argv);

/* What `migrate` found and did (cmd-migrate.c), also for `ollama --migrate`. */
struct cli_migration {
    bool dry_run;
    struct vp_hooks hooks;
    struct vp_migrate_plan plan;
    bool planned;
    struct vp_strv changed, removed, notes;
    bool committed; /* the files changed (whatever failed after) */
    bool ldconfig_needed, ldconfig_ran;
    char *ldconfig_msg;
    struct vp_migrate_check *checks;
    size_t n_checks;
    struct vp_migrate_check *checks_before; /* the same checks before the change */
    size_t n_checks_before;
    char *systemd_msg; /* daemon-reload done or to do, and the restart Ollama needs */
    char *error;
    int code; /* 0, 1, 4 or 5 (hooks that may not be removed are left) */
};

/* systemctl with the given arguments (nothing inherited); a message when it fails. */
int cli_systemctl(const char *a, const char *b, const char *c);
/* Whether this run may drive systemd: the real root, and systemd as PID 1. */
bool cli_drive_systemd(const struct vp_common *c);

/* Finds the legacy hooks of the root (and of the Ollama trees at prefix, may be NULL, and
 * in the manifest) and, unless dry_run, removes them under the state lock. */
int cli_migrate(const struct vp_common *c, const char *prefix, const char *shim_dir, bool dry_run,
                int lock_timeout_ms, struct cli_migration *ret);
void cli_migration_release(struct cli_migration *mg);
void cli_print_migration(const struct cli_migration *mg);
/* The fields of the migration, in the JSON object open now. */
void cli_json_migration(struct vp_json *j, const struct cli_migration *mg);
/* The action the migration takes for hook i of its scan. */
enum vp_migrate_action cli_migration_action(const struct cli_migration *mg, size_t i);

/* Error message to stderr as "vgpu-patch: ..."; returns code. */
int cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Resolves root/state dir (absolute, normalised) into c. */
int cli_common_finish(struct vp_common *c);
void cli_common_release(struct vp_common *c);

/* Starts the JSON document of a command ("schema": 1, "command"). */
void cli_json_begin(struct vp_json *j, const char *command);
void cli_json_strv(struct vp_json *j, const char *key, const struct vp_strv *sv);
void cli_json_hooks(struct vp_json *j, const struct vp_hooks *h);
/* One hook's kind, file, line, what and why, in the JSON object open now. */
void cli_json_hook_fields(struct vp_json *j, const struct vp_hook *k);
void cli_json_checks(struct vp_json *j, const struct vp_verify *v);
/* The file that answered a soname for a path, from verification checks. */
const struct vp_check *cli_answer_for(const struct vp_verify *v, const char *path);

void cli_print_hooks(const struct vp_hooks *h);
/* One hook as cli_print_hooks prints it, after an action column (NULL: none). */
void cli_print_hook(const struct vp_hook *k, const char *action);
void cli_print_checks(const struct vp_verify *v);
void cli_print_notes(const struct vp_strv *notes);
char *cli_human_bytes(uint64_t n);

/* The wiring step of `ollama` (wiring.c). */
struct cli_wire_args {
    bool no_wire, keep_vulkan, restart, launcher;
    const char *systemd_dir; /* NULL: /etc/systemd/system */
    const char *shim_dir;
};

struct cli_wiring {
    bool done;          /* the files are written and recorded */
    const char *reason; /* why not done, or why not activated */
    struct vp_wire_result res;
    bool activated, restarted;
    char *activate_hint;    /* the systemctl commands that activate it */
    char *error;            /* systemctl failed */
    struct vp_strv removed; /* --no-wire: our earlier files removed ("path", or "path: why not") */
};

/* Writes and records our drop-in and path units for the unit that runs in (under the
 * state lock), and activates them where systemd runs the machine. Returns 0 (not wired
 * is not an error: ret->reason says why) or a negative errno with a message. */
int cli_wire_install(const struct vp_common *c, const char *state_dir_ondisk,
                     const struct vp_install *in, const struct cli_wire_args *a,
                     struct cli_wiring *ret);
void cli_wiring_release(struct cli_wiring *w);
/* Whether this run wrote any of our systemd files. */
bool cli_wiring_changed(const struct cli_wiring *w);
void cli_json_wiring(struct vp_json *j, const struct cli_wiring *w);
void cli_print_wiring(const struct cli_wiring *w);
/* Around the removal of our units: disable the path unit before, reload after (only where
 * systemd runs the machine and the root is /). */
void cli_unwire_before(const struct vp_common *c);
void cli_unwire_after(const struct vp_common *c);

/* A boolean option of one command (e.g. --dry-run). */
struct cli_flag {
    const char *name;
    bool *set;          /* a flag: set to true when given */
    const char **value; /* or an option with a value (set NULL) */
};

/* Parses the options of a command that takes the common ones plus flags (NULL-terminated
 * array, may be NULL) and no arguments; prints help on -h. Returns -1 to go on, else the
 * exit code to return (0 after --help, 2 on a usage error). */
int cli_parse(int argc, char **argv, const char *cmd, const char *help, struct vp_common *c,
              const struct cli_flag *flags);
/* The manifest of the state dir (empty when there is no state dir); read-only, no lock.
 * ret_interrupted (may be NULL): a journal is left by an interrupted run. */
int cli_load_manifest(const struct vp_common *c, struct vp_manifest *ret, bool *ret_interrupted);

/* The legacy loader hooks of the root and of every install the manifest names (our own
 * in-tree links excepted): they make status and verify exit 5 as ollama does. */
void cli_scan_hooks(const struct vp_common *c, const struct vp_manifest *m, struct vp_hooks *ret);
/* The same, with the tree of one more install (prefix may be NULL) and its shim dir. */
void cli_scan_hooks_with(const struct vp_common *c, const struct vp_manifest *m, const char *prefix,
                         const char *shim_dir, struct vp_hooks *ret);

/* Long options shared by commands, and their handling. */
#define CLI_OPT_ROOT      1000
#define CLI_OPT_STATE_DIR 1001
#define CLI_OPT_JSON      1002
#define CLI_OPT_FLAG      1100
#define CLI_COMMON_LONGOPTS                                                                        \
    {"root", required_argument, NULL, CLI_OPT_ROOT},                                               \
        {"state-dir", required_argument, NULL, CLI_OPT_STATE_DIR},                                 \
        {"json", no_argument, NULL, CLI_OPT_JSON},                                                 \
    {                                                                                              \
        "help", no_argument, NULL, 'h'                                                             \
    }
/* Returns true when opt was a common option (and applied it). */
bool cli_common_opt(struct vp_common *c, int opt, const char *arg);

#endif
