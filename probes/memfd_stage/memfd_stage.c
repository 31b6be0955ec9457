/* memfd_stage: the mechanism of runc #4640 (fixed in runc 1.2.6 / 1.3.0-rc.1, PR #4641).
 *
 *   memfd_stage buggy|fixed|shared [hold]
 *
 * Like runc 1.2's `runc init`, the program first copies itself into a sealed memfd named
 * "runc_cloned:/proc/self/exe" and re-executes itself from it, so /proc/PID/exe reads
 * "/memfd:runc_cloned:/proc/self/exe (deleted)" and the writable data segment is a
 * MAP_PRIVATE mapping of the memfd (rw-p in maps). It then starts two stages the way
 * libcontainer/nsenter/nsexec.c does (this is independent code, same mechanism): stage-0
 * ("runc:[0:PARENT]") forks stage-1 ("runc:[1:CHILD]") over a socketpair. Two globals in the
 * data segment, `current_stage` and `syncfd`, drive them: each stage sets syncfd to its own
 * end of the socketpair and closes the other end; every step branches on current_stage.
 *
 *   buggy:  seals include F_SEAL_FUTURE_WRITE, as runc 1.2.0 - 1.2.5 did. On kernels before
 *           5.5 (no commit 05d351102dbe) such a memfd's private mappings lose copy-on-write
 *           across fork: both stages share `current_stage` and `syncfd`. runc then hangs or
 *           fails with EBADF depending on timing; with the interleaving pinned below this
 *           probe hangs like `shared`. On a fixed kernel it completes.
 *   fixed:  seals as runc 1.2.6: F_SEAL_SEAL|F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE.
 *   shared: EMULATES THE KERNEL BUG on any kernel. Seals as buggy, and in addition the two
 *           globals are moved into a MAP_SHARED anonymous page mapped before the fork, so the
 *           stages really share them, as they do on a broken kernel. The hang happens on every
 *           run: stage-0 sees stage-1's current_stage (1), takes the child's side of the
 *           conversation and waits to be spoken to, while stage-1 waits for stage-0's go.
 *           Both block reading their ends of the same socketpair, forever.
 *
 * The interleaving is pinned so every run behaves the same: stage-1 does its setup and
 * blocks waiting for stage-0's go before stage-0 does its own setup (stage-0 waits for a
 * byte on a pipe, then for stage-1 to be asleep).
 *
 * stdout: "ready <stage-0 pid> <stage-1 pid>" once both stages exist; "stage-1 finished"
 * when the conversation completes. stderr: nsexec-style log lines
 * "nsexec-<current_stage>[<pid>]: ...". With "hold", both stages stay alive after finishing
 * (stage-0 in pause(), stage-1 in pause()) so that a live capture sees them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

#define CLONED_NAME "runc_cloned:/proc/self/exe"

enum stage { STAGE_SETUP = -1, STAGE_PARENT = 0, STAGE_CHILD = 1 };
enum sync_msg { SYNC_GO = 0x40, SYNC_CHILD_FINISH = 0x41 };

/* The globals, initialised so they live in .data: the part of the data segment that is a
 * private mapping of the executable (here, of the memfd), not anonymous .bss. */
int current_stage = STAGE_SETUP;
int syncfd = -1;

/* Where the stages reach them: the globals above, or (shared mode) a MAP_SHARED page. */
static int *stage_p = &current_stage;
static int *syncfd_p = &syncfd;
#define CURRENT_STAGE (*(volatile int *)stage_p)
#define SYNCFD (*(volatile int *)syncfd_p)

extern char **environ;

