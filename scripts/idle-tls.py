#!/usr/bin/env python3
"""Server memory per idle authenticated connection on tern's TCP door, with
or without TLS (docs/benchmarks.md, "TLS per idle connection").

Opens N connections (at most -c handshakes at a time), each one `TRN1` and an
`auth` frame for its own user (bench-u1, bench-u2, ...: auto-provisioned),
waits for every `auth_ok`, and reads the server's VmRSS from
/proc/PID/status before the connections and --settle seconds after the last
one; prints (held - before) / N, holds them --hold seconds, closes them.
Tokens are HS256 JWTs minted here from the server's --jwt-secret, with the
claims tern-bench uses (sub, iat, exp).

    scripts/idle-tls.py --port 7091 -n 5000 --token-secret S --pid PID [--tls]

Needs `protobuf` and the classes generated from proto/tern.proto
(examples/python/README.md); when `tern_pb2` cannot be imported they are
generated into a temporary directory with grpc_tools. Every run is bounded:
each handshake and auth by --timeout, the hold by --hold.
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import ssl
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def import_classes():
    """tern_pb2 from PYTHONPATH or examples/python, else generated now."""
    sys.path.append(os.path.join(ROOT, "examples", "python"))
    try:
        import tern_pb2
        return tern_pb2
    except ImportError:
        pass
    out = tempfile.mkdtemp(prefix="tern-pb2-")
    proto = os.path.join(ROOT, "proto")
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", proto,
                    f"--python_out={out}", os.path.join(proto, "tern.proto")], check=True)
    sys.path.insert(0, out)
    import tern_pb2
    return tern_pb2


pb = import_classes()


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(secret, user, ttl_s=86_400):
    """An HS256 JWT for `user`, signed with the server's secret as UTF-8."""
    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": user, "iat": now, "exp": now + ttl_s}).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def frame_bytes(frame):
    body = frame.SerializeToString()
    return struct.pack(">I", len(body)) + body


async def read_frame(reader):
    (length,) = struct.unpack(">I", await reader.readexactly(4))
    return pb.Frame.FromString(await reader.readexactly(length))


async def open_session(opts, ssl_ctx, user, token):
    """One connection authenticated as `user`: (reader, writer)."""
    reader, writer = await asyncio.open_connection(
        opts.host, opts.port, ssl=ssl_ctx,
        server_hostname=opts.host if ssl_ctx else None)
    try:
        writer.write(b"TRN1" + frame_bytes(pb.Frame(num_id=1, auth=pb.Auth(token=token))))
        await writer.drain()
        while True:
            frame = await read_frame(reader)
            kind = frame.WhichOneof("frame")
            if kind == "auth_ok":
                return reader, writer
            if kind == "error":
                raise RuntimeError(f"{user}: {pb.ErrorCode.Name(frame.error.code)} "
                                   f"{frame.error.message}")
    except BaseException:
        writer.close()
        raise


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def tls_context(opts):
    if not opts.tls:
        return None
    ctx = ssl.create_default_context(cafile=opts.cafile)
    if not opts.cafile:
        # A benchmark on loopback against a throwaway self-signed certificate.
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def connect_all(opts, ssl_ctx, users, errors):
    gate = asyncio.Semaphore(opts.concurrency)

    async def one(user):
        async with gate:
            try:
                return await asyncio.wait_for(
                    open_session(opts, ssl_ctx, user, mint(opts.token_secret, user)),
                    opts.timeout)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                    RuntimeError, ssl.SSLError) as e:
                errors.append(f"{user}: {e!r}")
                return None

    return await asyncio.gather(*(one(u) for u in users))


async def main(opts):
    ssl_ctx = tls_context(opts)
    errors = []
    # A few warm-up sessions first, so "before" includes what the first
    # connections allocate once (TLS config, database pages, registries).
    warm = await connect_all(opts, ssl_ctx, [f"{opts.prefix}w{i}" for i in range(opts.warmup)], errors)
    for s in filter(None, warm):
        s[1].close()
    await asyncio.sleep(1)
    before = rss_kib(opts.pid)
    started = time.monotonic()
    users = [f"{opts.prefix}{i}" for i in range(1, opts.count + 1)]
    sessions = await connect_all(opts, ssl_ctx, users, errors)
    elapsed = time.monotonic() - started
    ok = [s for s in sessions if s]
    await asyncio.sleep(opts.settle)
    held = rss_kib(opts.pid)
    result = {
        "transport": "tls" if opts.tls else "tcp",
        "connections": opts.count, "connected": len(ok), "failed": opts.count - len(ok),
        "connects_per_s": round(len(ok) / elapsed, 1) if elapsed > 0 else None,
        "server_rss_before_kib": before, "server_rss_held_kib": held,
        "server_kib_per_conn": round((held - before) / len(ok), 3) if ok else None,
    }
    for e in errors[:5]:
        print(f"error: {e}", file=sys.stderr)
    if opts.json:
        print(json.dumps(result))
    else:
        print(f"{result['transport']}: {len(ok)}/{opts.count} connected "
              f"({result['connects_per_s']}/s), server RSS {before} -> {held} KiB: "
              f"{result['server_kib_per_conn']} KiB per connection")
    await asyncio.sleep(opts.hold)
    for _, writer in ok:
        writer.close()
    return 0 if ok and not errors else 1


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7070, help="the TCP door")
    p.add_argument("-n", "--count", type=int, default=5000, help="connections to hold")
    p.add_argument("-c", "--concurrency", type=int, default=100, help="handshakes at a time")
    p.add_argument("--token-secret", required=True, help="the server's --jwt-secret")
    p.add_argument("--pid", type=int, required=True, help="the server's process id")
    p.add_argument("--tls", action="store_true", help="TLS around each connection")
    p.add_argument("--cafile", help="verify the server against this PEM (default: no check)")
    p.add_argument("--prefix", default="bench-u", help="user names: PREFIX1, PREFIX2, ...")
    p.add_argument("--warmup", type=int, default=10, help="sessions opened and closed first")
    p.add_argument("--settle", type=float, default=3, help="seconds before reading RSS")
    p.add_argument("--hold", type=float, default=2, help="seconds to hold after reading RSS")
    p.add_argument("--timeout", type=float, default=30, help="seconds per connect + auth")
    p.add_argument("--json", action="store_true", help="one JSON line instead of text")
    return p.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
