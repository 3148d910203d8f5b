/* txn: the state dir (creation, mode, refusal of a group-writable one, the lock between
 * processes), transactions that commit or abort, and crash recovery: this program re-executes
 * itself as a child that runs a transaction with VGPU_FAULT=<point> until the fault injection
 * kills it, then the parent's locked vp_state_open must undo (or finish) it. Everything lives
 * in a mkdtemp directory: <base>/state and a fake tree <base>/tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "testutil.h"
#include "txn.h"

extern char **environ;

struct fx {
    char *base, *state, *backups, *a, *b; /* a, b: installed files ("old a", "old b") */
    ino_t ino_a, ino_b;
};

static ino_t ino_of(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0 ? st.st_ino : 0;
}

static char *text_of(const char *p)
{
    char *t = NULL;
    return vp_read_file(p, 4096, &t, NULL) == 0 ? t : vp_xstrdup("(unreadable)");
}

static void write_text(const char *p, const char *text, mode_t mode)
{
    assert_int_equal(vp_write_file_atomic(p, text, strlen(text), mode), 0);
}

static int setup(void **state)
{
    umask(022);
    struct fx *f = vp_xcalloc(1, sizeof(*f));
    f->base = tu_mkdtemp(NULL);
    if (!f->base)
        return -1;
    f->state = vp_path_join(f->base, "state");
    f->backups = vp_path_join(f->state, "backups");
    _cleanup_(freep) char *bin = vp_path_join(f->base, "tree/bin");
    vp_mkdir_p(bin, 0755);
    f->a = vp_path_join(bin, "ollama");
    f->b = vp_path_join(bin, "llama-server");
    write_text(f->a, "old a\n", 0755);
    write_text(f->b, "old b\n", 0755);
    f->ino_a = ino_of(f->a);
    f->ino_b = ino_of(f->b);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    tu_rmtree(f->base);
    free(f->state);
    free(f->backups);
    free(f->a);
    free(f->b);
    free(f);
    return 0;
}

/* Opens the state dir (created if need be, locked) and begins a transaction in it. */
static void begin(const struct fx *f, struct vp_state *st, struct vp_txn *t)
{
    assert_int_equal(vp_state_open(f->state, VP_STATE_CREATE | VP_STATE_LOCK, 0, st), 0);
    assert_int_equal(vp_txn_begin(st, t), 0);
}

/* Entries of the directory holding path (to see staging files left behind). */
static size_t entries_beside(const char *path)
{
    _cleanup_(freep) char *dir = vp_dirname(path);
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    for (struct dirent *de; (de = readdir(d));)
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    return n;
}

/* Stages "new" content for path and keeps its inode as backups/<name>. */
static void stage_new(struct vp_txn *t, const char *backups, const char *path, bool keep)
{
    int fd;
    const char *tmp;
    assert_int_equal(vp_txn_stage_file(t, path, &fd, &tmp), 0);
    assert_true(vp_startswith(vp_basename(tmp), "."));
    _cleanup_(freep) char *text = vp_xasprintf("new %s\n", vp_basename(path));
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, 0755), 0);
    close(fd);
    _cleanup_(freep) char *prev = vp_path_join(backups, vp_basename(path));
    int orig = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    assert_true(orig >= 0 && fstat(orig, &st) == 0);
    assert_int_equal(vp_txn_keep_prev(t, path, orig, &st, prev, keep, NULL), 0);
    close(orig);
}

static void state_dir_is_created_0700_with_a_backups_dir(void **state)
{
    struct fx *f = *state;
    _cleanup_(freep) char *deep = vp_xasprintf("%s/var//lib/./vgpu-patch/", f->base);
    struct vp_state st;
    assert_int_equal(vp_state_open(deep, VP_STATE_CREATE, 0, &st), 0);
    _cleanup_(freep) char *want = vp_path_join(f->base, "var/lib/vgpu-patch");
    assert_string_equal(st.dir, want);
    struct stat s;
    assert_int_equal(stat(want, &s), 0);
    assert_int_equal(s.st_mode & 07777, 0700);
    _cleanup_(freep) char *b = vp_state_backup_dir(&st);
    assert_int_equal(stat(b, &s), 0);
    assert_int_equal(s.st_mode & 07777, 0700);
    assert_false(vp_state_interrupted(&st));
    vp_state_close(&st);
    assert_int_equal(vp_state_open(want, 0, 0, &st), 0); /* exists now */
    vp_state_close(&st);
}

