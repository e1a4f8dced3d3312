"""Outgoing e-mail. One helper, `send_mail`, queues a job that delivers over SMTP (or, with
no MAIL_SERVER configured, writes the message to the log for development)."""
from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from flask import current_app, render_template
from huey.utils import normalize_time
from jinja2 import TemplateNotFound

from core.jobs import huey, job, on_commit_batched


def send_mail(to: str, subject: str, template: str, *, tenant_id: int | None = None, **context) -> None:
    """Render `templates/email/<template>.txt` (and `.html` when it exists) now, deliver after
    commit. Rendering now means the job carries the finished message and needs no data that
    might change before it runs."""
    text = render_template(f"email/{template}.txt", **context)
    try:
        html = render_template(f"email/{template}.html", **context)
    except TemplateNotFound:
        html = None
    # The messages one change sends (a form's staff notes and its confirmation) travel together.
    on_commit_batched(deliver_mail, {"to": to, "subject": subject, "text": text, "html": html}, tenant_id=tenant_id)


def build_message(to: str, subject: str, text: str, html: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_DEFAULT_SENDER"]
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="portico")
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message


RETRY_DELAY = 30


@job(retries=10, retry_delay=RETRY_DELAY, database=False)
def deliver_mail(payload: dict | list[dict]) -> None:
    """Deliver one message (a dict: to, subject, text, html) or several, over one connection.
    Of several, those not sent when the server fails go on as a job each, retried as one
    message is: none is sent twice."""
    messages = [payload] if isinstance(payload, dict) else list(payload)
    cfg = current_app.config
    if not cfg["MAIL_SERVER"]:
        for message in messages:
            # Plain text, not the encoded message, so links can be copied from the log.
            current_app.logger.info("E-mail (no MAIL_SERVER set, not sent)\nTo: %s\nSubject: %s\n\n%s",
                                    message["to"], message["subject"], message["text"])
        return
    if len(messages) == 1:
        return _send(messages)
    sent = []
    try:
        _send(messages, sent)
    except Exception:
        current_app.logger.warning("e-mail delivery failed; %d of %d messages queued again",
                                   len(messages) - len(sent), len(messages), exc_info=True)
        for message in messages[len(sent):]:
            retry = deliver_mail.s(message)
            retry.eta = normalize_time(delay=RETRY_DELAY, utc=huey.utc)
            huey.add_schedule(retry)


def _send(messages: list[dict], sent: list | None = None) -> None:
    cfg = current_app.config
    smtp_class = smtplib.SMTP_SSL if cfg["MAIL_USE_SSL"] else smtplib.SMTP
    with smtp_class(cfg["MAIL_SERVER"], cfg["MAIL_PORT"], timeout=cfg["MAIL_TIMEOUT"]) as smtp:
        if cfg["MAIL_USE_TLS"]:
            smtp.starttls(context=ssl.create_default_context())
        if cfg["MAIL_USERNAME"]:
            smtp.login(cfg["MAIL_USERNAME"], cfg["MAIL_PASSWORD"] or "")
        for message in messages:
            smtp.send_message(build_message(message["to"], message["subject"], message["text"], message.get("html")))
            if sent is not None:
                sent.append(message)
