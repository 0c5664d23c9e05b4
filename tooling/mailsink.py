"""A real local SMTP server (aiosmtpd) that stores every message it receives in a Maildir.

Used by the demo and the tests in place of a company mail server, so an e-mail can be read
exactly as it was received.

    python -m tooling.mailsink --port 8025 --maildir output/demo/mail
"""

from __future__ import annotations

import argparse
import mailbox
import signal
import socket
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller


class MaildirHandler:
    """Stores each accepted message (with its envelope recipients) in a Maildir."""

    def __init__(self, maildir: Path) -> None:
        maildir.parent.mkdir(parents=True, exist_ok=True)
        self.maildir = mailbox.Maildir(str(maildir), create=True)
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd API)
        message = message_from_bytes(envelope.content, policy=policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with self._lock:
            self.maildir.add(message.as_bytes())
        return "250 Message accepted for delivery"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (aiosmtpd cannot bind port 0 itself)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class MailSink:
    """Start/stop a local SMTP server; `messages()` reads back what it received."""

    def __init__(self, maildir: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.maildir_path = Path(maildir)
        self.controller = Controller(MaildirHandler(self.maildir_path), hostname=host,
                                     port=port or free_port(host))

    def __enter__(self) -> MailSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def host(self) -> str:
        return self.controller.hostname

    @property
    def port(self) -> int:
        return self.controller.port

    def messages(self) -> list[EmailMessage]:
        box = mailbox.Maildir(str(self.maildir_path), create=True)
        return [message_from_bytes(box.get_bytes(key), policy=policy.default)
                for key in sorted(box.keys())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--maildir", type=Path, required=True)
    args = parser.parse_args()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with MailSink(args.maildir, args.host, args.port) as sink:
        print(f"mailsink: listening on {sink.host}:{sink.port}, storing in {args.maildir}",
              flush=True)
        done.wait()


if __name__ == "__main__":
    main()