static void missing_state_dir_without_create_is_enoent(void **state)
{
    struct fx *f = *state;
    struct vp_state st = {.lock_fd = 77};
    vp_clear_error();
    assert_int_equal(vp_state_open(f->state, VP_STATE_LOCK, 0, &st), -ENOENT);
    assert_non_null(strstr(vp_last_error(), "no state in"));
    assert_int_equal(st.lock_fd, 77); /* not written */
    assert_int_equal(access(f->state, F_OK), -1);
}

static void state_dir_writable_by_group_or_others_is_refused(void **state)
{
    struct fx *f = *state;
    struct vp_state st;
    assert_int_equal(mkdir(f->state, 0700), 0);
    static const mode_t bad[] = {0770, 0702, 0720, 0777};
    for (size_t i = 0; i < VP_ARRAY_SIZE(bad); i++) {
        assert_int_equal(chmod(f->state, bad[i]), 0);
        vp_clear_error();
        assert_int_equal(vp_state_open(f->state, VP_STATE_CREATE | VP_STATE_LOCK, 0, &st),
                         -EPERM);
        /* the same rule as the shim dir: it holds what rollback puts into Ollama's tree */
        assert_non_null(strstr(vp_last_error(), "state dir"));
        assert_non_null(strstr(vp_last_error(), "is writable by"));
    }
    assert_int_equal(chmod(f->state, 0750), 0); /* readable is fine */
    assert_int_equal(vp_state_open(f->state, VP_STATE_LOCK, 0, &st), 0);
    vp_state_close(&st);
    assert_int_equal(vp_state_open(f->a, VP_STATE_CREATE, 0, &st), -ENOTDIR);
}

