#!/usr/bin/env python3
# How often a request sent on one connection (without waiting for its reply) runs after a request sent
# right after it on another connection: docs/compat.md, "Arrival order across connections".
# Usage: arrival_order.py PORT ROUNDS pubsub|stream   (against redis-server or `velo serve`)
import socket, sys, time
port=int(sys.argv[1]); n=int(sys.argv[2]); mode=sys.argv[3] if len(sys.argv)>3 else "pubsub"
def conn():
    s=socket.create_connection(("127.0.0.1",port)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY,1); return s
def cmd(*a):
    return ("*%d\r\n"%len(a)+"".join("$%d\r\n%s\r\n"%(len(x),x) for x in a)).encode()
def readline(s,buf):
    while b"\r\n" not in buf[0]:
        buf[0]+=s.recv(65536)
    line,_,rest=buf[0].partition(b"\r\n"); buf[0]=rest; return line
bad=0
r=conn(); rb=[b""]
for i in range(n):
    a=conn(); ab=[b""]
    a.sendall(cmd("PING")); readline(a,ab)
    if mode=="pubsub":
        a.sendall(cmd("SUBSCRIBE","c1","c2","c3"))
        for _ in range(3):
            for _ in range(6): readline(a,ab)
        a.sendall(cmd("UNSUBSCRIBE"))
        r.sendall(cmd("PUBLISH","c1","hello"))
        line=readline(r,rb)
        if line!=b":0": bad+=1
    else:
        r.sendall(cmd("DEL","s")); readline(r,rb)
        r.sendall(cmd("XADD","s","1-1","f","v")); readline(r,rb)
        r.sendall(cmd("XGROUP","CREATE","s","g","$")); readline(r,rb)
        a.sendall(cmd("XREADGROUP","GROUP","g","c","BLOCK","0","STREAMS","s",">"))
        r.sendall(cmd("DEL","s")); readline(r,rb)
        a.settimeout(5)
        line=readline(a,ab)
        if not line.startswith(b"-UNBLOCKED"):
            bad+=1
    a.close()
print(mode, "out of order:", bad, "of", n)
