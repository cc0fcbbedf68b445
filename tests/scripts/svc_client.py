"""Client for the Service tests. `ids VIP PORT N`: N connections, prints
each backend's name (one per line). `stream VIP PORT BYTES`: prints the
backend name, then the byte count received and whether the content was intact."""
import socket
import sys

mode, vip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "ids":
    for _ in range(int(sys.argv[4])):
        c = socket.create_connection((vip, port), timeout=5)
        assert c.getpeername()[0] == vip, c.getpeername()
        c.sendall(b"id\n")
        print(c.makefile().readline().strip(), flush=True)
        c.close()
elif mode == "stream":
    n = int(sys.argv[4])
    c = socket.create_connection((vip, port), timeout=10)
    c.sendall(f"stream {n}\n".encode())
    f = c.makefile("rb")
    print("backend", f.readline().decode().strip(), flush=True)
    got = bytearray()
    while True:
        b = f.read1(65536)
        if not b:
            break
        got += b
    chunk = bytes(range(256)) * 64
    expect = (chunk * (n // len(chunk) + 1))[:n]
    print("received", len(got), "intact" if bytes(got) == expect else "CORRUPT", flush=True)
