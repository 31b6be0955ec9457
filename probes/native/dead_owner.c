/* dead_owner: lock-never-released with the owner on record. A worker locks a pthread
 * mutex and exits without unlocking it; main then waits for the mutex forever, while an
 * idle thread (in pause) keeps the process multi-threaded. glibc records the owner's tid
 * in the mutex (__owner): wedge reads it and sees that thread is gone.
 *   dead_owner          the worker exits holding the lock
 *   dead_owner twice    main locks the same (non-recursive) mutex twice
 * Prints "ready <pid> <owner tid>" before main blocks. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pid_t owner;

static void *grab_and_leave(void *arg) {
  (void)arg;
  pthread_mutex_lock(&m);
  owner = gettid();
  return NULL; /* exits holding m */
}

static void *idle(void *arg) {
  (void)arg;
  for (;;)
    pause();
  return NULL;
}

int main(int argc, char **argv) {
  pthread_t w, i;
  pthread_create(&i, NULL, idle, NULL);
  if (argc > 1 && !strcmp(argv[1], "twice")) {
    pthread_mutex_lock(&m);
    owner = gettid();
  } else {
    pthread_create(&w, NULL, grab_and_leave, NULL);
    pthread_join(w, NULL);
  }
  printf("ready %d %d\n", (int)getpid(), (int)owner);
  fflush(stdout);
  pthread_mutex_lock(&m);
  puts("unreachable");
  return 1;
}
