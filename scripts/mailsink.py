"""Local SMTP sink: the stand-in for a mail catcher when there is no Docker.

Accepts every message on SMTP (default 127.0.0.1:2525) and stores it in a Maildir
($SERVICEPULS_MAILDIR, default <repo>/.stack/mail), so tests can read what the feedback
service sent. A small read-only web page (default 127.0.0.1:8025) lists the messages
(subject, to, date) and shows one (its text part); /api/messages gives the same list as JSON.

Making deliveries fail, to exercise retries: write a number N to the control file
(default <maildir>/../fail_next, or $SERVICEPULS_MAILSINK_FAIL_FILE). The file is read for every
message: while N > 0 the message is refused with "451 4.3.0" (a temporary error, so a correct
client retries later) and N is decremented. For example

    echo 2 > .stack/fail_next                   # the next two deliveries fail
    .venv/bin/python scripts/mailsink.py fail-next 2   # the same

Run:  .venv/bin/python scripts/mailsink.py serve  (scripts/stack.sh does this for you)
"""

from __future__ import annotations

import argparse
import email.policy
import html
import json
import logging
import mailbox
import os
import signal
import sys
import threading
from email import message_from_bytes
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from aiosmtpd.controller import Controller

REPO = Path(__file__).resolve().parent.parent
log = logging.getLogger("mailsink")


def default_maildir() -> Path:
    state = Path(os.environ.get("SERVICEPULS_STATE", REPO / ".stack"))
    return Path(os.environ.get("SERVICEPULS_MAILDIR", state / "mail"))


def default_fail_file(maildir: Path) -> Path:
    override = os.environ.get("SERVICEPULS_MAILSINK_FAIL_FILE")
    return Path(override) if override else maildir.parent / "fail_next"


class FailureBudget:
    """The number of next deliveries to refuse, kept in a file so a test can set it at any time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def take(self) -> bool:
        """True when this delivery must fail (and uses up one of the failures)."""
        with self._lock:
            try:
                remaining = int(self.path.read_text().strip() or "0")
            except (FileNotFoundError, ValueError):
                return False
            if remaining <= 0:
                return False
            self.path.write_text(f"{remaining - 1}\n")
            return True

    def set(self, count: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(f"{count}\n")


class MaildirHandler:
    """aiosmtpd handler: each accepted message becomes one file in the Maildir."""

    def __init__(self, maildir: Path, failures: FailureBudget) -> None:
        self.path = maildir
        self.maildir = mailbox.Maildir(maildir, create=True)
        self.failures = failures

    def _ensure_layout(self) -> None:
        # mailbox.Maildir(create=True) skips an existing (e.g. pre-made or emptied) directory.
        for sub in ("tmp", "new", "cur"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.failures.take():
            log.info("refused a delivery with 451 (fail_next)")
            return "451 4.3.0 Temporary failure requested by mailsink fail_next"
        # Keep the envelope next to the headers: what the client asked for, not what To: says.
        envelope_headers = (
            f"X-Envelope-From: <{envelope.mail_from}>\r\n"
            f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        self._ensure_layout()
        key = self.maildir.add(envelope_headers + envelope.original_content)
        log.info("stored message %s (%d recipients)", key, len(envelope.rcpt_tos))
        return "250 2.0.0 OK queued as " + key


def _headers(path: Path) -> dict[str, str]:
    with path.open("rb") as fh:
        headers = BytesHeaderParser(policy=email.policy.default).parse(fh)
    return {
        "subject": str(headers.get("Subject", "")),
        "to": str(headers.get("To", "")),
        "from": str(headers.get("From", "")),
        # No Date header (some clients leave it to the server): show when the sink received it.
        "date": str(headers.get("Date", "")) or formatdate(path.stat().st_mtime, localtime=True),
    }


def list_messages(maildir: Path) -> list[dict[str, str]]:
    """Newest first; also picks up files from new/ and cur/."""
    found = []
    for sub in ("new", "cur"):
        for path in (maildir / sub).glob("*"):
            if path.is_file():
                found.append((path.stat().st_mtime, path))
    found.sort(reverse=True)
    messages = []
    for _, path in found:
        item = {"id": path.name.split(":", 1)[0], **_headers(path)}
        try:
            item["date_iso"] = parsedate_to_datetime(item["date"]).isoformat()
        except (TypeError, ValueError):
            item["date_iso"] = ""
        messages.append(item)
    return messages


def find_message(maildir: Path, message_id: str) -> Path | None:
    for sub in ("new", "cur"):
        for path in (maildir / sub).glob(f"{message_id}*"):
            if path.name.split(":", 1)[0] == message_id:
                return path
    return None


def text_of(path: Path) -> str:
    message = message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    return part.get_content()


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{title}</title><style>body{{font-family:sans-serif;margin:2em}}
td,th{{padding:.2em .8em;text-align:left}}pre{{white-space:pre-wrap}}</style></head>
<body>{body}</body></html>"""


