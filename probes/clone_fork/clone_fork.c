/* clone_fork: the mechanism of podman #25184 (fixed in podman 5.4.0, PR #25245).
 *
 *   clone_fork buggy|fixed
 *
 * A thread of the parent parks inside fflush(NULL) on a full pipe: it holds glibc's stdio
 * list lock (_IO_list_lock) for as long as it is blocked. The main thread then creates a
 * child with a raw clone system call, as podman's reexec_in_user_namespace() does. A raw
 * clone runs none of glibc's fork preparation, so the child gets a copy of the lock in its
 * locked state, held by a thread that does not exist in the child.
 *
 *   buggy: the child calls glibc fork() (podman's create_pause_process()): fork takes the
 *          list lock first and waits on it forever: futex, FUTEX_WAIT_PRIVATE, value 2.
 *   fixed: the child uses the raw clone system call again (the upstream fix), which takes
 *          no glibc lock, so it goes on.
 *
 * The parent waits for the child on a pipe, as podman's parent does. Every process stays
 * alive afterwards so that it can be diagnosed. Prints "ready <parent pid> <child pid>".
 *
 *   clone_fork buggy|fixed exit
 *
 * The same pattern on a run that does not hang (for `wedge trace`): the other thread sleeps
 * instead of parking in fflush(NULL), so no lock is held at the raw clone; every process
 * exits once the child has forked (status 0).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int full[2];

static void *flusher(void *arg) {
    (void)arg;
    /* A stream with 100 KiB buffered for a pipe nobody reads (64 KiB capacity): fflush(NULL)
       takes the list lock, then blocks in write() holding it. */
    FILE *f = fdopen(full[1], "w");
    static char buf[1 << 17];
    setvbuf(f, buf, _IOFBF, sizeof buf);
    static char data[100 * 1024];
    memset(data, 'x', sizeof data);
    fwrite(data, 1, sizeof data, f);
    fflush(NULL);
    return NULL;
}

static void *sleeper(void *arg) {
    (void)arg;
    for (;;) pause();
    return NULL;
}

static pid_t raw_clone(void) {
    /* No CLONE_CHILD_SETTID/CLEARTID, no atfork handlers: what podman's syscall_clone does. */
    return (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
}

static void forever(void) {
    for (;;) pause();
}

int main(int argc, char **argv) {
    int buggy = argc > 1 && strcmp(argv[1], "buggy") == 0;
    int quit = argc > 2 && strcmp(argv[2], "exit") == 0;
    int sync_pipe[2];
    if (pipe(full) != 0 || pipe(sync_pipe) != 0) return 1;
    pthread_t t;
    pthread_create(&t, NULL, quit ? sleeper : flusher, NULL);
    pthread_setname_np(t, quit ? "sleeper" : "flusher");
    struct timespec settle = {0, 200 * 1000 * 1000};
    nanosleep(&settle, NULL); /* the flusher is now blocked inside fflush(NULL) */
    pid_t parent = getpid();
    pid_t child = raw_clone();
    if (child < 0) return 1;
    if (child == 0) {
        /* The child: one thread, a copy of the parent's memory, the list lock held. */
        pid_t grandchild = buggy ? fork() : raw_clone();
        if (grandchild == 0) {
            if (quit) _exit(0);
            forever();
        }
        (void)!write(sync_pipe[1], "k", 1);
        if (quit) {
            waitpid(grandchild, NULL, 0);
            _exit(0);
        }
        forever();
    }
    char buf[64];
    int n = snprintf(buf, sizeof buf, "ready %d %d\n", (int)parent, (int)child);
    (void)!write(1, buf, (size_t)n);
    char c;
    (void)!read(sync_pipe[0], &c, 1); /* buggy: never returns */
    (void)!write(1, "child forked\n", 13);
    if (quit) {
        waitpid(child, NULL, 0);
        return 0;
    }
    forever();
}
