"""OpenAPI 3.1 documents of the gateway and the node reader, generated from their FastAPI apps
and completed with what FastAPI cannot see (`make openapi` writes them to openapi/).

    gateway_document(), node_document()  # plain dicts
    render(document)                     # the committed, byte-for-byte repeatable text
"""

from app.openapi.common import render
from app.openapi.gateway import gateway_document
from app.openapi.node import node_document

DOCUMENTS = {"gateway.json": gateway_document, "node.json": node_document}

__all__ = ["DOCUMENTS", "gateway_document", "node_document", "render"]
