#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static int pfd[2], sync_fd[2];
volatile long sink;
__attribute__((noinline)) long read_pipe(int fd) { char c; long n = read(fd, &c, 1); sink = n; return n + 1; }
__attribute__((noinline)) long wait_for_input(int fd) { long n = read_pipe(fd); sink = n; return n * 2; }
__attribute__((noinline)) void park(void) { for (;;) { struct timespec t = {100, 0}; nanosleep(&t, 0); sink++; } }
static void *holder(void *a) { (void)a; pthread_setname_np(pthread_self(), "holder"); flockfile(stdout); char c = 1; write(sync_fd[1], &c, 1); park(); return 0; }
__attribute__((noinline)) void print_line(void) { fputs("blocked\n", stdout); sink++; }
static void *waiter(void *a) { (void)a; pthread_setname_np(pthread_self(), "waiter"); print_line(); sink++; return 0; }
int main(int argc, char **argv) {
  pthread_t h, w; char c;
  pipe(pfd); pipe(sync_fd);
  pthread_create(&h, 0, holder, 0); read(sync_fd[0], &c, 1);
  pthread_create(&w, 0, waiter, 0);
  fprintf(stderr, "ready\n");
  if (argc > 1 && strcmp(argv[1], "sleep") == 0) { struct timespec t = {100, 0}; for (;;) { nanosleep(&t, 0); sink++; } }
  long r = wait_for_input(pfd[0]);
  return (int)r;
}
