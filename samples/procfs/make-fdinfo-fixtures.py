import ctypes, os, select, signal, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
r, w = os.pipe()
ev = os.eventfd(5)
ep = select.epoll()
ep.register(r, select.EPOLLIN)
ep.register(ev, select.EPOLLIN | select.EPOLLET)
ino = libc.inotify_init1(0)
libc.inotify_add_watch(ino, b"/tmp", 0x100 | 0x200)  # IN_CREATE|IN_DELETE
tfd = libc.timerfd_create(1, 0)  # CLOCK_MONOTONIC
class its(ctypes.Structure):
    _fields_ = [("i_s", ctypes.c_long), ("i_ns", ctypes.c_long), ("v_s", ctypes.c_long), ("v_ns", ctypes.c_long)]
libc.timerfd_settime(tfd, 0, ctypes.byref(its(1, 0, 100, 0)), None)
mask = ctypes.c_uint64((1 << (signal.SIGUSR1 - 1)) | (1 << (signal.SIGTERM - 1)))
sfd = libc.signalfd(-1, ctypes.byref(mask), 0)
pfd = os.pidfd_open(os.getpid())
mfd = os.memfd_create("wedge-sample", os.MFD_ALLOW_SEALING)
os.write(mfd, b"x" * 100)
import fcntl
fcntl.fcntl(mfd, 1033, 0x8 | 0x10 if hasattr(fcntl, "F_ADD_SEALS") else 0x18)  # F_ADD_SEALS: WRITE|FUTURE_WRITE
a, b = socket.socketpair()
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
f = open("/etc/hostname")
print(" ".join(str(x) for x in [os.getpid(), r, ev, ep.fileno(), ino, tfd, sfd, pfd, mfd, a.fileno(), srv.fileno(), f.fileno()]), flush=True)
time.sleep(30)
