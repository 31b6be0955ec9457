/* idle_server: a multi-threaded server with nothing to do — the shape of most healthy
 * daemons, which wedge must not call stuck: an acceptor in accept(2) on a TCP socket, a
 * unix-socket listener in accept(2), an event loop in epoll_wait(2) on an eventfd, four
 * workers in pthread_cond_wait on an empty queue, and main in pthread_join.
 * Prints "ready <pid>" once every thread is started. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER;
static int queued;
static int tcp, unx, ep;

static void *acceptor(void *arg) {
  for (;;) {
    int c = accept(*(int *)arg, NULL, NULL);
    if (c >= 0) {
      pthread_mutex_lock(&lock);
      queued++;
      pthread_cond_signal(&work);
      pthread_mutex_unlock(&lock);
      close(c);
    }
  }
  return NULL;
}

static void *worker(void *arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&lock);
    while (!queued)
      pthread_cond_wait(&work, &lock);
    queued--;
    pthread_mutex_unlock(&lock);
  }
  return NULL;
}

static void *loop(void *arg) {
  (void)arg;
  struct epoll_event ev[4];
  for (;;)
    epoll_wait(ep, ev, 4, -1);
  return NULL;
}

int main(void) {
  tcp = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(tcp, (struct sockaddr *)&a, sizeof a) || listen(tcp, 16))
    return 2;
  unx = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un u = {.sun_family = AF_UNIX};
  snprintf(u.sun_path + 1, sizeof u.sun_path - 1, "wedge-idle-server-%d", (int)getpid());
  if (bind(unx, (struct sockaddr *)&u, sizeof u) || listen(unx, 16))
    return 2;
  ep = epoll_create1(0);
  int efd = eventfd(0, 0);
  struct epoll_event e = {.events = EPOLLIN, .data.fd = efd};
  epoll_ctl(ep, EPOLL_CTL_ADD, efd, &e);
  pthread_t t[7];
  pthread_create(&t[0], NULL, acceptor, &tcp);
  pthread_create(&t[1], NULL, acceptor, &unx);
  pthread_create(&t[2], NULL, loop, NULL);
  for (int i = 3; i < 7; i++)
    pthread_create(&t[i], NULL, worker, NULL);
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  pthread_join(t[0], NULL);
  return 0;
}
