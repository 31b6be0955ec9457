/* vfork_wait: a process stuck in uninterruptible sleep (state D), on purpose.
 *
 * The parent calls vfork(); the kernel keeps it in a killable-uninterruptible wait until the
 * child execs or exits. The child does neither: it sleeps. So the parent shows state D for as
 * long as the probe runs, and a tool that insists on stopping every thread would wait forever.
 * Prints "ready <parent pid> <child pid>" from the child (the parent cannot print).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    pid_t parent = getpid();
    pid_t child = vfork();
    if (child == 0) {
        char buf[64];
        int n = snprintf(buf, sizeof buf, "ready %d %d\n", (int)parent, (int)syscall(SYS_getpid));
        (void)!write(1, buf, (size_t)n);
        for (;;) {
            struct timespec ts = {3600, 0};
            syscall(SYS_nanosleep, &ts, NULL);
        }
    }
    return 0;
}
