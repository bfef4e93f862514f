"""End-to-end tests with Python's `websockets` client against the real zena-realtime binary.

Run with Debian's interpreter, which has python3-websockets: /usr/bin/python3 -m unittest
"""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import time
import unittest
import urllib.request
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parents[3]
BINARY = os.environ.get("ZENA_BINARY", str(ROOT / "build" / "zena-realtime"))
SECRET = "py-secret-0123456789abcdef0123456789abcdef"
API_KEY = "py-api-key-0123456789"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(sub: str, ttl: int = 3600, secret: str = SECRET) -> str:
    now = int(time.time())
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64url(json.dumps({"sub": sub, "iat": now, "exp": now + ttl}).encode())
    signing_input = f"{header}.{claims}".encode()
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{claims}.{b64url(signature)}"


class Server:
    def __init__(self, **env: str) -> None:
        full_env = {
            "PATH": os.environ.get("PATH", ""),
            "ZENA_JWT_SECRET": SECRET,
            "ZENA_API_KEY": API_KEY,
            "ZENA_THREADS": "2",
            **{k: v for k, v in os.environ.items() if k in ("ASAN_OPTIONS", "UBSAN_OPTIONS")},
            **env,
        }
        self.proc = subprocess.Popen(
            [BINARY, "--host", "127.0.0.1", "--port", "0"],
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.time() + 10
        self.lines: list[str] = []
        self.port = 0
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            match = re.search(r"listening host=\S+ port=(\d+)", line)
            if match:
                self.port = int(match.group(1))
                break
        if not self.port:
            self.proc.kill()
            raise RuntimeError("server did not start: " + "".join(self.lines))

    def ws_url(self, token: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ws?token={token}"

    def api(self, method: str, route: str, body: dict | None = None) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{route}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        output, _ = self.proc.communicate(timeout=10)
        self.lines.append(output)
        text = "".join(self.lines)
        if "Sanitizer" in text or "runtime error:" in text:
            raise AssertionError("sanitizer report in server output:\n" + text)
        return self.proc.returncode


class GatewayTest(unittest.IsolatedAsyncioTestCase):
    def setUp(self) -> None:
        self.server = Server()

    def tearDown(self) -> None:
        self.assertEqual(self.server.stop(), 0)

    async def test_Welcome_ThenBroadcastReachesOnlyTheOwner(self) -> None:
        async with websockets.connect(self.server.ws_url(mint("alice"))) as alice, websockets.connect(
            self.server.ws_url(mint("bob"))
        ) as bob:
            welcome = json.loads(await asyncio.wait_for(alice.recv(), 3))
            self.assertEqual(welcome["type"], "connected")
            self.assertEqual(welcome["payload"]["userId"], "alice")
            self.assertIn("connectionId", welcome["payload"])
            await asyncio.wait_for(bob.recv(), 3)

            payload = {"accountId": "acc-1", "totalThreads": 500, "processedThreads": 250}
            status, body = await asyncio.to_thread(
                self.server.api, "POST", "/api/broadcast", {"userId": "alice", "type": "sync.progress", "payload": payload}
            )
            self.assertEqual((status, body["delivered"], body["channel"]), (200, 1, "user:alice"))
            event = json.loads(await asyncio.wait_for(alice.recv(), 3))
            # A seed client reads type and payload; the channel and its position come beside them.
            self.assertEqual({"type": event["type"], "payload": event["payload"]}, {"type": "sync.progress", "payload": payload})
            self.assertEqual((event["channel"], event["seq"], event["epoch"]), ("user:alice", body["seq"], body["epoch"]))
            with self.assertRaises(asyncio.TimeoutError):
                await asyncio.wait_for(bob.recv(), 0.3)

    async def test_InvalidToken_Closes1008(self) -> None:
        async with websockets.connect(self.server.ws_url(mint("alice", secret="w" * 40))) as ws:
            with self.assertRaises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 3)
            self.assertEqual(closed.exception.code, 1008)

    async def test_InvalidJson_LeavesTheConnectionWorking(self) -> None:
        async with websockets.connect(self.server.ws_url(mint("carol"))) as ws:
            await asyncio.wait_for(ws.recv(), 3)
            await ws.send("{this is not json")
            await ws.send(json.dumps({"type": "sync.request", "payload": {}}))
            status, body = await asyncio.to_thread(
                self.server.api, "POST", "/api/broadcast", {"userId": "carol", "type": "task.created", "payload": {"taskId": "t", "label": "l", "source": "s"}}
            )
            self.assertEqual(body["delivered"], 1)
            message = json.loads(await asyncio.wait_for(ws.recv(), 3))
            self.assertEqual(message["type"], "task.created")
            pong_waiter = await ws.ping()
            await asyncio.wait_for(pong_waiter, 3)

    async def test_Shutdown_Closes1001(self) -> None:
        async with websockets.connect(self.server.ws_url(mint("dave"))) as ws:
            await asyncio.wait_for(ws.recv(), 3)
            self.server.proc.send_signal(signal.SIGTERM)
            with self.assertRaises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            self.assertEqual(closed.exception.code, 1001)


if __name__ == "__main__":
    unittest.main()
