#!/usr/bin/env python3
"""Send one direct message over tern's raw TCP door, with classes generated
from proto/tern.proto (see README.md). Prints every frame it receives and the
ack's seq; exits 0 once acked, or with the error frame's code if refused.

    tern_tcp_client.py [--host H] [--port P] [--token JWT] TO TEXT
"""
import argparse, os, socket, struct, sys, uuid

import tern_pb2  # generated: python3 -m grpc_tools.protoc -I proto --python_out=DIR proto/tern.proto


def send(sock, frame):
    # Every frame: a 4-byte big-endian length, then the encoded `Frame`.
    body = frame.SerializeToString()
    sock.sendall(struct.pack(">I", len(body)) + body)


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            sys.exit("server closed the connection")
        data += chunk
    return data


def wait_for(sock, kind):
    """Reads frames until one of `kind` (returned) or an `error` (exit)."""
    while True:
        (length,) = struct.unpack(">I", recv_exactly(sock, 4))
        frame = tern_pb2.Frame.FromString(recv_exactly(sock, length))
        got = frame.WhichOneof("frame")  # which member of the oneof is set
        print(f"<- {got}: {getattr(frame, got)}".replace("\n", " ").strip())
        if got == "error":
            sys.exit(frame.error.code or 1)  # e.g. 2 = ERROR_CODE_UNAUTHORIZED
        if got == kind:
            return getattr(frame, got)


args = argparse.ArgumentParser(description=__doc__)
args.add_argument("--host", default="127.0.0.1")
args.add_argument("--port", type=int, default=7070)
args.add_argument("--token", default=os.environ.get("TERN_TOKEN"), help="JWT (default: $TERN_TOKEN)")
args.add_argument("to", help="recipient username")
args.add_argument("text", help="message body")
opts = args.parse_args()
if not opts.token:
    sys.exit("no token: pass --token or set TERN_TOKEN")

with socket.create_connection((opts.host, opts.port), timeout=10) as sock:
    sock.sendall(b"TRN1")  # the preface, once
    send(sock, tern_pb2.Frame(num_id=1, auth=tern_pb2.Auth(token=opts.token, device="python")))
    me = wait_for(sock, "auth_ok").user
    cmid = f"py-{uuid.uuid4().hex}"  # unique per message: a resend with it is not stored twice
    send(sock, tern_pb2.Frame(num_id=2, send=tern_pb2.Send(to=opts.to, cmid=cmid, body=opts.text)))
    ack = wait_for(sock, "ack")
    print(f"sent as {me}: conv={ack.conv} seq={ack.seq} mid={ack.mid}")
