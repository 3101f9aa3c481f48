"""The `ragqa` command group; each group of commands lives in a module of its own."""

from __future__ import annotations

import logging
import os
import sys

import click

from server.cli.asking import ask, search
from server.cli.compare import compare
from server.cli.datasets import dataset
from server.cli.documents import collections, delete, documents, ingest
from server.cli.feedback import feedback
from server.cli.finetune import adapters, finetune
from server.cli.keys import keys
from server.cli.serving import serve
from server.logs import tag_log_records


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log progress details.")
def main(verbose: bool) -> None:
    """ragqa: ask questions, get answers from your documents with sources."""
    if not sys.stderr.isatty():
        # Model-loading progress bars only garble logs; keep them for people at a terminal.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    tag_log_records()  # each line names the HTTP request it belongs to ("-": none)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s",
    )
    if not verbose:
        # pypdf warns about every odd font or xref it repairs; the ingest report says what failed.
        logging.getLogger("pypdf").setLevel(logging.ERROR)


COMMANDS = (ingest, ask, search, collections, documents, delete, serve, feedback, dataset,
            finetune, adapters, compare, keys)  # fmt: skip
for command in COMMANDS:
    main.add_command(command)
