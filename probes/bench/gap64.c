/* gap64: measures how long a tool stops a process.
 *
 * 64 threads each sleep 200 us in a loop and record the longest gap between two wake-ups
 * beyond the 200 us asked for. A tool that stops the process shows up as a gap as long as
 * its stop. SIGUSR2 prints the longest gap of any thread since the previous SIGUSR2 (in
 * microseconds, one line "gap_us N") and starts a new interval.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define THREADS 64

static _Atomic long max_gap_ns;
static atomic_int epoch;

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static void *sleeper(void *arg) {
    (void)arg;
    int seen = atomic_load(&epoch);
    long last = now_ns();
    for (;;) {
        struct timespec ts = {0, 200 * 1000};
        nanosleep(&ts, NULL);
        long t = now_ns();
        int e = atomic_load(&epoch);
        if (e != seen) { /* a new interval began: do not count the gap across it */
            seen = e;
            last = t;
            continue;
        }
        long gap = t - last - 200 * 1000;
        long cur = atomic_load(&max_gap_ns);
        while (gap > cur && !atomic_compare_exchange_weak(&max_gap_ns, &cur, gap)) {}
        last = t;
    }
    return NULL;
}

int main(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* threads inherit the mask; main takes it */
    for (int i = 0; i < THREADS; i++) {
        pthread_t t;
        pthread_create(&t, NULL, sleeper, NULL);
    }
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    for (;;) {
        int sig;
        sigwait(&set, &sig);
        long g = atomic_exchange(&max_gap_ns, 0);
        atomic_fetch_add(&epoch, 1);
        printf("gap_us %ld\n", g / 1000);
        fflush(stdout);
    }
}
