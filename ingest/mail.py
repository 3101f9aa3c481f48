"""E-mail messages: saved MIME files (.eml, the standard library's `email`) and Outlook files
(.msg, extract-msg), read in the isolated worker.

A message becomes a page headed by its From, To, Date and Subject lines (also metadata, so a
search can filter by sender, day or subject). Each attachment becomes a document of its own,
`<message>/<file name>`, read by the loader of its own format and naming the message it came
with; an attached message is read the same way, its own attachments included.
"""

from __future__ import annotations

import email
import email.policy
import mimetypes
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path, PurePath
from typing import Any

from ingest.cleaning import normalize_text
from ingest.loaders import LoadError, Page, read_bytes
from ingest.structure import html_text
from retrieval.types import MetadataValue

MAX_ATTACHMENTS = 200  # per message; a mail bomb of tiny parts is cut here
MAX_DEPTH = 4  # messages attached to messages attached to ...
TOO_BIG = "reading it needed more memory than the limit (RAGQA_INGEST__PDF_MEMORY_MB)"
# (attachment file name, its bytes, its document id) -> its pages; LoadError if unreadable.
ReadAttachment = Callable[[str, bytes, str], list[Page]]


@dataclass(frozen=True)
class Attachment:
    """A file attached to a message (`data`), or an attached message (`message`)."""

    name: str
    data: bytes = b""
    message: Mail | None = None


@dataclass(frozen=True)
class Mail:
    """The parts of a message ragqa keeps, whatever file it came from."""

    sender: str = ""
    to: str = ""
    cc: str = ""
    subject: str = ""
    sent: datetime | None = None
    body: str = ""
    attachments: tuple[Attachment, ...] = field(default=())


def load_eml(path: Path, *, source: str, read: ReadAttachment) -> list[Page]:
    """A saved MIME message (.eml): its page, then its attachments' pages."""
    raw = read_bytes(path)
    if not raw.strip():
        raise LoadError("empty file: an .eml file holds one e-mail message in MIME form")
    return mail_pages(_parse_eml(email.message_from_bytes(raw, policy=email.policy.default)),
                      source=source, read=read)  # fmt: skip


def load_msg(path: Path, *, source: str, read: ReadAttachment) -> list[Page]:
    """An Outlook message (.msg): its page, then its attachments' pages."""
    import extract_msg  # lazily: it pulls in oletools

    try:
        message = extract_msg.openMsg(str(path))
    except Exception as error:  # extract-msg raises many kinds on a file that is not a .msg
        raise LoadError(f"not an Outlook message (.msg): {error}") from error
    try:
        return mail_pages(_parse_msg(message, depth=0), source=source, read=read)
    finally:
        message.close()


def mail_pages(mail: Mail, *, source: str, read: ReadAttachment, depth: int = 0) -> list[Page]:
    """The message's page and, after it, its attachments' pages, each attachment under its own
    document id; an attachment that cannot be read becomes an empty page whose metadata holds
    the reason (the pipeline records it as a failed document)."""
    meta = mail_metadata(mail)
    names = _unique_names([a.name for a in mail.attachments])
    header = [f"{label}: {value}" for label, value in (
        ("From", mail.sender), ("To", mail.to), ("Cc", mail.cc),
        ("Date", mail.sent.isoformat(sep=" ") if mail.sent else ""),
        ("Subject", mail.subject), ("Attachments", ", ".join(names)),
    ) if value]  # fmt: skip
    text = normalize_text("\n".join(header) + "\n\n" + mail.body)
    sections = ((0, mail.subject),) if mail.subject else ()
    pages = [Page(source=source, number=None, text=text, sections=sections, metadata=meta)]
    attached = {"attached_to": source, "message_subject": mail.subject,
                "message_date": meta.get("date", "")}  # fmt: skip
    for name, attachment in zip(names, mail.attachments, strict=True):
        child = f"{source}/{name}"
        try:
            if attachment.message is not None:
                if depth + 1 >= MAX_DEPTH:
                    raise LoadError(f"messages nested more than {MAX_DEPTH} deep are not read")
                found = mail_pages(attachment.message, source=child, read=read, depth=depth + 1)
                # The attached message keeps its own subject; it says whose attachment it is.
                found[0] = _with_metadata(found[0], {"attached_to": source})
            else:
                found = [_with_metadata(p, attached) for p in read(name, attachment.data, child)]
        except (LoadError, MemoryError) as error:  # a bomb attached costs its own file only
            reason = str(error) if isinstance(error, LoadError) else TOO_BIG
            found = [Page(source=child, number=None, text="",
                          metadata={**attached, "error": reason})]  # fmt: skip
        pages += found
    return pages