static void lock_held_by_another_process_times_out_with_ebusy(void **state)
{
    struct fx *f = *state;
    int ready[2], done[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(done), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        close(done[1]);
        struct vp_state st;
        if (vp_state_open(f->state, VP_STATE_CREATE | VP_STATE_LOCK, 0, &st) < 0)
            _exit(1);
        char c = 'x', buf;
        if (write(ready[1], &c, 1) != 1)
            _exit(1);
        while (read(done[0], &buf, 1) > 0)
            ;
        _exit(0);
    }
    close(ready[1]);
    close(done[0]);
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct vp_state st;
    vp_clear_error();
    int r = vp_state_open(f->state, VP_STATE_LOCK, 300, &st);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    _cleanup_(freep) char *holder = vp_xasprintf("(pid %d)", (int)pid);
    bool named = strstr(vp_last_error(), holder) != NULL;
    close(done[1]); /* the child lets go and exits */
    close(ready[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(r, -EBUSY);
    assert_true(named);
    assert_true(ms >= 250 && ms < 5000);
    /* Free again once the holder is gone. */
    assert_int_equal(vp_state_open(f->state, VP_STATE_LOCK, 1000, &st), 0);
    vp_state_close(&st);
}

static void commit_leaves_the_new_files_and_the_kept_backups(void **state)
{
    struct fx *f = *state;
    struct vp_state st;
    struct vp_txn t;
    begin(f, &st, &t);
    assert_true(vp_state_interrupted(&st)); /* the journal exists while it runs */
    stage_new(&t, f->backups, f->a, true);
    stage_new(&t, f->backups, f->b, false);
    _cleanup_(freep) char *before = text_of(f->a);
    assert_string_equal(before, "old a\n"); /* nothing visible before the rename */
    assert_int_equal(vp_txn_rename_all(&t), 0);
    struct vp_manifest m = {0};
    assert_int_equal(vp_txn_commit(&t, &m), 0);
    assert_false(vp_state_interrupted(&st));
    assert_int_equal(st.recovered.n, 0);
    _cleanup_(freep) char *ta = text_of(f->a), *tb = text_of(f->b);
    assert_string_equal(ta, "new ollama\n");
    assert_string_equal(tb, "new llama-server\n");
    assert_int_not_equal(ino_of(f->a), f->ino_a);
    /* The permanent backup is the original inode; the temporary one is gone. */
    _cleanup_(freep) char *ba = vp_path_join(f->backups, "ollama");
    _cleanup_(freep) char *bb = vp_path_join(f->backups, "llama-server");
    assert_int_equal(ino_of(ba), f->ino_a);
    _cleanup_(freep) char *old = text_of(ba);
    assert_string_equal(old, "old a\n");
    assert_int_equal(access(bb, F_OK), -1);
    assert_int_equal(entries_beside(f->a), 2); /* no staging file left */
    vp_state_close(&st);
}

static void abort_after_rename_restores_the_original_inodes(void **state)
{
    struct fx *f = *state;
    struct vp_state st;
    struct vp_txn t;
    begin(f, &st, &t);
    stage_new(&t, f->backups, f->a, true);
    stage_new(&t, f->backups, f->b, true);
    assert_int_equal(vp_txn_rename_all(&t), 0);
    _cleanup_(freep) char *mid = text_of(f->b);
    assert_string_equal(mid, "new llama-server\n");
    assert_int_equal(vp_txn_abort(&t), 0);
    assert_int_equal(ino_of(f->a), f->ino_a);
    assert_int_equal(ino_of(f->b), f->ino_b);
    _cleanup_(freep) char *ta = text_of(f->a);
    assert_string_equal(ta, "old a\n");
    /* What the transaction created is gone: backups, staging files, journal. */
    _cleanup_(freep) char *ba = vp_path_join(f->backups, "ollama");
    assert_int_equal(access(ba, F_OK), -1);
    assert_int_equal(entries_beside(f->a), 2);
    assert_false(vp_state_interrupted(&st));
    vp_state_close(&st);
}

static void original_written_in_place_meanwhile_is_not_replaced(void **state)
{
    struct fx *f = *state;
    struct vp_state st;
    struct vp_txn t;
    begin(f, &st, &t);
    stage_new(&t, f->backups, f->a, true);
    /* An upgrade writes into the very inode that was read (same inode, new bytes). */
    int fd = open(f->a, O_WRONLY | O_APPEND | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "more\n", 5), 5);
    close(fd);
    assert_int_equal(vp_txn_rename_all(&t), -EAGAIN);
    assert_non_null(strstr(vp_last_error(), "changed while vgpu-patch was working"));
    assert_int_equal(vp_txn_abort(&t), 0);
    _cleanup_(freep) char *ta = text_of(f->a);
    assert_string_equal(ta, "old a\nmore\n"); /* the writer's bytes, not ours */
    assert_int_equal(ino_of(f->a), f->ino_a);
    assert_int_equal(entries_beside(f->a), 2);
    vp_state_close(&st);
}

static void abort_before_rename_only_removes_what_was_staged(void **state)
{
    struct fx *f = *state;
    struct vp_state st;
    assert_int_equal(vp_state_open(f->state, VP_STATE_CREATE | VP_STATE_LOCK, 0, &st), 0);
    /* A backup kept by an earlier run is reused, and survives this run's abort. */
    _cleanup_(freep) char *ba = vp_path_join(f->backups, "ollama");
    assert_int_equal(link(f->a, ba), 0);
    struct vp_txn t;
    assert_int_equal(vp_txn_begin(&st, &t), 0);
    stage_new(&t, f->backups, f->a, true);
    assert_int_equal(entries_beside(f->a), 3);
    assert_int_equal(vp_txn_abort(&t), 0);
    assert_int_equal(entries_beside(f->a), 2);
    assert_int_equal(ino_of(f->a), f->ino_a);
    assert_int_equal(ino_of(ba), f->ino_a);
    vp_state_close(&st);
}

static void staged_link_is_undone_to_its_previous_target(void **state)
{
    struct fx *f = *state;
    _cleanup_(freep) char *lib = vp_path_join(f->base, "tree/lib");
    assert_int_equal(vp_mkdir_p(lib, 0755), 0);
    _cleanup_(freep) char *had = vp_path_join(lib, "libcuda.so.1");
    _cleanup_(freep) char *none = vp_path_join(lib, "libnvidia-ml.so.1");
    assert_int_equal(symlink("/old/target", had), 0);
    struct vp_state st;
    struct vp_txn t;
    begin(f, &st, &t);
    assert_int_equal(vp_txn_stage_link(&t, had, "/shim dir/libvgpu-cuda.so.1", NULL), 0);
    assert_int_equal(vp_txn_stage_link(&t, none, "/shim dir/libvgpu-nvml.so.1", NULL), 0);
    assert_int_equal(vp_txn_rename_all(&t), 0);
    char buf[256];
    ssize_t n = readlink(had, buf, sizeof(buf) - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, "/shim dir/libvgpu-cuda.so.1");
    assert_int_equal(vp_txn_abort(&t), 0);
    n = readlink(had, buf, sizeof(buf) - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, "/old/target");
    assert_int_equal(access(none, F_OK), -1);
    struct stat s;
    assert_int_equal(lstat(none, &s), -1);
    assert_int_equal(entries_beside(had), 1);
    vp_state_close(&st);
}

static void staging_a_link_over_a_regular_file_is_refused(void **state)
{
    struct fx *f = *state;
    struct vp_state st;
    struct vp_txn t;
    begin(f, &st, &t);
    /* A link keeps only the previous link target: a regular file in its place would be
     * lost by an undo, so it is never replaced. */
    assert_int_equal(vp_txn_stage_link(&t, f->b, "/shim/libvgpu-cuda.so.1", NULL), -EEXIST);
    assert_int_equal(vp_txn_abort(&t), 0);
    vp_state_close(&st);
    assert_int_equal(ino_of(f->b), f->ino_b);
}

/* ---- crash recovery ---- */

/* The child: one transaction over the files named after the state dir, up to the fault. */
static int crash_child(int argc, char **argv)
{
    struct vp_state st;
    if (argc < 4 || vp_state_open(argv[2], VP_STATE_CREATE | VP_STATE_LOCK, 1000, &st) < 0)
        return 2;
    _cleanup_(freep) char *backups = vp_state_backup_dir(&st);
    struct vp_txn t;
    if (vp_txn_begin(&st, &t) < 0)
        return 3;
    for (int i = 3; i < argc; i++) {
        int fd;
        const char *tmp;
        if (vp_txn_stage_file(&t, argv[i], &fd, &tmp) < 0 || write(fd, "new\n", 4) != 4)
            return 4;
        close(fd);
        _cleanup_(freep) char *prev = vp_path_join(backups, vp_basename(argv[i]));
        int orig = open(argv[i], O_RDONLY | O_CLOEXEC);
        struct stat ost;
        if (orig < 0 || fstat(orig, &ost) < 0 ||
            vp_txn_keep_prev(&t, argv[i], orig, &ost, prev, true, NULL) < 0)
            return 5;
        close(orig);
    }
    struct vp_manifest m = {0};
    if (vp_txn_rename_all(&t) < 0 || vp_txn_commit(&t, &m) < 0)
        return 6;
    vp_state_close(&st);
    return 0;
}

/* Runs the child with VGPU_FAULT=fault over the fixture's files; it must be killed. */
static void crash_at(struct fx *f, const char *fault)
{
#ifndef VGPU_FAULT_INJECTION
    (void)f, (void)fault;
    skip();
#else
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = vp_xcalloc(n + 2, sizeof(char *));
    memcpy(env, environ, n * sizeof(char *));
    _cleanup_(freep) char *fe = vp_xasprintf("VGPU_FAULT=%s", fault);
    env[n] = fe;
    char *argv[] = {"test-txn", "--crash-child", f->state, f->a, f->b, NULL};
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execve("/proc/self/exe", argv, env);
        _exit(127);
    }
    free(env);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status))
        print_message("child with VGPU_FAULT=%s exited %d\n", fault, WEXITSTATUS(status));
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
#endif
}

