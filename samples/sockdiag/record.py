#!/usr/bin/env python3
"""Records one reply datagram of a NETLINK_SOCK_DIAG dump of unix sockets, made in a fresh
network namespace (run as root: `unshare -n python3 record.py`) so it holds only the
sockets made here: a listener on a path, an abstract listener, a connected socketpair and
an unconnected datagram socket. Writes unix-dump.bin next to this script."""
import os, socket, struct

here = os.path.dirname(os.path.abspath(__file__))
path = "/tmp/wedge-sockdiag-fixture.sock"
if os.path.exists(path):
    os.unlink(path)
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(path)
listener.listen(4)
abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
abstract.bind(b"\0wedge-sockdiag-abstract")
abstract.listen(1)
a, b = socket.socketpair()
dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

nl = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 4)  # NETLINK_SOCK_DIAG
req = struct.pack("=BBHIII", socket.AF_UNIX, 0, 0, 0xFFFFFFFF, 0, 0x01 | 0x04 | 0x10) + b"\xff" * 8
hdr = struct.pack("=IHHII", 16 + len(req), 20, 0x1 | 0x300, 1, 0)
nl.sendto(hdr + req, (0, 0))
reply = nl.recv(65536)
with open(os.path.join(here, "unix-dump.bin"), "wb") as f:
    f.write(reply)
os.unlink(path)
print(f"{len(reply)} bytes")
