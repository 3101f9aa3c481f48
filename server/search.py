"""POST /api/search: what retrieval finds for a query, with scores (no generation)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from server.bodies import SearchBody, read_body, search_options
from server.current import services
from server.errors import BadRequestError

search_api = Blueprint("search", __name__, url_prefix="/api")


@search_api.post("/search")
def search() -> Response:
    """Body: {"query", "collection"?, "k"?, "retrieval_mode"?, "filters"?}."""
    body = read_body(SearchBody, 'Send a JSON object such as {"query": "install"}.')
    query = body.query.strip()
    if not query:
        raise BadRequestError("The query is empty.")
    collection = body.collection or services().settings.collection
    options = search_options(body.retrieval_mode, body.filters)
    hits = services().retriever.search(
        query, collection=collection, k=body.k, mode=options["mode"], where=options["where"]
    )
    return jsonify({"query": query, "collection": collection, "hits": [h.to_dict() for h in hits]})