/* Recovers after the crash; returns the one message that describes it (owned). */
static char *recover(struct fx *f)
{
    struct vp_state st;
    assert_int_equal(vp_state_open(f->state, 0, 0, &st), 0);
    assert_true(vp_state_interrupted(&st)); /* seen without the lock, not touched */
    vp_state_close(&st);
    assert_int_equal(vp_state_open(f->state, VP_STATE_LOCK, 1000, &st), 0);
    assert_false(vp_state_interrupted(&st));
    assert_int_equal(st.recovered.n, 1);
    char *msg = vp_xstrdup(st.recovered.v[0]);
    vp_state_close(&st);
    return msg;
}

static void crash_before_any_rename_is_undone_without_touching_the_tree(void **state)
{
    struct fx *f = *state;
    crash_at(f, "prev");
    assert_int_equal(entries_beside(f->a), 3); /* a's staging file is left */
    _cleanup_(freep) char *msg = recover(f);
    assert_non_null(strstr(msg, "before it had changed any installed file"));
    assert_int_equal(entries_beside(f->a), 2);
    assert_int_equal(ino_of(f->a), f->ino_a);
    assert_int_equal(ino_of(f->b), f->ino_b);
    _cleanup_(freep) char *ba = vp_path_join(f->backups, "ollama");
    assert_int_equal(access(ba, F_OK), -1);
}

