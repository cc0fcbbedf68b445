"""A tiny TCP backend for the Service tests: answers `id` with its name and
the client address it sees, and `stream N` with N bytes sent over ~3 s."""
import socket
import sys
import threading
import time

name, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((ip, port))
s.listen(128)


def serve(c, addr):
    with c:
        f = c.makefile("rb")
        cmd = f.readline().decode().split()
        if cmd and cmd[0] == "id":
            c.sendall(f"{name} {addr[0]}\n".encode())
        elif cmd and cmd[0] == "stream":
            n = int(cmd[1])
            c.sendall(f"{name}\n".encode())
            chunk = bytes(range(256)) * 64
            sent = 0
            while sent < n:
                k = min(len(chunk), n - sent)
                c.sendall(chunk[:k])
                sent += k
                time.sleep(3.0 * k / n)


while True:
    c, addr = s.accept()
    threading.Thread(target=serve, args=(c, addr), daemon=True).start()
