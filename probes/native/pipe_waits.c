/* pipe_waits: processes that wait on pipes and sockets, stuck or not.
 *
 *   orphan      the parent forgot to close the write end of its child's pipe: after the
 *               child wrote and exited, the parent's read waits for an EOF that never comes
 *   fixed       the same, with the write end closed; the child stays alive (sleeping)
 *               before it writes: the parent waits on a child that can still write
 *   cycle       parent and child each read a pipe only the other one writes
 *   cycle-sock  the same over the two ends of a unix socketpair
 *
 * Prints "ready <parent> <child>" once both exist; each then blocks in read(2). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void ready(pid_t child) {
  printf("ready %d %d\n", (int)getpid(), (int)child);
  fflush(stdout);
}

static void drain(int fd) {
  char buf[64];
  while (read(fd, buf, sizeof buf) > 0) {
  }
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  int a[2], b[2];
  if (!strcmp(mode, "orphan") || !strcmp(mode, "fixed")) {
    int fixed = !strcmp(mode, "fixed");
    if (pipe(a))
      return 2;
    pid_t child = fork();
    if (child == 0) {
      close(a[0]);
      if (fixed)
        pause(); /* alive, holding the write end: it may still write */
      write(a[1], "hello\n", 6);
      _exit(0);
    }
    if (fixed)
      close(a[1]);
    else
      waitpid(child, NULL, 0); /* the writer is gone; a[1] is still open here */
    ready(child);
    drain(a[0]);
    return 0;
  }
  if (!strcmp(mode, "cycle") || !strcmp(mode, "cycle-sock")) {
    int sock = !strcmp(mode, "cycle-sock");
    if (sock ? socketpair(AF_UNIX, SOCK_STREAM, 0, a) : (pipe(a) || pipe(b)))
      return 2;
    pid_t child = fork();
    if (child == 0) {
      /* Reads a[0] (sock: its end a[1]); only the parent could write to it. */
      int in = sock ? a[1] : b[0];
      close(sock ? a[0] : b[1]);
      if (!sock) {
        close(a[0]);
      }
      drain(in);
      _exit(0);
    }
    int in = a[0];
    if (sock)
      close(a[1]);
    else {
      close(a[1]);
      close(b[0]);
    }
    ready(child);
    drain(in);
    kill(child, SIGKILL);
    return 0;
  }
  fprintf(stderr, "usage: pipe_waits orphan|fixed|cycle|cycle-sock\n");
  return 2;
}