def mail_metadata(mail: Mail) -> dict[str, MetadataValue]:
    """Filterable fields: `from` (the address), `to`, `subject`, `date` (YYYY-MM-DD, as the
    sender's clock read) and `sent` (ISO 8601 with its offset). An attachment's chunks carry
    `attached_to` (the message's id), `message_subject` and `message_date` instead."""
    meta: dict[str, MetadataValue] = {}
    sender = getaddresses([mail.sender])
    if sender and sender[0][1]:
        meta["from"] = sender[0][1].lower()
    if mail.to:
        to = dict.fromkeys(a.lower() for _, a in getaddresses([mail.to]) if a)  # ordered, unique
        meta["to"] = ", ".join(to)
    if mail.subject:
        meta["subject"] = mail.subject
    if mail.sent is not None:
        meta["date"] = mail.sent.date().isoformat()
        meta["sent"] = mail.sent.isoformat()
    return meta


def _with_metadata(page: Page, extra: dict[str, MetadataValue]) -> Page:
    merged = {**page.metadata, **{k: v for k, v in extra.items() if v}}
    return Page(page.source, page.number, page.text, page.sections, page.whole, merged)


_UNSAFE = re.compile(r"[\x00-\x1f/\\]+")


def _unique_names(names: list[str]) -> list[str]:
    """Attachment names safe as the last part of a document id, made unique: "a.pdf",
    "a (2).pdf"."""
    seen: dict[str, int] = {}
    unique = []
    for raw in names:
        name = _UNSAFE.sub("_", PurePath(raw.replace("\\", "/")).name).strip(" .") or "attachment"
        count = seen[name.lower()] = seen.get(name.lower(), 0) + 1
        if count > 1:
            stem, dot, ext = name.rpartition(".")
            name = f"{stem} ({count}).{ext}" if dot and stem else f"{name} ({count})"
        unique.append(name)
    return unique


# ---------------------------------------------------------------- .eml


def _parse_eml(message: EmailMessage, depth: int = 0) -> Mail:
    body_part = message.get_body(preferencelist=("plain", "html"))
    body = ""
    if body_part is not None:
        body = _part_text(body_part)
        if body_part.get_content_subtype() == "html":
            body = html_text(body)[0]
    attachments = []
    for part in list(message.iter_attachments())[:MAX_ATTACHMENTS]:
        if _is_inline_image(part):
            continue  # a logo or a picture in the body's HTML, not a document
        if part.get_content_type() == "message/rfc822" and depth + 1 < MAX_DEPTH:
            inner = part.get_content()
            inner_mail = _parse_eml(inner, depth + 1)
            name = part.get_filename() or f"{inner_mail.subject or 'message'}.eml"
            attachments.append(Attachment(name, message=inner_mail))
            continue
        data = part.get_payload(decode=True)
        data = data if isinstance(data, bytes) else b""
        name = part.get_filename() or _default_name(part.get_content_type(), len(attachments))
        attachments.append(Attachment(name, data=data))
    return Mail(
        sender=_header(message, "from"), to=_header(message, "to"), cc=_header(message, "cc"),
        subject=_header(message, "subject"), sent=_date(_header(message, "date")), body=body,
        attachments=tuple(attachments),
    )  # fmt: skip


def _part_text(part: Any) -> str:
    try:
        return str(part.get_content())
    except (LookupError, UnicodeError):  # an unknown or lying charset: keep what decodes
        return (part.get_payload(decode=True) or b"").decode("utf-8", errors="replace")


def _is_inline_image(part: Any) -> bool:
    inline = part.get_content_disposition() != "attachment" and part.get("Content-ID") is not None
    return bool(inline and part.get_content_maintype() == "image")


def _header(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name)
    except Exception:  # a header so malformed the standard library's parser raises
        value = ""
    return " ".join(str(value or "").split())


def _date(value: str) -> datetime | None:
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None


def _default_name(content_type: str, index: int) -> str:
    return f"attachment-{index + 1}{mimetypes.guess_extension(content_type) or '.bin'}"


# ---------------------------------------------------------------- .msg


def _parse_msg(message: Any, depth: int) -> Mail:
    body = message.body or ""
    if not body.strip() and getattr(message, "htmlBody", None):
        body = html_text(message.htmlBody.decode("utf-8", errors="replace"))[0]
    attachments = []
    for attachment in list(message.attachments)[:MAX_ATTACHMENTS]:
        if getattr(attachment, "hidden", False):
            continue  # an inline picture of the body
        data = attachment.data
        name = attachment.longFilename or attachment.shortFilename or ""
        if hasattr(data, "attachments"):  # an attached Outlook message
            if depth + 1 < MAX_DEPTH:
                inner = _parse_msg(data, depth + 1)
                attachments.append(Attachment(name or f"{inner.subject or 'message'}.msg",
                                              message=inner))  # fmt: skip
        elif isinstance(data, bytes):
            mime = getattr(attachment, "mimetype", None) or "application/octet-stream"
            attachments.append(Attachment(name or _default_name(mime, len(attachments)), data))
    sent = message.date if isinstance(message.date, datetime) else None
    return Mail(
        sender=str(message.sender or ""), to=str(message.to or ""), cc=str(message.cc or ""),
        subject=" ".join(str(message.subject or "").split()), sent=sent, body=body,
        attachments=tuple(attachments),
    )  # fmt: skip
