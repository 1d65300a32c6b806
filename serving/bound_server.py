"""kserve's ModelServer bound to one address: the predictor and the feature transformer both use it."""

from __future__ import annotations

from kserve import ModelServer


class BoundModelServer(ModelServer):
    """kserve's ModelServer with the REST server on ``host`` (kserve 0.21 always binds 0.0.0.0).

    ``http_protocol``: uvicorn's HTTP protocol class for the REST port (``uvicorn.Config(http=...)``),
    e.g. :func:`serving.lean_http.protocol`; None keeps uvicorn's default. Answers carry no
    ``server: uvicorn`` header: it tells a caller only which software to attack, and every client
    parses it on every answer (the ``date`` header, which HTTP requires, stays).
    """

    def __init__(self, host: str, http_protocol: type | None = None, **kwargs):
        super().__init__(**kwargs)
        self.host, self.http_protocol = host, http_protocol

    async def _serve(self):
        # start() has built the REST server but not yet bound it: uvicorn binds config.host.
        rest = self._rest_server or getattr(self._rest_multiprocess_server, "_rest_server", None)
        rest.config.host = self.host
        rest.config.server_header = False
        if self.http_protocol is not None:
            rest.config.http = self.http_protocol
        await super()._serve()