static void logmsg(const char *fmt, ...) {
    char buf[512];
    int n = snprintf(buf, sizeof buf, "nsexec-%d[%d]: ", CURRENT_STAGE, (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    (void)!write(2, buf, (size_t)n);
}

static void bail(const char *what) {
    int e = errno;
    logmsg("%s: %s", what, strerror(e));
    exit(1);
}

static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

/* True when this process already runs from the sealed memfd copy. */
static int running_cloned(void) {
    char link[256];
    ssize_t n = readlink("/proc/self/exe", link, sizeof link - 1);
    if (n < 0) return 0;
    link[n] = 0;
    return strncmp(link, "/memfd:" CLONED_NAME, strlen("/memfd:" CLONED_NAME)) == 0;
}

/* Copies /proc/self/exe into a memfd, seals it and executes it (does not return). */
static void clone_self_and_exec(int future_write, char **argv) {
    int src = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (src < 0) bail("open /proc/self/exe");
    struct stat st;
    if (fstat(src, &st) != 0) bail("fstat /proc/self/exe");
    int mfd = memfd_create(CLONED_NAME, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (mfd < 0 && errno == EINVAL) /* kernels before 6.3 do not know MFD_EXEC */
        mfd = memfd_create(CLONED_NAME, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0) bail("memfd_create");
    off_t off = 0;
    while (off < st.st_size) {
        ssize_t n = sendfile(mfd, src, &off, (size_t)(st.st_size - off));
        if (n <= 0) bail("sendfile into the memfd");
    }
    close(src);
    if (future_write) {
        /* runc 1.2.0 - 1.2.5: F_SEAL_FUTURE_WRITE first. */
        if (fcntl(mfd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) != 0) bail("F_ADD_SEALS F_SEAL_FUTURE_WRITE");
    }
    if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0)
        bail("F_ADD_SEALS");
    fexecve(mfd, argv, environ);
    bail("fexecve the memfd");
}

/* Waits until `pid` sleeps (state S): it is then blocked in its read. */
static void wait_asleep(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    for (int i = 0; i < 5000; i++) {
        char buf[512];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0) return;
        buf[n] = 0;
        char *paren = strrchr(buf, ')');
        if (paren && paren[1] == ' ' && paren[2] == 'S') return;
        struct timespec ms = {0, 1000 * 1000};
        nanosleep(&ms, NULL);
    }
}

static void send_msg(int msg, const char *what) {
    if (write(SYNCFD, &msg, sizeof msg) != (ssize_t)sizeof msg) bail(what);
}

static void expect_msg(int want, const char *what) {
    int msg = 0;
    ssize_t n = read(SYNCFD, &msg, sizeof msg);
    if (n == 0) errno = EPIPE;
    if (n != (ssize_t)sizeof msg) bail(what);
    if (msg != want) {
        errno = EPROTO;
        bail(what);
    }
}

/* The conversation: stage-0 opens it (SYNC_GO), stage-1 answers (SYNC_CHILD_FINISH). Each
 * process knows its side from current_stage, as every step of nsexec does. */
static void converse(void) {
    if (CURRENT_STAGE == STAGE_PARENT) {
        send_msg(SYNC_GO, "failed to sync with stage-1: write go");
        expect_msg(SYNC_CHILD_FINISH, "failed to sync with stage-1: next state");
    } else {
        expect_msg(SYNC_GO, "failed to sync with parent: read go");
        send_msg(SYNC_CHILD_FINISH, "failed to sync with parent: write finish");
    }
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    int shared = strcmp(mode, "shared") == 0;
    int buggy = shared || strcmp(mode, "buggy") == 0;
    if (!buggy && strcmp(mode, "fixed") != 0) {
        fprintf(stderr, "usage: memfd_stage buggy|fixed|shared [hold]\n");
        return 2;
    }
    int hold = argc > 2 && strcmp(argv[2], "hold") == 0;
    if (!running_cloned()) clone_self_and_exec(buggy, argv);

    if (shared) {
        /* The emulation of the kernel bug: the globals in a page both stages share. */
        int *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (page == MAP_FAILED) bail("mmap the shared page");
        page[0] = current_stage;
        page[1] = syncfd;
        stage_p = &page[0];
        syncfd_p = &page[1];
    }
    CURRENT_STAGE = STAGE_PARENT;
    prctl(PR_SET_NAME, "runc:[0:PARENT]");

    int sp[2], born[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) bail("socketpair");
    if (pipe2(born, O_CLOEXEC) != 0) bail("pipe");
    logmsg("spawn stage-1");
    pid_t child = fork();
    if (child < 0) bail("fork stage-1");
    if (child == 0) {
        CURRENT_STAGE = STAGE_CHILD;
        prctl(PR_SET_NAME, "runc:[1:CHILD]");
        SYNCFD = sp[0];
        if (close(sp[1]) != 0) bail("failed to close the parent's end");
        close(born[0]);
        (void)!write(born[1], "b", 1);
        close(born[1]);
        converse();
        logmsg("stage-1 complete");
        if (hold)
            for (;;) pause();
        return 0;
    }
    close(born[1]);
    char b;
    if (read(born[0], &b, 1) != 1) bail("stage-1 died before it was ready");
    close(born[0]);
    wait_asleep(child);
    say("ready %d %d\n", (int)getpid(), (int)child);

    SYNCFD = sp[1];
    if (close(sp[0]) != 0) bail("failed to close the child's end");
    logmsg("-> stage-1 synchronisation loop");
    converse();
    logmsg("<- stage-1 synchronisation loop");
    say("stage-1 finished\n");
    if (hold)
        for (;;) pause();
    int status;
    waitpid(child, &status, 0);
    return 0;
}