static void crash_after_the_first_rename_restores_that_file(void **state)
{
    struct fx *f = *state;
    crash_at(f, "renamed");
    assert_int_not_equal(ino_of(f->a), f->ino_a); /* the crash left a replaced */
    _cleanup_(freep) char *msg = recover(f);
    assert_non_null(strstr(msg, "1 file(s) restored"));
    assert_int_equal(ino_of(f->a), f->ino_a);
    assert_int_equal(ino_of(f->b), f->ino_b);
    _cleanup_(freep) char *ta = text_of(f->a), *tb = text_of(f->b);
    assert_string_equal(ta, "old a\n");
    assert_string_equal(tb, "old b\n");
    assert_int_equal(entries_beside(f->a), 2);
}

static void crash_after_every_rename_restores_every_file(void **state)
{
    struct fx *f = *state;
    crash_at(f, "renamed:2");
    assert_int_not_equal(ino_of(f->b), f->ino_b);
    _cleanup_(freep) char *msg = recover(f);
    assert_non_null(strstr(msg, "2 file(s) restored"));
    assert_int_equal(ino_of(f->a), f->ino_a);
    assert_int_equal(ino_of(f->b), f->ino_b);
    _cleanup_(freep) char *bb = vp_path_join(f->backups, "llama-server");
    assert_int_equal(access(bb, F_OK), -1);
}

static void crash_after_commit_is_finished_not_undone(void **state)
{
    struct fx *f = *state;
    crash_at(f, "committed");
    _cleanup_(freep) char *msg = recover(f);
    assert_non_null(strstr(msg, "had made all its changes"));
    _cleanup_(freep) char *ta = text_of(f->a);
    assert_string_equal(ta, "new\n");
    _cleanup_(freep) char *ba = vp_path_join(f->backups, "ollama");
    _cleanup_(freep) char *bb = vp_path_join(f->backups, "llama-server");
    assert_int_equal(ino_of(ba), f->ino_a);
    assert_int_equal(ino_of(bb), f->ino_b);
    assert_int_equal(entries_beside(f->a), 2);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--crash-child") == 0)
        return crash_child(argc, argv);
    const struct CMUnitTest tests[] = {
        T(state_dir_is_created_0700_with_a_backups_dir),
        T(missing_state_dir_without_create_is_enoent),
        T(state_dir_writable_by_group_or_others_is_refused),
        T(lock_held_by_another_process_times_out_with_ebusy),
        T(commit_leaves_the_new_files_and_the_kept_backups),
        T(abort_after_rename_restores_the_original_inodes),
        T(abort_before_rename_only_removes_what_was_staged),
        T(original_written_in_place_meanwhile_is_not_replaced),
        T(staged_link_is_undone_to_its_previous_target),
        T(staging_a_link_over_a_regular_file_is_refused),
        T(crash_before_any_rename_is_undone_without_touching_the_tree),
        T(crash_after_the_first_rename_restores_that_file),
        T(crash_after_every_rename_restores_every_file),
        T(crash_after_commit_is_finished_not_undone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
