"""RTSP ANNOUNCE/RECORD for cameras that push RTSP: GStreamer's RTSP server in record mode, relaying each camera's
H.264 into nginx-rtmp without re-encoding (``rtph264depay ! h264parse ! flvmux ! rtmp2sink``), where the recorder
reads it like every pushing camera.

Runs under Debian's Python with GStreamer's introspection bindings (``python3-gi``, ``gir1.2-gst-rtsp-server-1.0``,
``gstreamer1.0-plugins-good`` and ``-bad``), as a child of ``kuzet serve`` (``relay.py``); it imports nothing of Kuzet.
Before an ANNOUNCE is accepted it asks Kuzet (the same ``on_publish`` call nginx makes, with ``protocol=rtsp``); a
refusal answers 403 and the camera's stream is never read.

A camera pushes to ``rtsp://HOST:8555/push/<camera id>/<key>``.

    /usr/bin/python3 rtsp_relay.py --port 8555 --callback URL --rtmp rtmp://127.0.0.1:1935/push
"""

from __future__ import annotations

import argparse
import signal
import sys
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

MOUNT = "/push"


def ask(callback: str, camera: str, key: str, address: str, relay_secret: str) -> bool:
    """Kuzet's answer for this camera and key (2xx: accepted)."""
    body = urllib.parse.urlencode({"call": "publish", "app": MOUNT.strip("/"), "name": camera, "key": key,
                                   "addr": address, "protocol": "rtsp"}).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(callback, data=body, method="POST"), timeout=10) as r:
            return 200 <= r.status < 300
    except (urllib.error.URLError, OSError):
        return False


def parse(url) -> tuple[str, str]:  # noqa: ANN001 - a GstRtsp.RTSPUrl
    """(camera id, key) of ``/push/<id>/<key>[/streamid=0]`` (the key is in the path: RTSP clients append a
    stream's control to the URL, which a query string would end up in the middle of)."""
    parts = [p for p in (url.abspath or "").split("/") if p]
    if len(parts) >= 3 and parts[0] == MOUNT.strip("/"):
        return parts[1], urllib.parse.unquote(parts[2])
    return "", ""


class RelayFactory(GstRtspServer.RTSPMediaFactory):
    def __init__(self, rtmp_base: str, relay_secret: str) -> None:
        super().__init__()
        self.rtmp_base = rtmp_base
        self.relay_secret = relay_secret
        self.set_transport_mode(GstRtspServer.RTSPTransportMode.RECORD)
        self.set_shared(False)

    def do_create_element(self, url):  # noqa: ANN001, ANN201 - GStreamer's virtual method
        camera, key = parse(url)
        if not camera.isdigit():
            return None
        target = f"{self.rtmp_base}/{camera}?" + urllib.parse.urlencode({"key": key, "relay": self.relay_secret})
        return Gst.parse_launch(
            "( rtph264depay name=depay0 ! h264parse config-interval=-1 ! video/x-h264,stream-format=avc ! "
            f"flvmux streamable=true ! rtmp2sink location=\"{target}\" async-connect=false )")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8555)
    parser.add_argument("--callback", required=True)
    parser.add_argument("--rtmp", required=True)
    args = parser.parse_args()
    Gst.init(None)
    relay_secret = urllib.parse.parse_qs(urllib.parse.urlsplit(args.callback).query).get("secret", [""])[0]
    server = GstRtspServer.RTSPServer()
    server.set_address(args.listen)
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    factory = RelayFactory(args.rtmp, relay_secret)
    mounted: set[str] = set()

    def check(client, context) -> bool:  # noqa: ANN001
        """Ask Kuzet about the camera and key in the URL; mount ``/push/<id>/<key>`` while they are accepted."""
        camera, key = parse(context.uri)
        path = f"{MOUNT}/{camera}/{urllib.parse.quote(key, safe='')}"
        # (The camera's address is not read: GstRTSPConnection is not reference counted, and PyGObject's wrapper
        # of client.get_connection() frees it — the relay crashed. The audit record names the relay instead.)
        accepted = camera.isdigit() and bool(key) and ask(args.callback, camera, key, "", relay_secret)
        if accepted and path not in mounted:
            mounts.add_factory(path, factory)
            mounted.add(path)
        elif not accepted and path in mounted:
            mounts.remove_factory(path)
            mounted.discard(path)
        return accepted

    def on_options(client, context):  # noqa: ANN001, ANN202
        # Clients ask OPTIONS before ANNOUNCE: that is where the key is checked (and a refusal audited), because the
        # server looks the URL up among its mounts before it would ask about an ANNOUNCE. A refused key gets no
        # mount, so its ANNOUNCE answers 404. (OPTIONS itself is not refused: GStreamer 1.22 frees the response
        # twice when a pre-options handler refuses, and the relay would crash.)
        if context.uri is not None and (context.uri.abspath or "").startswith(MOUNT + "/"):
            check(client, context)
        return GstRtsp.RTSPStatusCode.OK

    def on_announce(client, context):  # noqa: ANN001, ANN202
        camera, key = parse(context.uri)
        path = f"{MOUNT}/{camera}/{urllib.parse.quote(key, safe='')}"
        return GstRtsp.RTSPStatusCode.OK if path in mounted else GstRtsp.RTSPStatusCode.FORBIDDEN

    def on_client(_server, client) -> None:  # noqa: ANN001
        client.connect("pre-options-request", on_options)
        client.connect("pre-announce-request", on_announce)

    server.connect("client-connected", on_client)
    if server.attach(None) == 0:
        print(f"cannot listen on {args.listen}:{args.port}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