def make_http_handler(maildir: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path in ("/", "/index.html"):
                rows = "".join(
                    f'<tr><td><a href="/message/{html.escape(m["id"])}">'
                    f"{html.escape(m['subject']) or '(no subject)'}</a></td>"
                    f"<td>{html.escape(m['to'])}</td><td>{html.escape(m['date'])}</td></tr>"
                    for m in list_messages(maildir)
                )
                body = (
                    "<h1>Servicepuls mail sink</h1><table><tr><th>Subject</th><th>To</th>"
                    f"<th>Date</th></tr>{rows}</table>"
                )
                self._send(HTTPStatus.OK, "text/html", PAGE.format(title="Mail sink", body=body))
            elif self.path == "/api/messages":
                self._send(HTTPStatus.OK, "application/json", json.dumps(list_messages(maildir)))
            elif self.path.startswith("/message/"):
                found = find_message(maildir, unquote(self.path.removeprefix("/message/")))
                if found is None:
                    self._send(HTTPStatus.NOT_FOUND, "text/plain", "no such message\n")
                    return
                info = _headers(found)
                body = (
                    f'<p><a href="/">all messages</a></p><h1>{html.escape(info["subject"])}</h1>'
                    f"<p>From: {html.escape(info['from'])}<br>To: {html.escape(info['to'])}"
                    f"<br>Date: {html.escape(info['date'])}</p>"
                    f"<pre>{html.escape(text_of(found))}</pre>"
                )
                self._send(HTTPStatus.OK, "text/html", PAGE.format(title="Message", body=body))
            elif self.path == "/health":
                self._send(HTTPStatus.OK, "text/plain", "ok\n")
            else:
                self._send(HTTPStatus.NOT_FOUND, "text/plain", "not found\n")

        def _send(self, status: HTTPStatus, content_type: str, text: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", f"{content_type}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # request lines would put message subjects in the log

    return Handler


def serve(args: argparse.Namespace) -> int:
    maildir = Path(args.maildir)
    failures = FailureBudget(default_fail_file(maildir))
    handler = MaildirHandler(maildir, failures)
    controller = Controller(
        handler, hostname=args.smtp_host, port=args.smtp_port, enable_SMTPUTF8=True
    )
    http = ThreadingHTTPServer((args.http_host, args.http_port), make_http_handler(maildir))
    http.daemon_threads = True

    def stop(signum: int, frame: object) -> None:
        # shutdown() blocks until serve_forever returns, so it must run on another thread.
        threading.Thread(target=http.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    controller.start()
    log.info(
        "SMTP on %s:%d, web on %s:%d, maildir %s, fail control file %s",
        args.smtp_host,
        args.smtp_port,
        args.http_host,
        args.http_port,
        maildir,
        failures.path,
    )
    try:
        http.serve_forever(poll_interval=0.5)
    finally:
        http.server_close()
        controller.stop()
        log.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--maildir", default=str(default_maildir()))
    sub = parser.add_subparsers(dest="command")
    serve_parser = sub.add_parser("serve", help="run the SMTP sink and its web page (default)")
    serve_parser.add_argument(
        "--smtp-host", default=os.environ.get("SERVICEPULS_SMTP_HOST", "127.0.0.1")
    )
    serve_parser.add_argument(
        "--smtp-port", type=int, default=int(os.environ.get("SERVICEPULS_SMTP_PORT", "2525"))
    )
    serve_parser.add_argument("--http-host", default="127.0.0.1")
    serve_parser.add_argument(
        "--http-port",
        type=int,
        default=int(os.environ.get("SERVICEPULS_MAILSINK_HTTP_PORT", "8025")),
    )
    fail_parser = sub.add_parser("fail-next", help="refuse the next N deliveries with 451")
    fail_parser.add_argument("count", type=int)
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stdout,
    )
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command log
    if args.command == "fail-next":
        budget = FailureBudget(default_fail_file(Path(args.maildir)))
        budget.set(args.count)
        print(f"next {args.count} deliveries will fail with 451 ({budget.path})")
        return 0
    if args.command is None:
        args = parser.parse_args([*(argv or sys.argv[1:]), "serve"])
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
