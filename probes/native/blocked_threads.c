/* blocked_threads: threads parked in known places, for wedge's tests and README example.
 *
 *   holder  takes stdout's stdio lock (flockfile), then blocks reading a pipe nobody writes
 *   waiter  calls fputs(stdout): blocks on that lock in __lll_lock_wait_private
 *   ticker  writes "tick N" to fd 1 every 10 ms with write(2) (proof the process runs on)
 *   main    waits in pthread_join
 *
 * SIGUSR1 prints "got SIGUSR1" with write(2), so a test can see a signal re-delivered.
 * With the argument "churn", one more thread creates and joins short-lived threads without
 * end, so threads appear and die while wedge captures.
 * Prints "ready <pid>" once the threads are in place.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int pipefd[2];

static void say(const char *s) { (void)!write(1, s, strlen(s)); }

static void on_usr1(int sig) { (void)sig; say("got SIGUSR1\n"); }

static void *holder(void *arg) {
    (void)arg;
    flockfile(stdout);
    char c;
    (void)!read(pipefd[0], &c, 1); /* nobody ever writes */
    funlockfile(stdout);
    return NULL;
}

static void *waiter(void *arg) {
    (void)arg;
    fputs("never printed while holder holds the lock\n", stdout);
    return NULL;
}

static void *ticker(void *arg) {
    (void)arg;
    char buf[64];
    for (unsigned long n = 0;; n++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        snprintf(buf, sizeof buf, "tick %lu\n", n);
        say(buf);
    }
    return NULL;
}

static void *nothing(void *arg) { return arg; }

static void *churn(void *arg) {
    (void)arg;
    for (;;) {
        pthread_t t;
        if (pthread_create(&t, NULL, nothing, NULL) == 0) pthread_join(t, NULL);
    }
    return NULL;
}

int main(int argc, char **argv) {
    signal(SIGUSR1, on_usr1);
    if (pipe(pipefd) != 0) return 1;
    pthread_t h, w, t;
    pthread_create(&h, NULL, holder, NULL);
    pthread_setname_np(h, "holder");
    struct timespec settle = {0, 50 * 1000 * 1000};
    nanosleep(&settle, NULL); /* holder owns the lock before waiter asks */
    pthread_create(&w, NULL, waiter, NULL);
    pthread_setname_np(w, "waiter");
    pthread_create(&t, NULL, ticker, NULL);
    pthread_setname_np(t, "ticker");
    if (argc > 1 && strcmp(argv[1], "churn") == 0) {
        pthread_t c;
        pthread_create(&c, NULL, churn, NULL);
        pthread_setname_np(c, "churn");
    }
    nanosleep(&settle, NULL);
    char buf[64];
    snprintf(buf, sizeof buf, "ready %d\n", (int)getpid());
    say(buf);
    pthread_join(w, NULL);
    return 0;
}
